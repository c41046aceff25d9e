"""`kill` (runtime.md "Operations": kill): signal a created or running container."""

from __future__ import annotations

from pyoci.errors import StateError
from pyoci.operations.common import container_cgroup, parse_signal, signal_container
from pyoci.state import Container


def kill(root: str, cid: str, signal_name: str = "SIGTERM", all_processes: bool = False) -> None:
    sig = parse_signal(signal_name)
    c = Container(root, cid).load()
    status = c.status()
    if status not in ("created", "running", "paused"):
        # runc's rule, relied on by containerd's shim: after the init of a container
        # without its own pid namespace exits, `kill --all` still reaches what is left in
        # its cgroup.
        mgr = container_cgroup(c) if all_processes else None
        if mgr is not None and mgr.exists() and mgr.pids():
            mgr.kill(sig)
            return
        raise StateError(f'cannot kill container "{cid}": it is {status}, not running')
    signal_container(c, sig, all_processes)
