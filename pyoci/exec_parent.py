"""exec's parent side: the process built from the container's config and the flags, the
checks, and the fork sequence that puts it into the container (``_ExecDriver`` over
pyoci/process_driver.py; the children's side is pyoci/exec_child.py).

Imported by :func:`pyoci.operations.exec.exec_process` only after it has started the
kernel's wait for a cgroup move (pyoci/cgroups/prime.py), so that these imports -- most of
exec's own time -- overlap that wait.
"""

from __future__ import annotations

import os

from pyoci import jsonio
from pyoci import syscalls as sc
from pyoci.config.loader import load_spec
from pyoci.config.model import Capabilities, Process, Spec
from pyoci.errors import PyociError, StateError
from pyoci.exec_child import ExecContext, exec_intermediate
from pyoci.executors import namespaces
from pyoci.operations.common import (
    check_preserved_fds,
    current_umask,
    write_pid_file,
)
from pyoci.operations.foreground import (
    SignalForwarder,
    exit_status,
    relay_terminal,
    wait_for,
)
from pyoci.operations.handover import serve_process_setup
from pyoci.process_driver import ProcessDriver
from pyoci.record import evolve
from pyoci.state import SPEC_FILE, Container
from pyoci.sync import ChannelClosed

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from pyoci.operations.exec import ExecOptions
    from pyoci.state import CgroupRecord


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


def run_exec(root: str, cid: str, opts: ExecOptions) -> int:
    """The body of :func:`pyoci.operations.exec.exec_process`, once the kernel's wait for
    a cgroup move is under way."""
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
    record = c.private.cgroup  # the record, not the manager: its directories suffice
    if record is not None and not record.exists():
        record = None
    cgroup_dirs = _exec_cgroup_dirs(record, sub_cgroups)
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


def _exec_cgroup_dirs(mgr: CgroupRecord | None, sub: dict[str, str]) -> list[str]:
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
    """Move ``pid`` into the cgroup ``directory`` (its cgroup.procs), as the manager's
    ``add`` does, without importing the manager."""
    path = os.path.join(directory, "cgroup.procs")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(pid).encode())
        finally:
            os.close(fd)
    except OSError as exc:
        from pyoci.cgroups import CgroupError
        from pyoci.errors import describe_oserror

        raise CgroupError(f"adding pid {pid} to {directory}: writing {str(pid)!r} to "
                          f"{path}: {describe_oserror(exc)}") from exc


def _spawn(c: Container, spec: Spec, proc: Process, opts: ExecOptions, seccomp: Any,
           console: str | None, cgroup_dirs: list[str]) -> int:
    forwarder = None
    if not opts.detach:
        forwarder = SignalForwarder()
        forwarder.install()
    try:
        driver = _ExecDriver(c, spec, proc, opts, seccomp, console, cgroup_dirs)
        pid = driver.run()
        if forwarder is None:
            return 0
        forwarder.target(pid)
        master = driver.master
        try:
            if master:
                relay_terminal(master[0], pid)
            status = wait_for(pid)
        finally:
            for fd in master:
                os.close(fd)
    finally:
        if forwarder is not None:
            forwarder.restore()
    return exit_status(status)


class _ExecDriver(ProcessDriver):
    """exec's side of the fork sequence (pyoci/process_driver.py): the child is
    exec_child.exec_intermediate, which joins the container's namespaces and forks the
    process; the pty master goes to --console-socket or to our relay; the process's
    channel closing (it is close-on-exec) says its execve worked."""

    joining = "join the container"

    def __init__(self, c: Container, spec: Spec, proc: Process, opts: ExecOptions,
                 seccomp: Any, console: str | None, cgroup_dirs: list[str]) -> None:
        self.c, self.spec, self.opts, self.console = c, spec, opts, console
        self.cgroup_dirs = cgroup_dirs
        self.master: list[int] = []
        joined = _container_namespaces(spec, c.pid)
        root_fd = -1
        if spec.linux.namespace("mount") is None:
            # No mount namespace (config-linux.md: inherited from the runtime): the init
            # is only chroot'ed into the rootfs, so the process must be too -- into the
            # init's very root, held by an fd until the child has joined the namespaces.
            try:
                root_fd = os.open(f"/proc/{c.pid}/root", os.O_PATH | os.O_DIRECTORY
                                  | os.O_CLOEXEC)
            except OSError as exc:
                for _, fd in joined:
                    os.close(fd)
                raise PyociError(f'container "{c.id}": its root: {exc.strerror}') from None
        self._lent = [fd for _, fd in joined] + ([root_fd] if root_fd >= 0 else [])
        super().__init__()
        self.ctx = ExecContext(process=proc, joined=joined, chan=self.child_chan,
                               seccomp=seccomp, caller_umask=current_umask(),
                               preserve_fds=opts.preserve_fds, root_fd=root_fd,
                               setgroups_allowed=_setgroups_allowed(c.pid),
                               personality=spec.linux.personality)

    def child_main(self) -> NoReturn:
        exec_intermediate(self.ctx)

    def lent_fds(self) -> list[int]:
        return self._lent

    def join_cgroup(self, middle: int) -> None:
        for d in self.cgroup_dirs:  # the container's cgroup, or the --cgroup sub-cgroups
            add_to_cgroup(d, middle)

    def setup(self) -> None:
        sink = None if self.console or self.opts.detach else self.master.append
        serve_process_setup(self.chan, self.c, self.spec, self.console, sink, self.pid,
                            status="running")

    def finish(self) -> None:
        try:  # end of file: execve worked (the channel is close-on-exec)
            self.chan.expect(None)  # a failure of the exec step raises StepError
        except ChannelClosed:
            pass
        if self.opts.pid_file:
            write_pid_file(self.opts.pid_file, self.pid)

    def undo(self) -> None:
        for fd in self.master:
            os.close(fd)
        self.master.clear()


def _setgroups_allowed(pid: int) -> bool:
    """Whether the container's user namespace lets its processes call setgroups(2), read
    from the host's /proc before joining: inside, /proc is the container's and may lie."""
    try:
        with open(f"/proc/{pid}/setgroups") as f:
            return f.read().strip() != "deny"
    except OSError:
        return True

