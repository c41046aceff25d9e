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
    removed, never followed."""
    try:
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
    return bool(c.doc.get("pyoci", {}).get("newPidNamespace"))


def container_cgroup(c: Container) -> Manager | None:
    """The container's cgroup as recorded at create (None for state written without one)."""
    doc = c.doc.get("pyoci", {}).get("cgroup")
    if not doc:
        return None
    from pyoci.cgroups.manager import manager_from_state

    return manager_from_state(doc)


def require_cgroup(c: Container) -> Manager:
    mgr = container_cgroup(c)
    if mgr is None or not mgr.exists():
        raise PyociError(f'container "{c.id}" has no cgroup (it was created without one, or '
                         "its cgroup was removed)")
    return mgr


def remove_cgroup(c: Container, timeout: float = 10.0) -> None:
    """Remove the container's cgroup in every hierarchy (runtime.md: delete MUST delete the
    resources held at create). Processes still in it are killed first when the container
    had no pid namespace of its own (with one, the init's death took them all)."""
    mgr = container_cgroup(c)
    if mgr is None or not mgr.exists():
        return
    deadline = time.monotonic() + timeout
    if not own_pid_namespace(c):
        mgr.kill(signals.SIGKILL)
    for pid in mgr.pids():
        wait_gone(pid, max(0.0, deadline - time.monotonic()))
    mgr.destroy()


def signal_container(c: Container, sig: int, all_processes: bool) -> None:
    if c.pid <= 0:
        return  # never kill(0, ...): that is the caller's whole process group
    if all_processes:
        mgr = container_cgroup(c)
        if mgr is not None and mgr.exists():
            # Every process of the container, also those outside its pid namespace.
            mgr.kill(sig)
            return
    pids = [c.pid]
    if all_processes and own_pid_namespace(c):
        pids = processes_in_pidns(c.pid) or pids
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue
