"""Where a container's cgroup lives on each hierarchy: ``linux.cgroupsPath`` resolved.

``linux.cgroupsPath`` (config-linux.md "Cgroups path") is resolved with runc's cgroupfs
rules (libcontainer/cgroups/fs/paths.go and fs2/defaultpath.go):

* absolute: under the root of each hierarchy (the mount point);
* relative: under the runtime's own cgroup of that hierarchy (/proc/self/cgroup); on a pure
  v2 host under the *parent* of it, as runc does, because the runtime's own cgroup holds
  processes and the no-internal-process rule (cgroup-v2.rst) would keep controllers from
  being enabled for a child of it;
* absent: the relative path ``<id>``;
* with ``--systemd-cgroup``: ``slice:prefix:name``, mapped to the cgroupfs path systemd
  would give the unit (``a-b.slice`` -> ``/a.slice/a-b.slice``, unit ``prefix-name.scope``);
  no dbus is involved, the directories are made directly.

A resolved directory that is a hierarchy's root, the runtime's own cgroup or an ancestor of
it is refused (in every form, systemd's too): delete and kill --all act on the whole
subtree of the container's directory, which must therefore be the container's alone.

Kept apart from the managers (manager.py, v1.py, v2.py, hybrid.py): resolution is the same
on every layout, only the set of hierarchies differs, and it is pure path arithmetic that
tests exercise on fake layouts.
"""

from __future__ import annotations

import os

from pyoci.cgroups import CgroupError

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here

if TYPE_CHECKING:
    from pyoci.cgroups.detect import Layout


def _normalize(path: str, what: str) -> str:
    """Fold ``.``/``..``/``//`` of a cgroup path; refuse a ``..`` that climbs above its
    base (the hierarchy root for absolute paths, the runtime's cgroup for relative ones).

    runc silently clamps such a path (utils.CleanPath); refusing is safer and says why.
    """
    parts: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise CgroupError(f"{what}: {path!r} escapes "
                                  + ("the cgroup root" if path.startswith("/")
                                     else "the runtime's cgroup") + " through '..'")
            parts.pop()
        else:
            parts.append(comp)
    return ("/" if path.startswith("/") else "") + "/".join(parts)


def expand_slice(slice_name: str) -> str:
    """systemd's slice naming: ``a-b-c.slice`` lives at ``/a.slice/a-b.slice/a-b-c.slice``
    (systemd.slice(5)); ``-.slice`` is the root."""
    suffix = ".slice"
    if not slice_name.endswith(suffix) or len(slice_name) <= len(suffix) or "/" in slice_name:
        raise CgroupError(f"linux.cgroupsPath: invalid systemd slice name {slice_name!r}")
    stem = slice_name[:-len(suffix)]
    if stem == "-":
        return "/"
    path, prefix = "", ""
    for comp in stem.split("-"):
        if not comp:
            raise CgroupError(f"linux.cgroupsPath: invalid systemd slice name {slice_name!r}")
        path += f"/{prefix}{comp}{suffix}"
        prefix += f"{comp}-"
    return path


def systemd_path(cgroups_path: str | None, cid: str) -> str:
    """The cgroupfs path runc's systemd driver ends up with for ``slice:prefix:name``.

    Absent means ``system.slice``, prefix ``runc``, name = the id; an empty slice is
    ``system.slice``; a name ending in ``.slice`` is a slice, anything else becomes the
    scope unit ``prefix-name.scope`` (``name.scope`` without a prefix).
    """
    if cgroups_path is None or cgroups_path == "":
        parent, prefix, name = "", "runc", cid
    else:
        parts = cgroups_path.split(":")
        if len(parts) != 3:
            raise CgroupError('linux.cgroupsPath: the systemd cgroup driver expects '
                              f'"slice:prefix:name", found {cgroups_path!r}')
        parent, prefix, name = parts
    if not name:
        raise CgroupError(f"linux.cgroupsPath: empty unit name in {cgroups_path!r}")
    if name.endswith(".slice"):
        unit = name
    else:
        unit = f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    if "/" in unit:
        raise CgroupError(f"linux.cgroupsPath: the unit name {unit!r} contains '/'")
    return expand_slice(parent or "system.slice").rstrip("/") + "/" + unit


def resolve(layout: Layout, cgroups_path: str | None, cid: str, *,
            systemd: bool = False) -> tuple[dict[str, str], str | None]:
    """The container's directories: (v1 controller or name=X -> dir, unified dir)."""
    if systemd:
        inner = _normalize(systemd_path(cgroups_path, cid), "linux.cgroupsPath")
    else:
        inner = _normalize(cgroups_path if cgroups_path else cid, "linux.cgroupsPath")
        if inner in ("", "/"):
            raise CgroupError(f"linux.cgroupsPath: {cgroups_path!r} names the cgroup of the "
                              "runtime or the root of the hierarchy, not a container's own")

    shown = cgroups_path if cgroups_path else (cid if not systemd else None)

    def place(mount_point: str, own_dir: str | None, what: str, use_parent: bool) -> str:
        if inner.startswith("/"):
            d = mount_point.rstrip("/") + inner
        elif own_dir is None:
            raise CgroupError(f"the runtime's own cgroup in the {what} hierarchy is not "
                              f"visible under {mount_point}")
        else:
            base = own_dir
            if use_parent and os.path.normpath(own_dir) != os.path.normpath(mount_point):
                base = os.path.dirname(own_dir.rstrip("/"))
            d = os.path.join(base, inner)
        _refuse_own_or_ancestor(d, own_dir, mount_point, what, shown)
        return d

    v1: dict[str, str] = {}
    for h in layout.hierarchies():
        d = place(h.mount_point, h.own_dir, ",".join(h.controllers), False)
        for c in h.controllers:
            v1[c] = d
    unified = None
    if layout.unified_mount is not None:
        unified = place(layout.unified_mount, layout.unified_own_dir, "unified",
                        layout.mode == "v2")
    return v1, unified


def is_within(path: str, top: str) -> bool:
    """``path`` is ``top`` or lies below it (both normalized)."""
    return path == top or path.startswith(top.rstrip("/") + "/")


def _refuse_own_or_ancestor(directory: str, own_dir: str | None, mount_point: str, what: str,
                            shown: str | None) -> None:
    """Refuse a container directory that is a hierarchy's root, the runtime's own cgroup or
    an ancestor of it.

    delete removes the container's directory with everything below it and, without a pid
    namespace of its own, kills every process in that subtree; kill --all signals them.
    Such a directory holds the runtime itself (and whatever shares its cgroup, e.g. the
    other jobs of a host service), so it can never be a container's own. This holds for
    the systemd form too: ``-.slice::system.slice`` is an absolute path like any other.
    """
    d = os.path.normpath(directory)
    named = f"{shown!r}" if shown is not None else "the systemd default"
    if d == os.path.normpath(mount_point):
        raise CgroupError(f"linux.cgroupsPath: {named} resolves to {d}, the root of the "
                          f"{what} hierarchy, not a container's own cgroup")
    if own_dir is None:
        return
    own = os.path.normpath(own_dir)
    if is_within(own, d):
        how = "is" if own == d else "is an ancestor of"
        raise CgroupError(f"linux.cgroupsPath: {named} resolves to {d}, which {how} the "
                          f"runtime's own cgroup in the {what} hierarchy ({own}); delete and "
                          "kill --all would act on the runtime's own processes and the "
                          "cgroups beside it")


__all__ = ["expand_slice", "is_within", "resolve", "systemd_path"]
