"""`exec`: run another process in a running container (runc's exec; runtime-spec leaves
exec to the runtime). The process joins every namespace and the cgroup of the container
and gets the capabilities, seccomp filter, rlimits, user and environment of its process
spec: ``--process FILE`` (a process.json, as podman and containerd pass it), or the
container's own process with the arguments and flags given here, as runc builds it.

Without --detach pyoci waits and exits with the process's status (128+n after signal n),
forwarding signals to it; with a terminal and no --console-socket it relays the pty.
"""

from __future__ import annotations

import os
import sys

from pyoci import jsonio, signals
from pyoci import syscalls as sc
from pyoci.config.loader import load_spec
from pyoci.config.model import Capabilities, Process, Spec
from pyoci.errors import PyociError, StateError
from pyoci.executors import namespaces
from pyoci.init import ExecContext, exec_intermediate
from pyoci.operations.common import (
    check_preserved_fds,
    container_cgroup,
    current_umask,
    write_pid_file,
)
from pyoci.operations.foreground import (
    FORWARDED_SIGNALS,
    exit_status,
    forward_signal,
    relay_terminal,
    wait_for,
)
from pyoci.operations.handover import recv_message, serve_process_setup
from pyoci.record import evolve, field, mutable
from pyoci.state import SPEC_FILE, Container
from pyoci.sync import Channel, ChannelClosed

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any


@mutable
class ExecOptions:
    args: list[str] = field(factory=list)
    process_file: str | None = None
    tty: bool = False
    console_socket: str | None = None
    detach: bool = False
    pid_file: str | None = None
    cwd: str | None = None
    env: list[str] = field(factory=list)
    user: str | None = None
    additional_gids: list[int] = field(factory=list)
    caps: list[str] = field(factory=list)
    no_new_privs: bool = False
    apparmor: str | None = None
    process_label: str | None = None
    preserve_fds: int = 0
    cgroup: list[str] = field(factory=list)
    ignore_paused: bool = False


def _parse_user(text: str) -> tuple[int, int | None]:
    uid, _, gid = text.partition(":")
    try:
        return int(uid), int(gid) if gid else None
    except ValueError:
        raise PyociError(f"--user {text!r}: expected uid[:gid] as numbers") from None


def build_process(spec: Spec, opts: ExecOptions) -> Process:
    """runc's rule: a --process file is the whole process; otherwise the container's
    process with args replaced and each given flag applied on top."""
    if opts.process_file:
        from pyoci.config.check import check_process

        proc = check_process("--process", opts.process_file)  # create's rules on process
    else:
        if spec.process is None:
            raise PyociError("exec: the container has no process to start from; "
                             "use --process FILE")
        if not opts.args:
            raise PyociError("exec: no command given (pyoci exec ID CMD [ARG...], or "
                             "--process FILE)")
        proc = evolve(spec.process, args=tuple(opts.args), terminal=opts.tty,
                      console_size=None)
    changes: dict[str, Any] = {}
    if opts.tty:
        changes["terminal"] = True
    if opts.cwd:
        changes["cwd"] = opts.cwd
    if opts.env:
        changes["env"] = proc.env + tuple(opts.env)
    user = proc.user
    if opts.user:
        uid, gid = _parse_user(opts.user)
        user = evolve(user, uid=uid, gid=user.gid if gid is None else gid)
    if opts.additional_gids:
        user = evolve(user, additional_gids=tuple(opts.additional_gids))
    changes["user"] = user
    if opts.caps:
        caps = proc.capabilities or Capabilities()
        extra = tuple(c.upper() if c.upper().startswith("CAP_") else "CAP_" + c.upper()
                      for c in opts.caps)

        def add(names: tuple[str, ...] | None) -> tuple[str, ...]:
            return tuple(dict.fromkeys((names or ()) + extra))

        changes["capabilities"] = Capabilities(
            bounding=add(caps.bounding), effective=add(caps.effective),
            permitted=add(caps.permitted), inheritable=add(caps.inheritable),
            ambient=add(caps.ambient))
    if opts.no_new_privs:
        changes["no_new_privileges"] = True
    if opts.apparmor:
        changes["apparmor_profile"] = opts.apparmor
    if opts.process_label:
        changes["selinux_label"] = opts.process_label
    proc = evolve(proc, **changes)
    if not proc.args:
        raise PyociError("exec: process.args is empty: nothing to run")
    return proc


def _container_namespaces(spec: Spec, pid: int) -> list[tuple[str, int]]:
    """The init's namespaces that differ from ours, opened (type, fd) in joining order."""
    from pyoci.config.model import Linux, Namespace

    wanted = []
    for ns in spec.linux.namespaces:
        if namespaces.ns_inode(pid, ns.type) != namespaces.ns_inode("self", ns.type):
            name = namespaces.NS_PROC_NAMES[ns.type]
            wanted.append(Namespace(ns.type, f"/proc/{pid}/ns/{name}"))
    return namespaces.open_joined(Linux(namespaces=tuple(wanted)))


def exec_process(root: str, cid: str, opts: ExecOptions) -> int:
    c = Container(root, cid).load()
    status = c.status()
    if status == "paused" and not opts.ignore_paused:
        # runc's words (exec.go). With --ignore-paused the process joins the frozen cgroup
        # and is frozen with it until `resume`, as under runc.
        raise StateError(f'cannot exec in a paused container "{cid}" (use --ignore-paused '
                         "to override)")
    if status != "running" and status != "paused":
        # runc: "cannot exec in a stopped container" (podman reads exec errors by text).
        raise StateError(f'cannot exec in a {status} container "{cid}": container not '
                         'running')
    sub_cgroups = parse_cgroup_args(opts.cgroup)
    try:
        with open(os.path.join(c.dir, SPEC_FILE)) as f:
            spec = load_spec(jsonio.loads(f.read()))
    except (OSError, ValueError) as exc:
        raise PyociError(f'container "{cid}": its saved config is unreadable: {exc}') from None
    proc = build_process(spec, opts)
    if proc.terminal and opts.detach and not opts.console_socket:
        raise PyociError("exec --tty --detach needs --console-socket to receive the terminal")
    if opts.console_socket and not proc.terminal:
        raise PyociError("--console-socket is given but the process has no terminal (--tty)")
    if proc.capabilities is not None:
        from pyoci.executors.capabilities import unknown_to_kernel
        from pyoci.log import warn

        for name in unknown_to_kernel(proc.capabilities):
            warn(f"process.capabilities: {name} is not known to this kernel; skipped")
    seccomp = None
    if spec.linux.seccomp is not None:
        from pyoci.executors.seccomp import compile_filter

        seccomp = compile_filter(spec.linux.seccomp, warn=False)  # create warned already
    # Before the channel exists: an fd that is not open would otherwise be the channel.
    check_preserved_fds(opts.preserve_fds)
    console = os.path.abspath(opts.console_socket) if opts.console_socket else None
    if not opts.detach:
        sc.set_child_subreaper()  # the process is our grandchild: let it come to us
    mgr = container_cgroup(c)
    if mgr is not None and not mgr.exists():
        mgr = None
    cgroup_dirs = _exec_cgroup_dirs(mgr, sub_cgroups)
    return _spawn(c, spec, proc, opts, seccomp, console, cgroup_dirs)


def parse_cgroup_args(args: list[str]) -> dict[str, str]:
    """runc's ``exec --cgroup`` (exec.go getSubCgroupPaths): either one ``PATH`` (the same
    sub-cgroup in every hierarchy: the only form on cgroup v2) or any number of
    ``CONTROLLER[,CONTROLLER...]:PATH`` (cgroup v1, per controller). Returns controller ->
    path, "" meaning every hierarchy."""
    paths: dict[str, str] = {}
    for arg in args:
        ctrls, sep, path = arg.partition(":")
        if not sep:
            if len(args) != 1:
                raise PyociError(f"invalid --cgroup argument: {arg} (missing <controller>: "
                                 "prefix)")
            paths[""] = arg
            continue
        for ctrl in ctrls.split(","):
            if not ctrl:
                raise PyociError(f"invalid --cgroup argument: {arg} (empty <controller> "
                                 "prefix)")
            if ctrl in paths:
                raise PyociError(f"invalid --cgroup argument(s): controller {ctrl} "
                                 "specified multiple times")
            paths[ctrl] = path
    return paths


def _sub_dir(base: str, sub: str) -> str:
    """``sub`` below the container's directory ``base``. It must stay inside it: runc
    checked a string prefix, which let ``../<id>-other`` reach a sibling whose name starts
    with the container's (fixed in runc 1.5); here the normalised path must be ``base``
    itself or below it."""
    path = os.path.normpath(os.path.join(base, sub.lstrip("/")))
    if path != base and not path.startswith(base.rstrip("/") + "/"):
        raise PyociError(f"--cgroup {sub}: not a sub-cgroup of the container's cgroup "
                         f"{base}")
    if not os.path.isdir(path):
        raise PyociError(f"--cgroup {sub}: {path} does not exist (exec runs the process "
                         "in an existing sub-cgroup; create it first)")
    return path


def _exec_cgroup_dirs(mgr: Any, sub: dict[str, str]) -> list[str]:
    """The directories, one per hierarchy, the exec'd process is moved into: the
    container's own, or with --cgroup the sub-cgroups asked for."""
    if mgr is None:
        if sub:
            raise PyociError("--cgroup: the container has no cgroup")
        return []
    if not sub:
        return mgr.directories()
    if "" in sub:
        return [_sub_dir(d, sub[""]) for d in mgr.directories()]
    # Per controller: a cgroup v1 controller the container has a directory for. The
    # other hierarchies (and the unified one of a hybrid host) keep the container's.
    chosen: dict[str, str] = {}
    for ctrl, path in sub.items():
        base = mgr.v1.get(ctrl)
        if base is None:
            known = ", ".join(sorted(mgr.v1)) or "none: this host has cgroup v2 only"
            raise PyociError(f"--cgroup {ctrl}:{path}: unknown controller {ctrl} (the "
                             f"container's cgroup v1 controllers: {known})")
        target = _sub_dir(base, path)
        if chosen.get(base, target) != target:
            raise PyociError(f"--cgroup {ctrl}:{path}: {ctrl} shares its hierarchy with "
                             f"another controller given a different path ({chosen[base]})")
        chosen[base] = target
    return [chosen.get(d, d) for d in mgr.directories()]


def add_to_cgroup(directory: str, pid: int) -> None:
    from pyoci.cgroups.manager import _write

    _write(os.path.join(directory, "cgroup.procs"), str(pid), f"adding pid {pid} to "
           f"{directory}")


def _spawn(c: Container, spec: Spec, proc: Process, opts: ExecOptions, seccomp: Any,
           console: str | None, cgroup_dirs: list[str]) -> int:
    parent, child = Channel.pair()
    joined = _container_namespaces(spec, c.pid)
    root_fd = -1
    if spec.linux.namespace("mount") is None:
        # No mount namespace (config-linux.md: inherited from the runtime): the init is
        # only chroot'ed into the rootfs, so the process must be too -- into the init's
        # very root, held by an fd until the child has joined the namespaces.
        try:
            root_fd = os.open(f"/proc/{c.pid}/root", os.O_PATH | os.O_DIRECTORY
                              | os.O_CLOEXEC)
        except OSError as exc:
            for _, fd in joined:
                os.close(fd)
            raise PyociError(f'container "{c.id}": its root: {exc.strerror}') from None
    ctx = ExecContext(process=proc, joined=joined, chan=child, seccomp=seccomp,
                      caller_umask=current_umask(), preserve_fds=opts.preserve_fds,
                      root_fd=root_fd, setgroups_allowed=_setgroups_allowed(c.pid),
                      personality=spec.linux.personality)
    sys.stdout.flush()
    sys.stderr.flush()
    pending: list[int] = []
    target = {"pid": 0}

    def on_signal(num: int, _frame: object) -> None:
        if target["pid"]:
            forward_signal(target["pid"], num)
        else:
            pending.append(num)

    if not opts.detach:
        for sig in FORWARDED_SIGNALS:
            signals.signal(sig, on_signal)
    from pyoci.cgroups import prime

    prime.wait()  # no thread may run across the fork
    middle = os.fork()
    if middle == 0:
        parent.close()
        exec_intermediate(ctx)  # never returns
    child.close()
    for _, fd in joined:
        os.close(fd)
    if root_fd >= 0:
        os.close(root_fd)
    master: list[int] = []
    pid = 0
    middle_fd = os.pidfd_open(middle)
    proc_fd = -1
    try:
        for d in cgroup_dirs:  # the container's cgroup, or the --cgroup sub-cgroups
            add_to_cgroup(d, middle)
        parent.send("cgroup")
        pid = _expect(parent, "pid", "join the container", middle_fd)["pid"]
        # Held while the process waits for "go": with --detach it is not our child, and
        # a kill by pid could reach whoever gets the number after it is reaped elsewhere.
        proc_fd = os.pidfd_open(pid)
        os.waitpid(middle, 0)
        middle = 0  # reaped: its pid may be someone else's from now on
        parent.send("go")
        sink = None if console or opts.detach else master.append
        serve_process_setup(parent, c, spec, console, sink, pid, status="running")
        try:  # end of file: execve worked (the channel is close-on-exec)
            msg = parent.recv()
        except ChannelClosed:
            msg = None
        if msg is not None and msg["type"] == "error":
            from pyoci.errors import StepError

            raise StepError(msg["step"], msg["reason"])
        if opts.pid_file:
            write_pid_file(opts.pid_file, pid)
    except BaseException:
        if middle:  # not reaped yet, so the pid is still our child's
            forward_signal(middle, signals.SIGKILL)
        if proc_fd >= 0:
            try:
                signals.pidfd_send_signal(proc_fd, signals.SIGKILL)
            except ProcessLookupError:
                pass
        raise
    finally:
        parent.close()
        os.close(middle_fd)
        if proc_fd >= 0:
            os.close(proc_fd)
    if opts.detach:
        return 0
    target["pid"] = pid
    for num in pending:
        forward_signal(pid, num)
    try:
        if master:
            relay_terminal(master[0], pid)
        status = wait_for(pid)
    finally:
        for fd in master:
            os.close(fd)
        for sig in FORWARDED_SIGNALS:
            signals.signal(sig, signals.SIG_DFL)
    return exit_status(status)


def _setgroups_allowed(pid: int) -> bool:
    """Whether the container's user namespace lets its processes call setgroups(2), read
    from the host's /proc before joining: inside, /proc is the container's and may lie."""
    try:
        with open(f"/proc/{pid}/setgroups") as f:
            return f.read().strip() != "deny"
    except OSError:
        return True


def _expect(chan: Channel, kind: str, doing: str, watch: int | None = None
            ) -> dict[str, Any]:
    msg = recv_message(chan, doing, watch)
    if msg["type"] != kind:
        raise PyociError(f"protocol error: expected {kind!r}, got {msg['type']!r}")
    return msg
