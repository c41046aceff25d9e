"""`exec`: run another process in a running container (runc's exec; runtime-spec leaves
exec to the runtime). The process joins every namespace and the cgroup of the container
and gets the capabilities, seccomp filter, rlimits, user and environment of its process
spec: ``--process FILE`` (a process.json, as podman and containerd pass it), or the
container's own process with the arguments and flags given here, as runc builds it.

Without --detach pyoci waits and exits with the process's status (128+n after signal n),
forwarding signals to it; with a terminal and no --console-socket it relays the pty.
"""

from __future__ import annotations

from pyoci.record import field, mutable


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


def exec_process(root: str, cid: str, opts: ExecOptions) -> int:
    """Run ``opts`` in container ``cid``; the exit status without --detach, else 0.

    The kernel's wait for a cgroup move (pyoci/cgroups/prime.py: an RCU grace period,
    7-15 ms here) starts first, in the background, and the parent side
    (pyoci/exec_parent.py) is imported after it: exec's own work once imported is a few ms,
    less than that wait, so the imports are what it can overlap (measured: ~10 ms per exec
    slower when the imports came first). The driver joins the thread before it forks.
    """
    from pyoci.cgroups import prime

    prime.start()
    from pyoci.exec_parent import run_exec

    return run_exec(root, cid, opts)
