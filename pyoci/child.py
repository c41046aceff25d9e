"""What the children of create and exec share (pyoci/init.py is the container's init,
pyoci/exec_child.py exec's process): the import seal, the named steps that report a
failure to the parent, the last fork, and the process attributes of config.md "Process"
(:func:`become_process`).

Apart from pyoci/init.py so that `exec` does not import what only the container's init
needs (mounts, devices, in-rootfs paths, hooks): ~3 ms less per exec (issue 16).
"""

from __future__ import annotations

import os
import sys

from pyoci import signals
from pyoci import syscalls as sc
from pyoci.config.model import Capabilities
from pyoci.errors import HookError, describe_oserror
from pyoci.executors import capabilities, lsm, process, terminal
from pyoci.executors.trampoline import Trampoline

TYPE_CHECKING = False  # annotations only: the children need no typing at run time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn

    from pyoci.config.model import Personality, Process
    from pyoci.sync import Channel


class _Failed(Exception):
    pass


class _NoImports:
    """A meta path finder that refuses every import not done yet."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        raise ImportError(f"pyoci bug: {name!r} imported in a container's process after it "
                          "could reach the container's files (docs/architecture.md)")


def seal_imports() -> None:
    """From here on the process joins or makes the container's mount namespace, mounts
    into its rootfs and pivots: a path on sys.path may then be the image's, and a lazy
    import would run the image's code with the runtime's privileges (a planted
    subprocess.py did, chained with a mount race: docs/security.md). So nothing is
    imported any more: sys.path is emptied and every import not already done fails
    loudly. Everything the children need is imported at module level, or by the parent
    before it forks (hooks.preload)."""
    sys.path[:] = []
    sys.path_importer_cache.clear()
    sys.meta_path.insert(0, _NoImports)  # type: ignore[arg-type]


class step:  # noqa: N801 - reads as ``with step(chan, "mount /proc"):``
    """One named step of the child's setup: any failure inside is sent to the parent as
    {"type": "error", "step": name, ...} and becomes :class:`_Failed`, which unwinds the
    child to its exit. (A class, not contextlib: ~1.5 ms less to import on every create.)"""

    def __init__(self, chan: Channel, name: str) -> None:
        self.chan = chan
        self.name = name

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if exc is None or isinstance(exc, _Failed):
            return
        if isinstance(exc, HookError):
            self.chan.send("error", step=self.name, reason=str(exc), hook=True)
            raise _Failed from None
        reason = describe_oserror(exc) if isinstance(exc, OSError) else str(exc) or repr(exc)
        if isinstance(exc, process.ExecNotFound):
            reason = exc.strerror or reason
        self.chan.send("error", step=self.name, reason=reason)
        raise _Failed from None


def fork_child(chan: Channel, what: str, child: Callable[[], NoReturn]) -> None:
    """The first child's last act, for create and exec alike: fork ``child`` (the
    container's init, or exec's process: the first process of a new pid namespace must be
    a child of the process that made it) and tell the parent its pid ("pid")."""
    with step(chan, what):
        pid = sc.fork()
    if pid == 0:
        child()
    chan.send("pid", pid=pid)


def become_process(chan: Channel, proc: Process, seccomp: Any, caller_umask: int,
                   setgroups: bool, personality: Personality | None = None,
                   ) -> tuple[str, dict[str, str], Trampoline]:
    """The process attributes of config.md "Process", in the order that keeps each one
    possible: rlimits, scheduler/ioPriority/personality, terminal, capabilities across
    the uid change, umask, cwd, labels, no_new_privs, seccomp. Shared by the container's
    init and `exec`. Returns the program to exec, its environment and the trampoline to
    exec it through (made first: an rlimit or the seccomp filter could forbid making it
    later)."""
    with step(chan, "prepare the exec trampoline"):
        hop = Trampoline()
    for rl in proc.rlimits:
        with step(chan, f"set rlimit {rl.type}"):
            process.set_rlimit(rl)
    # Scheduling attributes and the personality: while we still hold every capability
    # (real-time policies, negative nice and IOPRIO_CLASS_RT need CAP_SYS_NICE or
    # CAP_SYS_ADMIN) and before a seccomp filter that may forbid the calls.
    if proc.scheduler is not None:
        with step(chan, "set the scheduling policy"):
            process.set_scheduler(proc.scheduler)
    if proc.io_priority is not None:
        with step(chan, "set the I/O priority"):
            process.set_io_priority(proc.io_priority)
    if personality is not None:
        with step(chan, "set the execution domain"):
            process.set_personality(personality)
    if proc.terminal:
        with step(chan, "set up the terminal"):
            master, slave = terminal.open_pty(proc.console_size)
            terminal.become_controlling(slave, proc.user.uid, proc.user.gid)
        # The runtime passes the master on (console socket or its own relay).
        chan.send_fd("terminal", master)
        os.close(master)
        chan.expect("terminal-done")
    if seccomp is not None and not proc.no_new_privileges:
        # Without no_new_privs the kernel only lets CAP_SYS_ADMIN install a filter: load it
        # while we still have it (runc's order), before capabilities are dropped.
        _load_seccomp(chan, seccomp)

    env = process.build_env(proc)
    # Without process.capabilities the process gets none (as runc does), not ours.
    caps = proc.capabilities or Capabilities()
    with step(chan, "apply the capability bounding set"):
        capabilities.apply_bounding(caps)
    if not proc.terminal:  # a terminal's slave was given to the user already
        with step(chan, "hand stdio to the process user"):
            process.fix_stdio_permissions(proc.user.uid)
    with step(chan, "set user"):
        process.switch_user(proc.user, setgroups)
    with step(chan, "set capabilities"):
        capabilities.apply_sets(caps)
    # config.md: without process.user.umask, the caller's umask is kept.
    sc.umask(caller_umask if proc.user.umask is None else proc.user.umask)
    with step(chan, f"change to cwd {proc.cwd}"):
        sc.chdir(proc.cwd)
        _check_cwd()
    if proc.no_new_privileges:
        with step(chan, "set no_new_privs"):
            sc.set_no_new_privs()
    with step(chan, "look up the program"):
        path = process.find_executable(proc.args[0], env)
    with step(chan, "set LSM labels for exec"):
        lsm.apply_exec_labels(proc)
    if seccomp is not None and proc.no_new_privileges:
        # As late as possible, so the profile need not allow pyoci's own setup syscalls.
        _load_seccomp(chan, seccomp)
    return path, env, hop


def _check_cwd() -> None:
    """runc >= 1.1.12 (CVE-2024-21626): a cwd reached through a descriptor or mount that
    leads out of the container's root is reported by the kernel as "(unreachable)/...",
    which getcwd(3) turns into ENOENT. Refuse it rather than start the process there."""
    try:
        cwd = os.getcwd()
    except FileNotFoundError:
        cwd = ""
    if not cwd.startswith("/"):
        raise RuntimeError("current working directory is outside of the container's root "
                           "-- possible container breakout detected")


def _load_seccomp(chan: Channel, seccomp: Any) -> None:
    with step(chan, "load the seccomp filter"):
        notify_fd = sc.load_seccomp(seccomp)
    if notify_fd is not None:
        # The parent sends it on to linux.seccomp.listenerPath, which is outside our rootfs.
        chan.send_fd("seccomp", notify_fd)
        os.close(notify_fd)
        chan.expect("seccomp-done")


def _reset_signals() -> None:
    """CPython ignores SIGPIPE and SIGXFSZ and handles SIGINT; ignored dispositions and
    the signal mask survive execve, so the user's program would inherit them."""
    for sig in signals.valid_signals():
        try:
            signals.signal(sig, signals.SIG_DFL)
        except (OSError, ValueError):
            continue  # SIGKILL, SIGSTOP, and numbers with no handler slot
    signals.pthread_sigmask(signals.SIG_SETMASK, [])
