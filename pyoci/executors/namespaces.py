"""Namespace executor (config-linux.md "Namespaces", "User namespace mappings",
"Offset for Time Namespace").

New namespaces are made with unshare(2) in the intermediate child; joined ones with
setns(2) on a path opened before any namespace changes (a path may stop resolving once the
mount namespace is joined). A new pid or time namespace only takes effect for children,
which is why `create` forks once more after this step.
"""

from __future__ import annotations

import os

from pyoci import syscalls as sc
from pyoci.errors import PyociError, describe_oserror

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyoci.config.model import IDMapping, Linux

NS_FLAGS = {
    "pid": sc.CLONE_NEWPID, "network": sc.CLONE_NEWNET, "mount": sc.CLONE_NEWNS,
    "ipc": sc.CLONE_NEWIPC, "uts": sc.CLONE_NEWUTS, "user": sc.CLONE_NEWUSER,
    "cgroup": sc.CLONE_NEWCGROUP, "time": sc.CLONE_NEWTIME,
}
#: /proc/<pid>/ns/<file> for each runtime-spec namespace type.
NS_PROC_NAMES = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
                 "user": "user", "cgroup": "cgroup", "time": "time"}
#: Joining order: the user namespace first, so the others are joined with its credentials.
_JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "mount", "cgroup", "time")


def open_joined(linux: Linux) -> list[tuple[str, int]]:
    """Open every namespace path the config joins: (type, fd) in joining order."""
    opened: list[tuple[str, int]] = []
    by_type = {ns.type: ns for ns in linux.namespaces if ns.path}
    for nstype in _JOIN_ORDER:
        ns = by_type.get(nstype)
        if ns is None:
            continue
        try:
            fd = os.open(ns.path or "", os.O_RDONLY | os.O_CLOEXEC)  # set: see by_type
        except OSError as exc:
            for _, other in opened:
                os.close(other)
            raise PyociError(f"linux.namespaces: open {nstype} namespace {ns.path}: "
                             f"{describe_oserror(exc)}") from None
        opened.append((nstype, fd))
    return opened


def join(opened: list[tuple[str, int]]) -> None:
    for nstype, fd in opened:
        try:
            sc.setns(fd, NS_FLAGS[nstype])
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, f"join {nstype} namespace") from None
        finally:
            os.close(fd)


def new_flags(linux: Linux, exclude: int = 0) -> int:
    flags = 0
    for ns in linux.namespaces:
        if not ns.path:
            flags |= NS_FLAGS[ns.type]
    return flags & ~exclude


def unshare_new(linux: Linux, on_user_ns: Callable[[], None]) -> None:
    """unshare every new namespace; a new user namespace first, then ``on_user_ns`` (the
    parent writes the id maps), so the rest belong to it."""
    flags = new_flags(linux)
    if flags & sc.CLONE_NEWUSER:
        sc.unshare(sc.CLONE_NEWUSER)
        on_user_ns()
        # Become the mapped root of the new namespace for the remaining setup.
        sc.setresgid(0, 0, 0)
        sc.setresuid(0, 0, 0)
        flags &= ~sc.CLONE_NEWUSER
    if flags:
        sc.unshare(flags)


def write_time_offsets(linux: Linux) -> None:
    """After unshare(CLONE_NEWTIME) and before the first child enters the namespace, the
    offsets can be written once to /proc/self/timens_offsets (time_namespaces(7))."""
    if not linux.time_offsets:
        return
    lines = "".join(f"{o.clock} {o.secs} {o.nanosecs}\n" for o in linux.time_offsets)
    sc.write_file("/proc/self/timens_offsets", lines)


def _map_text(mappings: tuple[IDMapping, ...]) -> str:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)


def write_id_maps(pid: int, linux: Linux) -> None:
    """Parent side: write uid_map/gid_map of the child's new user namespace.

    As root (on the host or in a user namespace) the maps are written directly and
    setgroups stays allowed, so the container can set its additional gids. An
    unprivileged caller (rootless) writes a single map of its own id itself, setgroups
    denied first (the kernel's rule), and anything larger through newuidmap/newgidmap
    (:func:`pyoci.rootless.write_maps`)."""
    if os.geteuid() != 0:
        from pyoci import rootless

        rootless.write_maps(pid, linux.uid_mappings, linux.gid_mappings)
        return
    with open(f"/proc/{pid}/uid_map", "w") as f:
        f.write(_map_text(linux.uid_mappings))
    with open(f"/proc/{pid}/gid_map", "w") as f:
        f.write(_map_text(linux.gid_mappings))


def ns_inode(pid: int | str, nstype: str) -> str:
    """The namespace identity, e.g. 'mnt:[4026531841]'."""
    return os.readlink(f"/proc/{pid}/ns/{NS_PROC_NAMES[nstype]}")
