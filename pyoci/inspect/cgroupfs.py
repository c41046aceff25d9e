"""A process's cgroups and their limits, read from cgroupfs (never written).

/proc/PID/cgroup names the process's cgroup in each hierarchy, relative to the *reader's*
cgroup namespace root (cgroups(7)), so a host reader gets full paths whatever cgroup
namespace the container has; the reader's own mounts (pyoci.cgroups.detect) turn them into
directories. Each controller is read where the process's kernel accounts it: a v1
hierarchy if one is mounted for it (v1 and hybrid hosts), else the unified hierarchy if
the controller is enabled in the process's cgroup there.

"Effective" limits follow the kernel's rule that a cgroup can never use more than any of
its ancestors allow (cgroup-v2.rst "Top-down constraint"; v1 memory with use_hierarchy,
the only mode of current kernels): the smallest limit on the way up to the hierarchy's
mount, with the cgroup it comes from.
"""

from __future__ import annotations

import os
from typing import Any

from pyoci.cgroups.detect import Layout, cgroup_dir, detect, parse_proc_cgroup

#: v1 "no limit" values are LONG_MAX rounded down to a page (memory) or -1 (cpu quota).
_UNLIMITED = 1 << 62


def _read(directory: str, name: str) -> str | None:
    try:
        with open(os.path.join(directory, name)) as f:
            return f.read().strip()
    except OSError:
        return None


def _int(text: str | None) -> int | None:
    if text is None or text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return None if value >= _UNLIMITED or value < 0 else value


def _key(text: str | None, key: str) -> int | None:
    for line in (text or "").splitlines():
        k, _, v = line.partition(" ")
        if k == key:
            return _int(v)
    return None


def _ancestors(directory: str, mount_point: str) -> list[str]:
    """``directory`` and each parent up to and including the hierarchy's mount point."""
    out = [directory]
    while directory.rstrip("/") != mount_point.rstrip("/") and directory not in ("/", ""):
        directory = os.path.dirname(directory)
        out.append(directory)
    return out


def _effective(dirs: list[str], mount_point: str, read: Any) -> tuple[Any, str | None]:
    """(smallest limit on the way up, the cgroup path where it is set); None = none."""
    best, where = None, None
    for d in dirs:
        value = read(d)
        if value is not None and (best is None or value < best):
            best, where = value, "/" + os.path.relpath(d, mount_point).lstrip(".")
    return best, where


def _cpu_max(d: str) -> float | None:
    text = _read(d, "cpu.max")
    if not text:
        return None
    quota, _, period = text.partition(" ")
    return None if quota == "max" else int(quota) / int(period or 100000)


def _cpu_v1(d: str) -> float | None:
    quota = _int(_read(d, "cpu.cfs_quota_us"))
    period = _int(_read(d, "cpu.cfs_period_us"))
    return None if quota is None or not period else quota / period


def _where(layout: Layout, v1: dict[tuple[str, ...], str], unified: str | None,
           controller: str) -> tuple[int, str, str] | None:
    """(cgroup version, directory, mount point) of ``controller`` for the process."""
    h = layout.v1.get(controller)
    if h is not None:
        path = next((p for ctrls, p in v1.items() if controller in ctrls), None)
        d = cgroup_dir(h.mount_point, h.mount_root, path) if path is not None else None
        if d is not None and os.path.isdir(d):
            return 1, d, h.mount_point
        return None
    if layout.unified_mount is None or unified is None:
        return None
    d = cgroup_dir(layout.unified_mount, layout.unified_root, unified)
    if d is None or not os.path.isdir(d):
        return None
    enabled = (_read(d, "cgroup.controllers") or "").split()
    if controller not in enabled:
        return None
    return 2, d, layout.unified_mount


def hierarchies(text: str, layout: Layout) -> list[dict[str, Any]]:
    """One entry per /proc/PID/cgroup line: id, version, controllers, path, directory."""
    out = []
    for line in text.splitlines():
        hid, _, rest = line.partition(":")
        ctrls, _, path = rest.partition(":")
        if hid == "0" and not ctrls:
            d = (cgroup_dir(layout.unified_mount, layout.unified_root, path)
                 if layout.unified_mount else None)
            enabled = (_read(d, "cgroup.controllers") or "").split() if d else []
            out.append({"id": 0, "version": 2, "controllers": enabled, "path": path,
                        "directory": d})
            continue
        names = ctrls.split(",")
        h = next((layout.v1[c] for c in names if c in layout.v1), None)
        d = cgroup_dir(h.mount_point, h.mount_root, path) if h else None
        out.append({"id": int(hid), "version": 1, "controllers": names, "path": path,
                    "directory": d})
    return out


def limits(text: str, layout: Layout) -> dict[str, Any]:
    """memory, cpu, cpuset, pids and devices of the process's cgroups: own limit,
    effective limit and current usage. A controller the process is not under is absent."""
    v1, unified = parse_proc_cgroup(text)
    out: dict[str, Any] = {}

    w = _where(layout, v1, unified, "memory")
    if w is not None:
        ver, d, mp = w
        dirs = _ancestors(d, mp)
        name = "memory.max" if ver == 2 else "memory.limit_in_bytes"
        eff, at = _effective(dirs, mp, lambda x: _int(_read(x, name)))
        out["memory"] = {
            "version": ver, "directory": d, "limit": _int(_read(d, name)),
            "effectiveLimit": eff, "effectiveFrom": at,
            "usage": _int(_read(d, "memory.current" if ver == 2 else "memory.usage_in_bytes")),
            "swapLimit": _int(_read(d, "memory.swap.max" if ver == 2
                                    else "memory.memsw.limit_in_bytes")),
        }
    w = _where(layout, v1, unified, "cpu")
    if w is not None:
        ver, d, mp = w
        reader = _cpu_max if ver == 2 else _cpu_v1
        eff, at = _effective(_ancestors(d, mp), mp, reader)
        entry: dict[str, Any] = {"version": ver, "directory": d, "cpus": reader(d),
                                 "effectiveCpus": eff, "effectiveFrom": at}
        if ver == 2:
            entry["weight"] = _int(_read(d, "cpu.weight"))
            usec = _key(_read(d, "cpu.stat"), "usage_usec")
            entry["usageNs"] = usec * 1000 if usec is not None else None
        else:
            entry["shares"] = _int(_read(d, "cpu.shares"))
            acct = _where(layout, v1, unified, "cpuacct")
            entry["usageNs"] = _int(_read(acct[1], "cpuacct.usage")) if acct else None
        out["cpu"] = entry
    w = _where(layout, v1, unified, "cpuset")
    if w is not None:
        ver, d, _mp = w
        cpus = _read(d, "cpuset.cpus.effective" if ver == 2 else "cpuset.effective_cpus")
        mems = _read(d, "cpuset.mems.effective" if ver == 2 else "cpuset.effective_mems")
        out["cpuset"] = {"version": ver, "directory": d, "cpus": _read(d, "cpuset.cpus"),
                         "effectiveCpus": cpus, "effectiveMems": mems}
    w = _where(layout, v1, unified, "pids")
    if w is not None:
        ver, d, mp = w
        eff, at = _effective(_ancestors(d, mp), mp, lambda x: _int(_read(x, "pids.max")))
        out["pids"] = {"version": ver, "directory": d, "limit": _int(_read(d, "pids.max")),
                       "effectiveLimit": eff, "effectiveFrom": at,
                       "current": _int(_read(d, "pids.current"))}
    h = layout.v1.get("devices")
    path = next((p for ctrls, p in v1.items() if "devices" in ctrls), None)
    if h is not None and path is not None:
        dv = cgroup_dir(h.mount_point, h.mount_root, path)
        rules = (_read(dv, "devices.list") or "").splitlines() if dv else []
        out["devices"] = {"version": 1, "directory": dv, "rules": rules}
    elif layout.unified_mount is not None and unified is not None:
        # cgroup v2 has no devices file: the filter is an eBPF program attached to the
        # cgroup (BPF_CGROUP_DEVICE), which cgroupfs does not show.
        out["devices"] = {"version": 2,
                          "directory": cgroup_dir(layout.unified_mount, layout.unified_root,
                                                  unified),
                          "rules": None}
    return out


def read_layout() -> Layout:
    return detect()
