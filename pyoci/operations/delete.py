"""`delete` (runtime.md "Operations": delete, "Lifecycle" steps 11-12)."""

from __future__ import annotations

import os

from pyoci import log, signals
from pyoci.errors import PyociError, StateError
from pyoci.operations.common import (
    container_cgroup,
    remove_cgroup,
    remove_dir,
    signal_container,
    wait_gone,
)
from pyoci.state import Container


def _remove_unreadable(c: Container) -> bool:
    """--force on a directory whose state cannot be read (a create killed before its first
    write, a damaged file): remove it, unless a create is still working on it."""
    if not os.path.isdir(c.dir):
        return False
    try:
        c.load()
        return False
    except PyociError:
        if c.creator_alive():
            raise PyociError(f'container "{c.id}" is still being created') from None
    remove_dir(c.dir)
    log.warn(f'removed container "{c.id}", whose state could not be read')
    return True


def delete(root: str, cid: str, force: bool = False) -> None:
    c = Container(root, cid)
    if force and _remove_unreadable(c):
        return
    if force and not os.path.isdir(c.dir):
        # runc: --force on a container that does not exist is not an error (podman calls it
        # to clean up after a create that failed and left nothing).
        return
    with c.locked():
        status = c.status()
        if status != "stopped" and not force:
            raise StateError(f'cannot delete container "{cid}": it is {status}, not '
                             "stopped (use --force to kill it first)")
        # Also when "stopped": a create that died after forking may have left its init.
        if c.init_alive():
            mgr = container_cgroup(c)
            if mgr is not None and mgr.exists() and mgr.frozen():
                mgr.thaw()  # a frozen task dies of SIGKILL only once thawed on cgroup v1
            signal_container(c, signals.SIGKILL, all_processes=True)
            if not wait_gone(c.pid, 10):
                raise PyociError(f'container "{cid}": init {c.pid} did not exit after SIGKILL')
        remove_cgroup(c)
        net = c.doc.get("pyoci", {}).get("network")
        if net:
            # Only the opt-in bridge: netDevices are never moved back (config-linux.md
            # "Network Devices": MUST NOT move the interface out before deletion).
            from pyoci.executors.network import release_bridge

            release_bridge(c.root, c.id, net)
        remove_dir(c.dir)
    hooks = c.doc.get("pyoci", {}).get("hooks", {}).get("poststop")
    if hooks:
        from pyoci.config.loader import load_hook
        from pyoci.executors.hooks import run_hooks_warn

        run_hooks_warn("poststop", [load_hook(h) for h in hooks], c.spec_state("stopped"))
