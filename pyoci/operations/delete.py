"""`delete` (runtime.md "Operations": delete, "Lifecycle" steps 11-12).

What delete kills is decided by the container's cgroup, not by the pid in state.json: a
recorded pid can be gone, reused or simply wrong, and the real init must die all the same
(issue 11, item 9). When state.json itself is unusable, ``--force`` falls back to the
recovery record (pyoci/state.py), then to the cgroup derived from the id; if nothing can
be found, the record is kept and the error says why (item 8).
"""

from __future__ import annotations

import fcntl
import os

from pyoci import jsonio, log, signals
from pyoci.errors import ContainerNotFound, PyociError, StateError
from pyoci.operations.common import (
    container_cgroup,
    kill_cgroup,
    outside_recorded_cgroup,
    remove_cgroup,
    remove_dir,
    signal_container,
    wait_gone,
)
from pyoci.state import (
    SPEC_FILE,
    Container,
    UnreadableState,
    open_lock,
    read_record,
)

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any

    from pyoci.cgroups.manager import Manager


def _stop_everything(c: Container) -> None:
    """Kill every process of the container and remove its cgroup and bridge network.

    With a cgroup, every member is killed and waited for (whatever the recorded pid says);
    the recorded init is then signalled only if it is still alive, which means it is not
    in the container's cgroup: it is not the container's, and it is left alone with a
    warning (a wrong or forged record must not kill a host process). Without a cgroup,
    the recorded init (verified by its start time) and its pid namespace are killed."""
    net = c.private.network
    netns_fd = -1
    if net and c.init_alive():
        from pyoci.executors.network import open_netns

        # Held across the kill: the CNI DEL then removes the container's interface (and
        # its veth) at once, through this fd rather than a /proc/<pid> path.
        netns_fd = open_netns(c.pid)
    try:
        _kill_and_release(c, net, netns_fd)
    finally:
        if netns_fd >= 0:
            os.close(netns_fd)


def _kill_and_release(c: Container, net: dict[str, Any] | None, netns_fd: int) -> None:
    mgr = container_cgroup(c)
    if mgr is not None and mgr.exists():
        if not kill_cgroup(mgr):
            raise PyociError(f'container "{c.id}": processes {mgr.pids()} are still in its '
                             "cgroup after SIGKILL")
        if c.init_alive():
            log.warn(f'container "{c.id}": the recorded init pid {c.pid} is alive but not in '
                     "the container's cgroup; it is not the container's and was left alone")
    elif c.init_alive() and not outside_recorded_cgroup(c, c.pid):
        signal_container(c, signals.SIGKILL, all_processes=True)
        if not wait_gone(c.pid, 10):
            raise PyociError(f'container "{c.id}": init {c.pid} did not exit after SIGKILL')
    remove_cgroup(c)
    if net:
        # Only the opt-in CNI network: netDevices are never moved back (config-linux.md
        # "Network Devices": MUST NOT move the interface out before deletion).
        from pyoci.executors.network import release

        release(c.root, c.id, net, netns_fd)


def _derived_cgroup(c: Container) -> Manager | None:
    """The container's cgroup found without any record: linux.cgroupsPath of the config
    copy kept at create (else the id), resolved as create resolves it (cgroupfs rules,
    then the systemd ones); None unless one of its directories exists."""
    from pyoci.cgroups.manager import open_manager

    path = None
    try:
        doc = jsonio.loads(read_record(os.path.join(c.dir, SPEC_FILE)))
        path = doc["linux"]["cgroupsPath"]
        path = path if isinstance(path, str) else None
    except (OSError, ValueError, KeyError, TypeError, RecursionError, MemoryError):
        pass
    for systemd in (False, True):
        try:
            mgr = open_manager(path, c.id, systemd=systemd)
        except PyociError:
            continue
        if any(os.path.isdir(d) for d in mgr.directories()):
            mgr.created = True  # found in place of the record create would have left
            return mgr
    return None


def _delete_unreadable(c: Container) -> bool:
    """--force on a container whose state.json cannot be used (a create killed before its
    first write, a damaged or replaced file): kill and remove what can be found, else keep
    the record and say why. False when the state is fine (the normal path then runs)."""
    if os.path.islink(c.dir) or not os.path.isdir(c.dir):
        remove_dir(c.dir)  # not a container directory at all: never followed
        log.warn(f'removed "{c.dir}", which was not a container directory')
        return True
    try:
        c.load()
        return False
    except ContainerNotFound:
        why = "it has no state file"
    except UnreadableState as exc:
        why = exc.why
    fd = open_lock(c)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PyociError(f'container "{c.id}" is still being created') from None
        try:
            rec = c.load_recovery()
        except UnreadableState as exc:
            _delete_by_derived_cgroup(c, why, exc.why)
            return True
        if rec is not None:  # c.record is now the recovery record
            _stop_everything(c)
        # No recovery record: this create had made neither cgroup nor init yet.
        remove_dir(c.dir)
    finally:
        os.close(fd)
    log.warn(f'removed container "{c.id}", whose state could not be read ({why})')
    return True


def _delete_by_derived_cgroup(c: Container, why: str, rec_why: str) -> None:
    mgr = _derived_cgroup(c)
    if mgr is None:
        raise PyociError(
            f'container "{c.id}": its state file is unreadable ({why}) and so is its '
            f"recovery record ({rec_why}), and no cgroup of it was found: processes of it "
            f"may still run and could not be found, so {c.dir} is kept; look for them, "
            "then remove that directory by hand")
    if not kill_cgroup(mgr):
        raise PyociError(f'container "{c.id}": processes {mgr.pids()} are still in its '
                         "cgroup after SIGKILL")
    mgr.destroy()
    remove_dir(c.dir)
    log.warn(f'removed container "{c.id}", whose state and recovery record could not be '
             f"read ({why}; {rec_why}); its cgroup was found from its id")


def delete(root: str, cid: str, force: bool = False) -> None:
    c = Container(root, cid)
    if force and not os.path.lexists(c.dir):
        # runc: --force on a container that does not exist is not an error (podman calls it
        # to clean up after a create that failed and left nothing).
        return
    if force and _delete_unreadable(c):
        return
    with c.locked():
        status = c.status()
        if status != "stopped" and not force:
            raise StateError(f'cannot delete container "{cid}": it is {status}, not '
                             "stopped (use --force to kill it first)")
        # Also when "stopped": a create that died after forking may have left its init, and
        # a wrong recorded pid reads as stopped while the real init still runs.
        _stop_everything(c)
        remove_dir(c.dir)
    hooks = c.private.hooks.poststop
    if hooks:
        from pyoci.config.loader import load_hook
        from pyoci.executors.hooks import run_hooks_warn

        run_hooks_warn("poststop", [load_hook(h) for h in hooks], c.spec_state("stopped"))
