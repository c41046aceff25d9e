"""create's parent side: the checked config, the state directory, the cgroup and the fork
sequence (``_CreateDriver`` over pyoci/process_driver.py; the children's side is
pyoci/init.py), with the undo of everything made when a step fails.

Imported by :func:`pyoci.operations.create.create` only after it has started the kernel's
wait for a cgroup move (pyoci/cgroups/prime.py), so that these imports -- ~10 ms --
overlap that wait (measured: ~12 ms more per create when they came first).

Parent/child sequence (see docs/architecture.md for the drawing; the parent's side is the
process driver shared with exec, pyoci/process_driver.py, as ``_CreateDriver`` below):
  parent                                 intermediate child        init (pid 1)
  validate, mkdir state, mkfifo
  make the cgroup, write resources
  fork, put the child in the cgroup -->  (waits for "cgroup")
                      --- "cgroup" -->   setns (joined namespaces)
                                         unshare(new namespaces)
  write uid/gid maps <--- "userns" ---   (if a new user namespace)
                      --- "userns-done" ->
                                         write time offsets
                                         fork ------------------>  (PID 1)
  record init pid   <--- "pid" -------   exit 0
                      --- "go" ------------------------------------>  mounts, devices
  prestart/createRuntime hooks <--- "hooks" -----------------------
                      --- "hooks-done" ---------------------------->  createContainer hooks,
                                                                       pivot_root, masks,
                                                                       sysctl, rlimits, user
                                                                       caps, seccomp
  send notify fd to the listener <--- "seccomp" (fd) --------------   (only with NOTIFY rules)
  write state, pid file <--- "ready" ------------------------------   open exec FIFO (blocks)
"""

from __future__ import annotations

import fcntl
import os

from pyoci import OCI_VERSION, log, signals
from pyoci.config.bundle import read_bundle
from pyoci.config.check import check, check_console
from pyoci.config.model import Spec
from pyoci.errors import ContainerExists, PyociError, StepError
from pyoci.executors import namespaces, network
from pyoci.executors.hooks import HookError, run_hooks, run_hooks_warn
from pyoci.init import InitContext, intermediate
from pyoci.operations.common import (
    check_preserved_fds,
    current_umask,
    now_rfc3339,
    remove_cgroup,
    wait_gone,
    write_pid_file,
)
from pyoci.operations.handover import serve_process_setup
from pyoci.process_driver import ProcessDriver, reap
from pyoci.state import (
    LOCK_FILE,
    SPEC_FILE,
    Container,
    StateRecord,
    proc_stat,
    write_json_atomic,
)

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from pyoci.cgroups.manager import Manager
    from pyoci.operations.create import CreateOptions


def _socket_activation_fds() -> int:
    """systemd socket activation (sd_listen_fds(3)), as runc honours it (go-systemd's
    activation.Files): LISTEN_FDS sockets from fd 3 on are passed on to the container's
    process ahead of the --preserve-fds ones only when LISTEN_PID is set and is our own
    pid. Without LISTEN_PID the fds were not meant for us -- a caller's stray fd 3 (a
    host directory) must not reach the container."""
    try:
        count = int(os.environ.get("LISTEN_FDS", "0"))
        owner = int(os.environ.get("LISTEN_PID", "0"))
    except ValueError:
        return 0
    return count if count > 0 and owner == os.getpid() else 0


def _with_listen_env(spec: Spec, count: int) -> Spec:
    """The process sees the sockets as its own: LISTEN_FDS=n and LISTEN_PID=1 (its pid in
    the container's pid namespace), as runc sets them."""
    from pyoci.record import evolve

    if spec.process is None:
        return spec
    env = tuple(e for e in spec.process.env if not e.startswith(("LISTEN_FDS=", "LISTEN_PID=")))
    env += (f"LISTEN_FDS={count}", "LISTEN_PID=1")
    return evolve(spec, process=evolve(spec.process, env=env))


def _rootfs(spec: Spec, bundle: str) -> str:
    assert spec.root is not None
    path = spec.root.path
    return os.path.realpath(path if os.path.isabs(path) else os.path.join(bundle, path))


def run_create(root: str, cid: str, opts: CreateOptions) -> Container:
    """The body of :func:`pyoci.operations.create.create`, once the kernel's wait for a
    cgroup move is under way; on any failure undo everything and raise."""
    c = Container(root, cid)  # validates the id before anything is read or made
    # runtime.md: a config without `process` can be created; `start` then fails.
    # The one checker (config/check.py), as `validate` runs it: every config problem at
    # once, before anything exists -- the seccomp profile compiled (a syscall name
    # libseccomp does not know is skipped with a warning, as runc skips it; the init only
    # loads the filter) and the network request checked (pyroute2 itself is only
    # imported once the init is there).
    checked = check(read_bundle(opts.bundle), opts.bundle)
    spec, doc = checked.spec, checked.doc
    terminal = spec.process is not None and spec.process.terminal
    try:
        check_console(terminal, opts.console_socket, opts.console_sink is not None)
    except PyociError:
        checked.release()
        raise
    checked.log()
    net_req, seccomp_filter = checked.net, checked.seccomp
    listen = _socket_activation_fds()
    if listen:
        spec = _with_listen_env(spec, listen)
        opts.preserve_fds += listen
    check_preserved_fds(opts.preserve_fds)
    # Private to root (runc: 0700): nobody else may reach the FIFO or the records.
    try:
        os.makedirs(root, 0o700, exist_ok=True)
        os.mkdir(c.dir, 0o700)
    except FileExistsError:
        raise ContainerExists(cid) from None
    except PermissionError as exc:
        from pyoci.rootless import root_hint

        raise PyociError(f"creating the state directory {exc.filename}: permission denied"
                         f"{root_hint(root)}") from None
    init_pid = 0
    # Held until create is done: other commands on this id wait, and `state` can tell a
    # live create from one that died (see Container.creator_alive).
    lock_fd = os.open(os.path.join(c.dir, LOCK_FILE), os.O_CREAT | os.O_RDONLY | os.O_CLOEXEC,
                      0o600)
    fcntl.flock(lock_fd, fcntl.LOCK_EX)
    try:
        os.chmod(c.dir, 0o700)
        _make_exec_fifo(c.fifo_path, spec)
        c.record = StateRecord.from_json(_initial_state(c, spec, doc, opts))
        c.save()
        # exec builds its process from this (validated already) rather than re-reading a
        # bundle that may have changed since.
        write_json_atomic(os.path.join(c.dir, SPEC_FILE), doc)
        cgroup = _make_cgroup(c, spec, doc, opts)
        init_pid = _spawn(c, spec, opts, lock_fd, cgroup, seccomp_filter, net_req)
    except BaseException as exc:
        _undo(c, spec, init_pid or c.pid, exc)
        raise
    finally:
        os.close(lock_fd)
    return c


def _make_exec_fifo(path: str, spec: Spec) -> None:
    """The exec FIFO, 0600 and owned by the host ids of the container's process user: the
    init reopens it after it has become that user (through /proc/self/fd, as runc), and
    nobody else can write a fake start error into it or hold it open."""
    os.mkfifo(path, 0o600)
    os.chmod(path, 0o600)
    user = spec.process.user if spec.process is not None else None
    if user is None:
        return
    uid = _host_id(user.uid, spec.linux.uid_mappings, os.geteuid())
    gid = _host_id(user.gid, spec.linux.gid_mappings, os.getegid())
    if (uid, gid) != (os.geteuid(), os.getegid()):
        try:
            os.chown(path, uid, gid)
        except PermissionError:
            if os.geteuid() == 0:
                raise
            # Rootless, the process user is one of the caller's subordinate ids, which
            # only root may chown to (runc fails here: "fchown fd: operation not
            # permitted"). Writable by others instead, as runc's 0622 FIFO always is: the
            # state directory is 0700, so only the init's O_PATH fd reaches it.
            os.chmod(path, 0o622)


def _host_id(container_id: int, mappings: tuple[Any, ...], unmapped: int) -> int:
    """``container_id`` seen from the host through a user namespace's mappings (the id
    itself without them; ``unmapped`` if it is not mapped: setuid fails later anyway)."""
    if not mappings:
        return container_id
    for m in mappings:
        if m.container_id <= container_id < m.container_id + m.size:
            return m.host_id + container_id - m.container_id
    return unmapped


def _initial_state(c: Container, spec: Spec, doc: dict[str, Any],
                   opts: CreateOptions) -> dict[str, Any]:
    hooks = doc.get("hooks") or {}
    new_pidns = any(ns.type == "pid" and not ns.path for ns in spec.linux.namespaces)
    return {
        "ociVersion": OCI_VERSION,
        "id": c.id,
        "status": "creating",
        "pid": 0,
        "bundle": opts.bundle,
        "rootfs": _rootfs(spec, opts.bundle),
        "created": now_rfc3339(),
        "owner": _owner(),
        "annotations": dict(spec.annotations),
        # pyoci's own bookkeeping; the `state` command never prints it.
        "pyoci": {
            "initStartTime": 0,
            "newPidNamespace": new_pidns,
            "hooks": {k: hooks.get(k) or [] for k in ("poststart", "poststop")},
            "configOciVersion": spec.oci_version,
        },
    }


def _owner() -> str:
    """runc's OWNER: the name of the user who made the container (its uid if unnamed)."""
    if os.geteuid() == 0:
        return "root"
    from pyoci.rootless import user_name

    return user_name(os.geteuid())


def _make_cgroup(c: Container, spec: Spec, doc: dict[str, Any],
                 opts: CreateOptions) -> Manager:
    """config-linux.md "Control groups": the container's cgroup, with its limits and device
    allow-list, exists before the init runs anything of the user's."""
    from pyoci import rootless
    from pyoci.cgroups.controllers import effective_device_rules
    from pyoci.cgroups.manager import open_manager

    mgr = open_manager(spec.linux.cgroups_path, c.id, systemd=opts.systemd_cgroup,
                       rootless=rootless.active())
    # Recorded before the first mkdir, so an interrupted create can still be cleaned up.
    c.track_cgroup(mgr.record)  # and at every save: create() and add() update it
    c.private.resources = (doc.get("linux") or {}).get("resources") or {}
    c.save()
    mgr.create()
    c.save()  # now records what this create made, so delete --force can remove it
    mgr.set(spec.linux.resources,
            effective_device_rules(spec.linux.resources, spec.linux.devices))
    return mgr


def _spawn(c: Container, spec: Spec, opts: CreateOptions, lock_fd: int, cgroup: Manager,
           seccomp_filter: Any, net_req: network.NetworkRequest | None = None) -> int:
    """Fork the intermediate child and drive the conversation up to "ready"."""
    if spec.hooks.create_container or spec.hooks.start_container:
        from pyoci.executors.hooks import preload

        preload()  # the init runs them where it may import nothing (init.seal_imports)
    if any("tmpcopyup" in m.options for m in spec.mounts):
        import shutil  # noqa: F401 - mounts.py copies up with it, in the sealed init
    return _CreateDriver(c, spec, opts, lock_fd, cgroup, seccomp_filter, net_req).run()


class _CreateDriver(ProcessDriver):
    """create's side of the fork sequence (pyoci/process_driver.py): the child is
    init.intermediate, which forks the container's init; uid/gid maps are written on its
    request; the init's pid is recorded as soon as it is known, then the network devices
    are lent, and after "go" the prestart and createRuntime hooks run."""

    joining = "create namespaces"

    def __init__(self, c: Container, spec: Spec, opts: CreateOptions, lock_fd: int,
                 cgroup: Manager, seccomp_filter: Any,
                 net_req: network.NetworkRequest | None) -> None:
        self.c, self.spec, self.opts = c, spec, opts
        self.lock_fd, self.cgroup, self.net_req = lock_fd, cgroup, net_req
        self.attached: network.Attached | None = None
        joined = namespaces.open_joined(spec.linux)
        try:
            # The FIFO itself, not the state directory: an fd of a directory on the host
            # is what CVE-2024-21626 turned into a cwd outside the container.
            fifo_fd = os.open(c.fifo_path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except BaseException:
            for _, fd in joined:
                os.close(fd)
            raise
        self._lent = [fifo_fd, *(fd for _, fd in joined)]
        super().__init__()
        self.ctx = InitContext(spec=spec, rootfs=_rootfs(spec, opts.bundle),
                               bundle=opts.bundle,
                               parent_mnt_ns=namespaces.ns_inode("self", "mount"),
                               fifo_fd=fifo_fd, joined=joined, chan=self.child_chan,
                               no_pivot=opts.no_pivot, no_new_keyring=opts.no_new_keyring,
                               preserve_fds=opts.preserve_fds, caller_umask=current_umask(),
                               seccomp=seccomp_filter)

    def child_main(self) -> NoReturn:
        intermediate(self.ctx)

    def lent_fds(self) -> list[int]:
        return self._lent

    def parent_only_fds(self) -> list[int]:
        return [self.lock_fd]  # the lock belongs to this create, not to the container

    def join_cgroup(self, middle: int) -> None:
        self.cgroup.add(middle)

    def answer(self, msg: dict[str, Any]) -> None:
        if msg["type"] != "userns":
            super().answer(msg)
        try:
            namespaces.write_id_maps(self.middle, self.spec.linux)
        except OSError as exc:
            raise StepError("write uid/gid mappings",
                            exc.strerror.lower() if exc.strerror else str(exc)) from None
        self.chan.send("userns-done")

    def started(self) -> None:
        # Recorded at once, so a create killed from here on leaves a pid that delete can
        # still find and kill.
        c, st = self.c, proc_stat(self.pid)
        c.record.pid = self.pid
        c.private.init_start_time = st[1] if st else 0
        c.save()
        if network.wanted(self.spec):
            # The init's network namespace exists and it is still waiting for "go": the
            # devices are in place before its setup, the hooks and the user's process.
            self.attached = _setup_network(c, self.spec, self.pid, self.net_req)

    def setup(self) -> None:
        c, spec = self.c, self.spec
        self.chan.expect("hooks", "set up the container")
        state = c.spec_state("creating") | {"pid": self.pid}
        try:
            run_hooks("prestart", spec.hooks.prestart, state)
            run_hooks("createRuntime", spec.hooks.create_runtime, state)
        except HookError as exc:
            raise StepError("run hooks", str(exc), hook=True) from None
        self.chan.send("hooks-done", state=state)
        serve_process_setup(self.chan, c, spec, self.opts.console_socket,
                            self.opts.console_sink, self.pid)

    def finish(self) -> None:
        # Still under the undo: if these fail, the lent network devices go back first.
        self.c.record.status = "created"
        self.c.save()
        if self.opts.pid_file:
            write_pid_file(self.opts.pid_file, self.pid)
        if self.attached is not None:
            self.attached.close()

    def undo(self) -> None:
        if self.pid:
            self.c.record.pid = self.pid  # for create's _undo, which kills and waits
        if self.attached is not None:
            self.attached.undo()  # through the namespace fd it holds, the init dead or alive


def _setup_network(c: Container, spec: Spec, init_pid: int,
                   net_req: network.NetworkRequest | None) -> network.Attached:
    def record(doc: dict[str, Any] | None) -> None:
        c.private.network = doc
        c.save()

    attached = network.setup(c.root, c.id, spec, init_pid, net_req, record)
    if attached.bridge is not None:
        # Shown by `state` (and given to hooks) without leaving the spec's state schema:
        # annotations are a string map.
        c.record.annotations[network.ADDRESS_ANNOTATION] = network.address_of(attached.bridge)
        c.save()
    return attached


def _release_network(c: Container) -> None:
    record = c.private.network
    if not record:
        return
    try:
        network.release(c.root, c.id, record)
    except Exception as exc:  # noqa: BLE001 - the create's own error comes first
        log.warn(f"could not release the network of {c.id!r}: {exc}")


def _undo(c: Container, spec: Spec, init_pid: int, exc: BaseException) -> None:
    """Leave nothing behind: the init (and with it its namespaces and mounts), the state
    directory. After a failing hook, poststop hooks still run (config.md "Lifecycle")."""
    if init_pid:
        try:
            os.kill(init_pid, signals.SIGKILL)
        except ProcessLookupError:
            pass
        else:
            reap(init_pid)
            wait_gone(init_pid, 10)
    _release_network(c)
    cgroup_left = False
    try:
        remove_cgroup(c)
    except PyociError as cleanup:
        # The user needs the error that made create fail; this one comes second, and the
        # state directory stays so that `delete --force` can finish the job.
        log.warn(f"{cleanup}; remove it with: pyoci delete --force {c.id}")
        cgroup_left = True
    if isinstance(exc, StepError) and exc.hook:
        run_hooks_warn("poststop", spec.hooks.poststop, c.spec_state("stopped"))
    if not cgroup_left:
        import shutil

        shutil.rmtree(c.dir, ignore_errors=True)

