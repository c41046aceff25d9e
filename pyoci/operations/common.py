"""Helpers shared by several operations (kept import-light: state/kill/start/delete use
them)."""

from __future__ import annotations

import os
import select
import time

from pyoci import signals
from pyoci.errors import PyociError
from pyoci.state import Container

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here

if TYPE_CHECKING:
    from pyoci.cgroups.manager import Manager


parse_signal = signals.parse


def write_pid_file(path: str, pid: int) -> None:
    """Atomically, relative to the caller's cwd, as runc does (engines read it at once)."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def wait_gone(pid: int, timeout: float) -> bool:
    """Block (no polling sleep) until ``pid`` exits or the timeout passes."""
    if pid <= 0:
        return True
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(pidfd)


def check_preserved_fds(count: int) -> None:
    for fd in range(3, 3 + count):
        try:
            os.fstat(fd)
        except OSError:
            raise PyociError(f"--preserve-fds {count}: file descriptor {fd} is not open") from None


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def now_rfc3339() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def remove_dir(path: str) -> None:
    """Remove a container's directory under --root and what is in it (``shutil.rmtree``
    without shutil's imports: bz2, lzma, fnmatch... cost ~3 ms on delete). Symlinks are
    removed, never followed: ``path`` itself too (a symlinked ``<root>/<id>`` must not
    make delete empty the directory it points to)."""
    try:
        if os.path.islink(path):
            os.unlink(path)
            return
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            remove_dir(entry.path)
        else:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def processes_in_pidns(init_pid: int) -> list[int]:
    """Every process sharing the init's pid namespace (for `kill --all` without a cgroup)."""
    try:
        target = os.readlink(f"/proc/{init_pid}/ns/pid")
    except OSError:
        return []
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink(f"/proc/{name}/ns/pid") == target:
                    pids.append(int(name))
            except OSError:
                continue
    return pids


def own_pid_namespace(c: Container) -> bool:
    return c.private.new_pid_namespace


def container_cgroup(c: Container) -> Manager | None:
    """The container's cgroup as recorded at create (None for state written without one)."""
    record = c.private.cgroup
    if record is None:
        return None
    from pyoci.cgroups.manager import manager_from_record

    return manager_from_record(record)


def require_cgroup(c: Container) -> Manager:
    mgr = container_cgroup(c)
    if mgr is None or not mgr.exists():
        raise PyociError(f'container "{c.id}" has no cgroup (it was created without one, or '
                         "its cgroup was removed)")
    return mgr


#: How long delete waits for the killed processes to leave the cgroup. SIGKILL'ed tasks
#: exit in milliseconds; this only bounds a pathological case (a task stuck in the kernel).
KILL_TIMEOUT = 10.0


def kill_cgroup(mgr: Manager, timeout: float = KILL_TIMEOUT) -> bool:
    """SIGKILL every process of the container's cgroup and wait (pidfds, no fixed sleep)
    until none is left; False if some outlived the timeout.

    The cgroup, not the pid in state.json, says which processes are the container's: a
    recorded pid can be gone, reused by another process, or written wrongly, and then the
    real init lived on while delete waited 30 s for the wrong process (issue 11, item 9).
    A frozen cgroup is thawed by Manager.kill, since a frozen task dies of SIGKILL only
    once thawed on cgroup v1."""
    deadline = time.monotonic() + timeout
    if not mgr.pids():
        return True
    mgr.kill(signals.SIGKILL)
    while True:
        left = mgr.pids()
        if not left:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        # A process that joined after the kill (a fork racing it without cgroup.kill)
        # is killed too; each wait returns as soon as that process has exited.
        for pid in left:
            try:
                os.kill(pid, signals.SIGKILL)
            except ProcessLookupError:
                pass
        wait_gone(left[0], min(remaining, 0.5))


def remove_cgroup(c: Container, timeout: float = KILL_TIMEOUT) -> None:
    """Remove the container's cgroup in every hierarchy (runtime.md: delete MUST delete the
    resources held at create), after killing whatever still runs in it: with or without a
    pid namespace of its own, whatever the recorded pid says."""
    mgr = container_cgroup(c)
    if mgr is None:
        return
    if mgr.exists() and not kill_cgroup(mgr, timeout):
        raise PyociError(f'container "{c.id}": processes {mgr.pids()} are still in its cgroup '
                         f"{timeout:g} s after SIGKILL")
    mgr.destroy()  # also removes what an interrupted create made (Manager.destroy)


def outside_recorded_cgroup(c: Container, pid: int) -> bool:
    """True when ``pid`` is certainly not in the container's cgroup: its unified-hierarchy
    path (/proc/<pid>/cgroup "0::") is neither the container's directory nor below it.
    False when it is, or when it cannot be told (no record, a v1-only host, pid gone).
    Reads one small file; the manager is not imported (kill is on the hot path)."""
    rec = c.private.cgroup
    if rec is None or not rec.created:
        return False
    unified, mount = rec.unified, rec.unified_mount
    if unified is None or mount is None or not unified.startswith(mount.rstrip("/") + "/"):
        return False
    mine = unified[len(mount.rstrip("/")):].rstrip("/")
    try:
        with open(f"/proc/{pid}/cgroup", "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("0::"):
            path = line[3:].rstrip("/")
            return not (path == mine or path.startswith(mine + "/"))
    return False


def signal_container(c: Container, sig: int, all_processes: bool) -> None:
    if c.pid <= 0:
        return  # never kill(0, ...): that is the caller's whole process group
    if all_processes:
        mgr = container_cgroup(c)
        if mgr is not None and mgr.exists():
            # Every process of the container, also those outside its pid namespace.
            mgr.kill(sig)
            return
    if outside_recorded_cgroup(c, c.pid):
        # The record is wrong (its start time matched, so it was written so): the process
        # is not the container's, and signalling it would hit a host process.
        raise PyociError(f'container "{c.id}": the recorded init pid {c.pid} is not in the '
                         "container's cgroup, so it is not the container's and was not "
                         'signalled; "delete --force" removes the container')
    pids = [c.pid]
    if all_processes and own_pid_namespace(c):
        pids = processes_in_pidns(c.pid) or pids
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue
