"""The container's side of `exec`: the intermediate child and the exec'd process.

Moved out of pyoci/init.py (which keeps the container's init). The same rules hold as
there: the children call :func:`pyoci.init.seal_imports` before any namespace is joined
(docs/architecture.md "Lazy imports have one rule"), so everything used here is imported
at module level, by the parent, before it forks; they are non-dumpable before the joins,
close inherited fds with close_range, start a new session and exec the user's program
through the memfd trampoline (pyoci/executors/trampoline.py, via become_process).

Each step runs under :class:`pyoci.init.step`: a failure is sent to the parent as
{"type": "error", "step": ..., "reason": ...} and the child leaves through sc.exit_now (os._exit).
"""

from __future__ import annotations

import os

from pyoci import syscalls as sc
from pyoci.child import _reset_signals, become_process, fork_child, seal_imports, step
from pyoci.config.model import Personality, Process
from pyoci.executors import namespaces, process
from pyoci.record import frozen
from pyoci.sync import Channel

TYPE_CHECKING = False  # annotations only: the children need no typing at run time
if TYPE_CHECKING:
    from typing import Any, NoReturn


@frozen
class ExecContext:
    """What an `exec`'d process needs: its spec, the container's namespaces (opened fds, in
    joining order) and the compiled seccomp filter of the container."""
    process: Process
    joined: list[tuple[str, int]]
    chan: Channel
    seccomp: Any = None
    caller_umask: int = 0o022
    preserve_fds: int = 0
    # Read by the parent from the host's /proc/<init>/setgroups: the container's own /proc
    # is the container's to fake.
    setgroups_allowed: bool = True
    # O_PATH fd of the init's root when the container has no mount namespace (it is only
    # chroot'ed there): the process is chroot'ed there too after the joins. -1: none.
    root_fd: int = -1
    # linux.personality of the container: runc applies it to exec'd processes too.
    personality: Personality | None = None


def exec_intermediate(ctx: ExecContext) -> NoReturn:
    """exec's first child: into the container's cgroup (the parent moves us), then its
    namespaces; fork, since a joined pid or time namespace applies to children only."""
    code = 1
    try:
        with step(ctx.chan, "make the runtime process non-dumpable"):
            sc.set_non_dumpable()  # before the join: see intermediate()
        seal_imports()
        with step(ctx.chan, "close inherited file descriptors"):
            # Nothing of the caller's but stdio and --preserve-fds enters the container.
            sc.close_fds_except(3 + ctx.preserve_fds,
                                [ctx.chan.fileno(), *(fd for _, fd in ctx.joined),
                                 *([ctx.root_fd] if ctx.root_fd >= 0 else [])])
        with step(ctx.chan, "set the initial CPU affinity"):
            # config.md execCPUAffinity.initial: before the cgroup join (runc's nsexec).
            process.set_cpu_affinity(ctx.process.exec_cpu_affinity, "initial")
        ctx.chan.expect("cgroup")
        with step(ctx.chan, "join the container's namespaces"):
            namespaces.join(ctx.joined)
        if ctx.root_fd >= 0:
            with step(ctx.chan, "chroot into the container's root"):
                sc.fchdir(ctx.root_fd)
                sc.chroot(".")
                os.close(ctx.root_fd)
        fork_child(ctx.chan, "fork the process", lambda: _exec_process(ctx))
        code = 0
    except BaseException:  # noqa: BLE001 - reported through the channel already
        pass
    finally:
        sc.exit_now(code)


def _exec_process(ctx: ExecContext) -> NoReturn:
    try:
        _reset_signals()
        ctx.chan.expect("go")
        with step(ctx.chan, "close inherited file descriptors"):
            # close_range, not a walk of /proc/self/fd: /proc is the container's now.
            sc.close_fds_except(3 + ctx.preserve_fds, [ctx.chan.fileno()])
        with step(ctx.chan, "start a new session"):
            sc.new_session()
        with step(ctx.chan, "set the final CPU affinity"):
            # After the cgroup join (on v1 a cpuset attach resets the affinity).
            process.set_cpu_affinity(ctx.process.exec_cpu_affinity, "final")
        path, env, hop = become_process(ctx.chan, ctx.process, ctx.seccomp,
                                        ctx.caller_umask, ctx.setgroups_allowed,
                                        ctx.personality)
        ctx.chan.send("ready")
        # The channel is close-on-exec: the parent reads end-of-file once execve worked.
        with step(ctx.chan, f"exec {path}"):
            hop.execve(path, list(ctx.process.args), env)
    except BaseException:  # noqa: BLE001 - reported through the channel already
        pass
    sc.exit_now(127)

