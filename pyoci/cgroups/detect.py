"""Which cgroup layout this host has, read from /proc (no ctypes, no statfs).

Three layouts exist (kernel Documentation/admin-guide/cgroup-v2.rst, "Mounting"; runc's
libcontainer/cgroups/utils.go draws the same lines):

* ``v2``: a cgroup2 file system is mounted on /sys/fs/cgroup; every controller lives there.
* ``hybrid``: v1 hierarchies are mounted (one per controller or group of co-mounted
  controllers, e.g. ``cpu,cpuacct``) and a cgroup2 is mounted too, usually on
  /sys/fs/cgroup/unified; it carries only the controllers no v1 hierarchy has bound.
* ``v1``: only v1 hierarchies.

A controller can be bound to one hierarchy only, so "where does controller X live" has one
answer. Named v1 hierarchies (``name=systemd``) carry no controller; they are recorded
under their ``name=...`` key so the manager can join them as runc does.

Mount points come from /proc/self/mountinfo (proc(5)); a mount hidden by a later mount on
or above its mount point (e.g. a tmpfs mounted over /sys/fs/cgroup in a private mount
namespace) is ignored, since paths under it no longer reach it. The caller's own cgroup
in each hierarchy comes from /proc/self/cgroup (cgroups(7): ``id:controllers:path``; the
line ``0::path`` is the unified hierarchy).

The /proc and /sys roots are parameters so tests can point them at a fake tree: mount
points under /sys are rebased onto ``sys_root``.
"""

from __future__ import annotations

import os

from pyoci.record import field, frozen

#: v1 controller names the kernel knows (cgroups(7)); anything else in a cgroup mount's
#: super options (``rw``, ``clone_children``, ``xattr``, ``release_agent=``) is not one.
V1_CONTROLLERS = frozenset({
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio",
    "blkio", "perf_event", "hugetlb", "pids", "rdma", "misc", "debug",
})


@frozen
class MountEntry:
    """One line of /proc/self/mountinfo, reduced to what cgroup detection needs."""

    mount_id: int
    parent_id: int
    root: str
    mount_point: str
    fstype: str
    super_options: tuple[str, ...]
    #: The optional fields ("shared:N", "master:N", ...): the mount's propagation.
    optional: tuple[str, ...] = ()


@frozen
class Hierarchy:
    """A mounted v1 hierarchy and where the caller sits in it."""

    controllers: tuple[str, ...]     # ("cpu", "cpuacct") or ("name=systemd",)
    mount_point: str                 # already rebased onto the sys root
    mount_root: str                  # the hierarchy path shown at the mount point
    own_path: str                    # the caller's cgroup in this hierarchy

    @property
    def own_dir(self) -> str | None:
        """The caller's cgroup directory, None when the mount does not show it."""
        return cgroup_dir(self.mount_point, self.mount_root, self.own_path)


@frozen
class Layout:
    """The host's cgroup layout as seen by the calling process."""

    mode: str                                            # "v1" | "v2" | "hybrid"
    v1: dict[str, Hierarchy] = field(factory=dict)       # controller or name=X -> hierarchy
    unified_mount: str | None = None
    unified_root: str = "/"
    unified_own: str | None = None                       # the caller's path from "0::"
    unified_controllers: frozenset[str] = frozenset()    # cgroup.controllers of the mount

    @property
    def unified_own_dir(self) -> str | None:
        if self.unified_mount is None or self.unified_own is None:
            return None
        return cgroup_dir(self.unified_mount, self.unified_root, self.unified_own)

    def hierarchies(self) -> list[Hierarchy]:
        """Each mounted v1 hierarchy once (co-mounted controllers share one)."""
        seen: dict[str, Hierarchy] = {}
        for h in self.v1.values():
            seen.setdefault(h.mount_point, h)
        return list(seen.values())


def cgroup_dir(mount_point: str, mount_root: str, path: str) -> str | None:
    """Directory of the hierarchy path ``path`` through a mount showing ``mount_root``."""
    if mount_root in ("", "/"):
        rel = path
    elif path == mount_root or path.startswith(mount_root.rstrip("/") + "/"):
        rel = path[len(mount_root.rstrip("/")):]
    else:
        return None
    rel = rel.strip("/")
    return os.path.join(mount_point, rel) if rel else mount_point


def _unescape(text: str) -> str:
    """mountinfo octal-escapes space, tab, newline and backslash (\\040 etc.): each
    backslash followed by three octal digits is that character; any other backslash stays.
    (Scanned by hand rather than with ``re``: this runs on the kill/delete hot path, where
    importing re, with enum, costs ~3 ms, far more than parsing the table.)"""
    if "\\" not in text:
        return text
    out: list[str] = []
    start = 0
    while (i := text.find("\\", start)) >= 0:
        digits = text[i + 1:i + 4]
        if len(digits) == 3 and all(c in "01234567" for c in digits):
            out += (text[start:i], chr(int(digits, 8)))
            start = i + 4
        else:
            out.append(text[start:i + 1])
            start = i + 1
    out.append(text[start:])
    return "".join(out)


def parse_mountinfo(text: str) -> list[MountEntry]:
    """Parse /proc/self/mountinfo: fields before " - " then fstype, source, super options."""
    entries = []
    for line in text.splitlines():
        if " - " not in line:
            continue
        left, right = line.split(" - ", 1)
        lf, rf = left.split(), right.split()
        if len(lf) < 5 or len(rf) < 1:
            continue
        entries.append(MountEntry(
            mount_id=int(lf[0]), parent_id=int(lf[1]), root=_unescape(lf[3]),
            mount_point=_unescape(lf[4]), fstype=rf[0],
            super_options=tuple(rf[2].split(",")) if len(rf) > 2 else (),
            optional=tuple(lf[6:])))
    return entries


def parse_proc_cgroup(text: str) -> tuple[dict[tuple[str, ...], str], str | None]:
    """(/proc/self/cgroup v1 lines as controller tuple -> path, the ``0::`` path)."""
    v1: dict[tuple[str, ...], str] = {}
    unified = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hid, ctrls, path = parts
        if hid == "0" and ctrls == "":
            unified = path
        elif ctrls:
            v1[tuple(sorted(ctrls.split(",")))] = path
    return v1, unified


def _is_under(path: str, top: str) -> bool:
    return top == "/" or path == top or path.startswith(top.rstrip("/") + "/")


def visible_mounts(entries: list[MountEntry]) -> list[MountEntry]:
    """Drop mounts that a path lookup can no longer reach.

    Each mount point is looked up the way the kernel walks a path: from the root mount,
    component by component, entering at each prefix the mount attached there (and any
    mount stacked on top of that one). A mount is visible when the lookup of its own mount
    point ends in it; one covered by a later mount on the same point or on an ancestor
    (a tmpfs or cgroup2 mounted over /sys/fs/cgroup) is not. Without a root entry (a
    partial table) every mount is kept.
    """
    ids = {e.mount_id for e in entries}
    children: dict[tuple[int, str], MountEntry] = {}
    roots = []
    for e in entries:
        if e.parent_id == e.mount_id or e.parent_id not in ids:
            if e.mount_point == "/":
                roots.append(e)
            continue
        children[(e.parent_id, e.mount_point)] = e   # the later of two stacked ones wins
    if not roots:
        return list(entries)

    def descend(cur: MountEntry, point: str) -> MountEntry:
        seen = {cur.mount_id}
        while (cur.mount_id, point) in children:
            cur = children[(cur.mount_id, point)]
            if cur.mount_id in seen:
                break
            seen.add(cur.mount_id)
        return cur

    def lookup(path: str) -> MountEntry:
        cur = descend(roots[-1], "/")
        prefix = ""
        for comp in (c for c in path.split("/") if c):
            prefix += "/" + comp
            cur = descend(cur, prefix)
        return cur

    return [e for e in entries if lookup(e.mount_point) is e]


def _rebase(mount_point: str, sys_root: str) -> str:
    if sys_root.rstrip("/") == "/sys":
        return mount_point
    if mount_point == "/sys" or mount_point.startswith("/sys/"):
        return sys_root.rstrip("/") + mount_point[len("/sys"):]
    return mount_point


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _pick(candidates: list[MountEntry], own: str | None) -> MountEntry:
    """Of several mounts of one hierarchy, one that shows the caller's cgroup."""
    for m in candidates:
        if own is not None and _is_under(own, m.root):
            return m
    return candidates[0]


def detect(proc_root: str = "/proc", sys_root: str = "/sys") -> Layout:
    """Read the caller's cgroup layout from ``proc_root``/self/{mountinfo,cgroup}."""
    mounts = visible_mounts(parse_mountinfo(_read(os.path.join(proc_root, "self/mountinfo"))))
    own_v1, own_unified = parse_proc_cgroup(_read(os.path.join(proc_root, "self/cgroup")))
    default_point = os.path.join(sys_root, "fs/cgroup")

    v2_mounts = [m for m in mounts if m.fstype == "cgroup2"]
    v1: dict[str, Hierarchy] = {}
    for ctrls, own in own_v1.items():
        wanted = set(ctrls)
        matching = [m for m in mounts if m.fstype == "cgroup"
                    and wanted == {o for o in m.super_options
                                   if o in V1_CONTROLLERS or o.startswith("name=")}]
        if not matching:
            continue   # a hierarchy that exists but is not mounted in this namespace
        m = _pick(matching, own)
        h = Hierarchy(controllers=ctrls, mount_point=_rebase(m.mount_point, sys_root),
                      mount_root=m.root, own_path=own)
        for c in ctrls:
            v1[c] = h

    unified = None
    if v2_mounts:
        at_default = [m for m in v2_mounts
                      if _rebase(m.mount_point, sys_root) == default_point]
        unified = _pick(at_default or v2_mounts, own_unified)
        # v1 hierarchies beside a cgroup2 elsewhere make a hybrid host; named ones count
        # too (systemd's hybrid layout with only name=systemd on v1).
        mode = "hybrid" if v1 and not at_default else "v2"
    else:
        mode = "v1"
    if mode == "v2":
        v1 = {}

    if unified is None:
        return Layout(mode=mode, v1=v1)
    point = _rebase(unified.mount_point, sys_root)
    try:
        ctrls_text = _read(os.path.join(point, "cgroup.controllers"))
    except OSError:
        ctrls_text = ""
    return Layout(mode=mode, v1=v1, unified_mount=point, unified_root=unified.root,
                  unified_own=own_unified, unified_controllers=frozenset(ctrls_text.split()))
