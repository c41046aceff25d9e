"""The container's side of `create`: the intermediate child and the init.

pyoci forks twice. The intermediate child joins and creates the namespaces (a new pid or
time namespace only applies to children) and forks the init, which is PID 1 of a new pid
namespace. The init sets up the rootfs and the process attributes, says "ready", blocks
on the exec FIFO until `start`, runs the startContainer hooks and execs the user's program.

Each step runs under :func:`step`: a failure is sent to the parent as
{"type": "error", "step": ..., "reason": ...} and the child exits, so the parent can name
the step that failed. Children never return into the CLI: they leave through os._exit.
"""

from __future__ import annotations

import errno
import os
import stat
import sys

from pyoci import syscalls as sc
from pyoci.child import (  # shared with exec_child; re-exported for tests
    _Failed,
    _reset_signals,
    become_process,
    fork_child,
    seal_imports,
    step,
)
from pyoci.config.model import Spec
from pyoci.errors import describe_oserror
from pyoci.executors import (
    devices,
    mounts,
    namespaces,
    process,
)
from pyoci.executors.hooks import HookError, run_hooks
from pyoci.executors.paths import ensure_dir
from pyoci.record import frozen
from pyoci.sync import Channel

TYPE_CHECKING = False  # annotations only: the init needs no typing at run time
if TYPE_CHECKING:
    from typing import Any, NoReturn


@frozen
class InitContext:
    spec: Spec
    rootfs: str
    bundle: str
    parent_mnt_ns: str
    fifo_fd: int  # O_PATH, of the exec FIFO itself: a path nobody can chdir through
    joined: list[tuple[str, int]]
    chan: Channel
    caller_umask: int = 0o022
    no_pivot: bool = False
    no_new_keyring: bool = False
    preserve_fds: int = 0
    seccomp: Any = None  # a compiled pyoci.executors.seccomp.SeccompFilter


def intermediate(ctx: InitContext) -> NoReturn:
    """First child: namespaces, then fork the init and report its pid."""
    code = 1
    try:
        linux = ctx.spec.linux
        with step(ctx.chan, "make the runtime process non-dumpable"):
            # Before any namespace is joined or made, and inherited by the init
            # (docs/security.md, CVE-2019-5736 class).
            sc.set_non_dumpable()
        seal_imports()
        with step(ctx.chan, "close inherited file descriptors"):
            sc.close_fds_except(3 + ctx.preserve_fds,
                                [ctx.chan.fileno(), ctx.fifo_fd, *(fd for _, fd in ctx.joined)])
        # The parent moves us into the container's cgroup first: what we unshare (a cgroup
        # namespace) and fork (the init) must start there.
        ctx.chan.expect("cgroup")
        with step(ctx.chan, "join namespaces"):
            namespaces.join(ctx.joined)

        # Rootless: the unprivileged parent can open /proc/<us>/uid_map only while we are
        # dumpable (a non-dumpable process's /proc files belong to root); runc's nsexec
        # turns it on for the map write alone, as here, before anything is mounted.
        unprivileged = os.geteuid() != 0

        def map_ids() -> None:
            if unprivileged:
                sc.prctl(sc.PR_SET_DUMPABLE, 1)
            ctx.chan.send("userns")
            ctx.chan.expect("userns-done")
            if unprivileged:
                sc.set_non_dumpable()

        with step(ctx.chan, "create namespaces"):
            namespaces.unshare_new(linux, map_ids)
        with step(ctx.chan, "write time namespace offsets"):
            namespaces.write_time_offsets(linux)
        fork_child(ctx.chan, "fork the container init", lambda: container_init(ctx))
        code = 0
    except _Failed:
        pass
    except BaseException:  # noqa: BLE001
        pass
    finally:
        sc.exit_now(code)


# exec's children (ExecContext, exec_intermediate, _exec_process) are in pyoci/exec_child.py.


def _dev_is_bound(spec: Spec) -> bool:
    return any(m.destination.rstrip("/") == "/dev" and mounts.is_bind(m) for m in spec.mounts)


def container_init(ctx: InitContext) -> NoReturn:
    try:
        _reset_signals()
        _setup_and_exec(ctx)
    except BaseException:  # noqa: BLE001
        pass
    sc.exit_now(1)


def _setup_and_exec(ctx: InitContext) -> None:
    spec, chan, rootfs = ctx.spec, ctx.chan, ctx.rootfs
    proc, linux = spec.process, spec.linux
    chan.expect("go")

    with step(chan, "close inherited file descriptors"):
        # CVE-2024-21626 class: a host directory fd left open here could become the
        # process's cwd through /proc/self/fd/N. Only stdio, --preserve-fds, the channel
        # and the exec FIFO's O_PATH fd (not a directory) stay.
        sc.close_fds_except(3 + ctx.preserve_fds, [chan.fileno(), ctx.fifo_fd])
    with step(chan, "start a new session"):
        # runc always does: `kill 0` in the container must not reach the engine's shim
        # or conmon, and the caller's controlling terminal is left behind.
        sc.new_session()
    # From the host's /proc, before the container's replaces it.
    setgroups = _setgroups_allowed()
    # config-linux.md: a namespace type not listed is the runtime's. Without a mount
    # namespace the init makes no mount at all and only chroots into the rootfs.
    own_mntns = linux.namespace("mount") is not None
    with step(chan, "check the mount namespace"):
        # Safety rule: no mount is made until we know it cannot reach the host.
        if own_mntns and namespaces.ns_inode("self", "mount") == ctx.parent_mnt_ns:
            raise RuntimeError("the init is still in the runtime's mount namespace; "
                               "refusing to touch mounts")
        if not own_mntns:
            _refuse_mounts_without_mntns(spec)
    if not ctx.no_new_keyring:
        with step(chan, "join a new session keyring"):
            try:
                sc.join_session_keyring(None)
            except OSError as exc:
                if exc.errno != errno.ENOSYS:
                    raise
    sc.umask(0)
    if own_mntns:
        with step(chan, f"set rootfs propagation ({linux.rootfs_propagation or 'rslave'})"):
            mounts.prepare_root(rootfs, linux.rootfs_propagation)
    for m in spec.mounts:
        with step(chan, f"mount {m.destination} ({m.type or 'bind'}) onto rootfs"):
            mounts.mount_entry(rootfs, ctx.bundle, m, linux.mount_label,
                               cgroup_ns=linux.namespace("cgroup") is not None)
    if own_mntns and not _dev_is_bound(spec):  # without: the rootfs's /dev as it is
        with step(chan, "create default devices in /dev"):
            devices.create_default_devices(rootfs, proc is not None and proc.terminal)
    for dev in linux.devices:
        with step(chan, f"create device {dev.path}"):
            devices.create_device(rootfs, dev)
    if proc is not None:
        with step(chan, f"create cwd {proc.cwd}"):
            ensure_dir(rootfs, proc.cwd)
    if proc is not None and proc.oom_score_adj is not None:
        with step(chan, "set oom_score_adj"):
            process.set_oom_score_adj(proc.oom_score_adj)
    netns = linux.namespace("network")
    if netns is not None and not netns.path:
        with step(chan, "bring up loopback"):
            sc.set_link_up("lo")

    # The runtime runs prestart and createRuntime hooks now, in its own namespaces.
    chan.send("hooks")
    # Hooks run in the container's namespaces see the pid as the container sees it.
    state = chan.expect("hooks-done")["state"] | {"pid": os.getpid()}
    with step(chan, "createContainer hooks"):
        run_hooks("createContainer", spec.hooks.create_container, state)

    fd_dir = None
    if not own_mntns:
        # Never pivot_root or MS_MOVE here (--no-pivot included): this is the runtime's
        # mount namespace. The exec FIFO is reopened through /proc, which the rootfs has
        # not got (no proc mount without a mount namespace): keep the host's
        # /proc/self/fd open for that, until the FIFO is open (before any user code).
        with step(chan, "chroot into rootfs (no mount namespace)"):
            fd_dir = _proc_fd_dir()
            mounts.chroot_into(rootfs)
    else:
        with step(chan, "pivot_root into rootfs" if not ctx.no_pivot else "move rootfs to /"):
            (mounts.move_into if ctx.no_pivot else mounts.pivot_into)(rootfs)
    if linux.rootfs_propagation:
        with step(chan, f"set rootfs propagation of / ({linux.rootfs_propagation})"):
            mounts.finish_root(linux.rootfs_propagation)
    # Before masked and read-only paths: those may make /proc/sys read-only.
    for key, value in linux.sysctl.items():
        with step(chan, f"set sysctl {key}={value}"):
            process.write_sysctl(key, value)
    for path in linux.masked_paths:
        with step(chan, f"mask {path}"):
            mounts.mask_path(path)
    for path in linux.readonly_paths:
        with step(chan, f"make {path} read-only"):
            mounts.readonly_path(path)
    if spec.hostname:  # runc leaves the name alone when it is ""
        with step(chan, "set hostname"):
            process.set_hostname(spec.hostname)
    if spec.domainname:
        with step(chan, "set domainname"):
            process.set_domainname(spec.domainname)
    if spec.root is not None and spec.root.readonly:
        with step(chan, "remount rootfs read-only"):
            mounts.readonly_root()
    if proc is None:
        # runtime.md: create works without a process; start then MUST fail.
        _ready_then_fail(ctx, state, "process was not set in config.json; nothing to start",
                         fd_dir)
    path, env, hop = become_process(chan, proc, ctx.seccomp, ctx.caller_umask, setgroups,
                                    linux.personality)
    with step(chan, "check the exec FIFO"):
        _check_fifo_reachable(ctx.fifo_fd, fd_dir)
    chan.send("ready")
    chan.close()
    # Blocks until `start` opens the FIFO for reading: the container is "created".
    fifo = _open_fifo(ctx.fifo_fd, fd_dir)
    try:
        run_hooks("startContainer", spec.hooks.start_container, state | {"status": "created"})
        hop.execve(path, list(proc.args), env)
    except BaseException as exc:  # noqa: BLE001 - told to `start` through the FIFO
        reason = str(exc) if isinstance(exc, HookError) else f"exec {path}: {describe_oserror(exc)}"
        sc.write(fifo, reason.encode())
        sys.stderr.flush()
    sc.exit_now(1)


def _refuse_mounts_without_mntns(spec: Spec) -> None:
    """Defence in depth for a config without a mount namespace: validation refused
    everything that needs a mount (config/semantic.py no_mount_namespace_problems); if
    anything of it got here, stop before touching the runtime's mount namespace."""
    linux = spec.linux
    if (spec.mounts or linux.masked_paths or linux.readonly_paths or linux.devices
            or linux.sysctl or linux.rootfs_propagation
            or (spec.root is not None and spec.root.readonly)):
        raise RuntimeError("pyoci bug: a config without a mount namespace that needs "
                           "mounts got past validation; refusing to mount in the runtime's "
                           "mount namespace")


def _proc_fd_dir() -> int:
    """O_PATH fd of this process's fd directory in the host's procfs (checked to be a
    procfs), for reopening the exec FIFO after a chroot into a rootfs without /proc."""
    fd = os.open("/proc/self/fd", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    if sc.fstatfs_type(fd) != sc.PROC_SUPER_MAGIC:
        os.close(fd)
        raise RuntimeError("/proc/self/fd is not on a procfs")
    return fd


def _check_fifo_reachable(fifo_fd: int, fd_dir: int | None = None) -> None:
    """The FIFO is reopened through the container's /proc after `ready` (runc does the
    same), so check now, while an error can still be reported, that /proc is there and
    leads to this very FIFO. ``fd_dir``: the host's /proc/self/fd, held open instead
    when the container has no mount namespace."""
    want = os.fstat(fifo_fd)
    try:
        if fd_dir is not None:
            got = os.stat(str(fifo_fd), dir_fd=fd_dir)
        else:
            got = os.stat(f"/proc/self/fd/{fifo_fd}")
    except OSError as exc:
        raise RuntimeError(f"/proc/self/fd/{fifo_fd}: {describe_oserror(exc)}: the exec "
                           "FIFO is reopened through /proc, so the container needs a proc "
                           "mount at /proc (as with runc)") from None
    if (got.st_dev, got.st_ino) != (want.st_dev, want.st_ino):
        raise RuntimeError("/proc in the container does not lead to the exec FIFO: it is not "
                           "the container's procfs")


def _open_fifo(fifo_fd: int, fd_dir: int | None = None) -> int:
    """Open the exec FIFO for writing through its O_PATH fd (blocks until `start`), check
    it is the same FIFO, and drop the O_PATH fd: no runtime fd reaches the user's program
    but this one, which is close-on-exec."""
    if fd_dir is not None:
        fd = sc.open_file(str(fifo_fd), os.O_WRONLY | os.O_CLOEXEC, dir_fd=fd_dir)
        os.close(fd_dir)  # before any hook or the user's program runs
    else:
        fd = sc.open_file(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    want, got = os.fstat(fifo_fd), os.fstat(fd)
    if (got.st_dev, got.st_ino) != (want.st_dev, want.st_ino) or not stat.S_ISFIFO(got.st_mode):
        # Checked before `ready` already; only a /proc swapped since can get here. There
        # is nobody to tell: exit, and `start` sees the init gone (it watches a pidfd).
        sc.exit_now(1)
    os.close(fifo_fd)
    return fd


def _ready_then_fail(ctx: InitContext, state: dict, reason: str,
                     fd_dir: int | None = None) -> NoReturn:
    """Be a created container whose start can only fail, with ``reason``."""
    with step(ctx.chan, "check the exec FIFO"):
        _check_fifo_reachable(ctx.fifo_fd, fd_dir)
    ctx.chan.send("ready")
    ctx.chan.close()
    fifo = _open_fifo(ctx.fifo_fd, fd_dir)
    sc.write(fifo, reason.encode())
    sc.exit_now(1)


def _setgroups_allowed() -> bool:
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() != "deny"
    except OSError:
        return True
