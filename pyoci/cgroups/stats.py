"""Cgroup statistics in the shape of runc's ``events --stats`` "data" object.

runc's ``types.Stats`` (types/events.go) is what containerd and friends parse: keys
``cpu`` (usage.{total, percpu, percpu_kernel, percpu_user, kernel, user} in ns,
throttling.{periods, throttledPeriods, throttledTime}), ``cpuset``, ``memory`` (cache,
usage/swap/kernel/kernelTCP as {limit, usage, max, failcnt}, raw), ``pids`` {current,
limit}, ``blkio`` (per-device {major, minor, op, value} lists) and ``hugetlb`` (per page
size {usage, max, failcnt}); v2 adds ``psi`` under cpu, memory and blkio. Go's
``omitempty`` fields are left out when zero, as runc prints them. Whole sections whose
controller this host (or this cgroup) does not have are left out; a file that a present
controller must have but cannot be read or parsed raises CgroupError.

The sources are runc's fs/*.go GetStats (v1) and fs2/*.go stat* (v2).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from pyoci.cgroups import CgroupError
from pyoci.cgroups import controllers as _cg
from pyoci.errors import describe_oserror

MAX_UINT64 = 2**64 - 1


# --- reading helpers ---------------------------------------------------------------------

def _read(directory: str, name: str) -> str | None:
    """The file's text, or None if it does not exist (an optional kernel feature)."""
    path = os.path.join(directory, name)
    try:
        return _cg.read_file(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CgroupError(f"cannot read {path}: {describe_oserror(exc)}") from exc


def _need(directory: str, name: str) -> str:
    text = _read(directory, name)
    if text is None:
        raise CgroupError(f"cannot read {os.path.join(directory, name)}: no such file")
    return text


def _uint(text: str, directory: str, name: str) -> int:
    """runc's ParseUint: "max" is the largest uint64, a negative number is 0."""
    text = text.strip()
    if text == "max":
        return MAX_UINT64
    try:
        return max(0, int(text))
    except ValueError:
        raise CgroupError(f"cannot parse {os.path.join(directory, name)}: "
                          f"{text!r} is not a number") from None


def _int_file(directory: str, name: str) -> int | None:
    text = _read(directory, name)
    return None if text is None else _uint(text, directory, name)


def _key_values(text: str, directory: str, name: str) -> dict[str, int]:
    """"key value" lines (memory.stat, cpu.stat, memory.events ...)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise CgroupError(f"cannot parse {os.path.join(directory, name)}: "
                              f"malformed line {line!r}")
        out[parts[0]] = _uint(parts[1], directory, name)
    return out


def _numbers(text: str, directory: str, name: str) -> list[int]:
    return [_uint(v, directory, name) for v in text.split()]


def _nonzero(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    """Drop the ``omitempty`` keys whose value is zero or empty, as Go's encoder does."""
    for key in keys:
        if not d.get(key):
            d.pop(key, None)
    return d


def _id_list(text: str) -> list[int]:
    """A cpuset list ("0-3,6") as the numbers it names (runc's cpuset stats)."""
    out: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


# --- cgroup v1 ------------------------------------------------------------------------

def clock_ticks() -> int:
    """USER_HZ, the unit of cpuacct.stat (runc hard-codes 100, which it is on Linux)."""
    return os.sysconf("SC_CLK_TCK")


def _cpu_v1(cpuacct: str | None, cpu: str | None) -> dict[str, Any] | None:
    if cpuacct is None and cpu is None:
        return None
    usage: dict[str, Any] = {"kernel": 0, "user": 0}
    if cpuacct is not None:
        # cpuacct.stat counts USER_HZ ticks; runc reports nanoseconds.
        ticks = _key_values(_need(cpuacct, "cpuacct.stat"), cpuacct, "cpuacct.stat")
        hz = clock_ticks()
        usage["kernel"] = ticks.get("system", 0) * 1_000_000_000 // hz
        usage["user"] = ticks.get("user", 0) * 1_000_000_000 // hz
        usage["total"] = _uint(_need(cpuacct, "cpuacct.usage"), cpuacct, "cpuacct.usage")
        usage["percpu"] = _numbers(_need(cpuacct, "cpuacct.usage_percpu"), cpuacct,
                                   "cpuacct.usage_percpu")
        all_text = _read(cpuacct, "cpuacct.usage_all")
        if all_text is not None:
            # "cpu user system" per line after a header.
            rows = [line.split() for line in all_text.splitlines()[1:]]
            if any(len(r) != 3 for r in rows):
                raise CgroupError(f"cannot parse {os.path.join(cpuacct, 'cpuacct.usage_all')}: "
                                  f"expected 'cpu user system' lines")
            usage["percpu_kernel"] = [_uint(r[2], cpuacct, "cpuacct.usage_all") for r in rows]
            usage["percpu_user"] = [_uint(r[1], cpuacct, "cpuacct.usage_all") for r in rows]
    throttling: dict[str, Any] = {}
    if cpu is not None:
        throttling = _throttling(cpu, "throttled_time", 1)
    return {"usage": _nonzero(usage, "total", "percpu", "percpu_kernel", "percpu_user"),
            "throttling": throttling}


def _throttling(directory: str, time_key: str, scale: int) -> dict[str, Any]:
    text = _read(directory, "cpu.stat")
    if text is None:
        return {}
    values = _key_values(text, directory, "cpu.stat")
    return _nonzero({"periods": values.get("nr_periods", 0),
                     "throttledPeriods": values.get("nr_throttled", 0),
                     "throttledTime": values.get(time_key, 0) * scale},
                    "periods", "throttledPeriods", "throttledTime")


_CPUSET_FLAGS = ("cpu_exclusive", "mem_hardwall", "mem_exclusive", "memory_migrate",
                 "memory_spread_page", "memory_spread_slab", "memory_pressure",
                 "sched_load_balance")


def _cpuset_v1(d: str) -> dict[str, Any]:
    out: dict[str, Any] = {"cpus": _id_list(_need(d, "cpuset.cpus")),
                           "mems": _id_list(_need(d, "cpuset.mems"))}
    for flag in _CPUSET_FLAGS:
        value = _int_file(d, f"cpuset.{flag}")
        if value is not None:
            out[flag] = value
    level = _read(d, "cpuset.sched_relax_domain_level")
    if level is not None:
        try:
            out["sched_relax_domain_level"] = int(level.strip())
        except ValueError:
            raise CgroupError(f"cannot parse {d}/cpuset.sched_relax_domain_level: "
                              f"{level.strip()!r} is not a number") from None
    return _nonzero(out, "cpus", "mems")


def _memory_entry_v1(d: str, prefix: str, optional: bool) -> dict[str, Any] | None:
    usage = _int_file(d, f"{prefix}.usage_in_bytes")
    if usage is None:
        if optional:        # memsw (swap accounting) and kmem are optional in the kernel
            return None
        raise CgroupError(f"cannot read {os.path.join(d, prefix + '.usage_in_bytes')}: "
                          f"no such file")
    entry = {"limit": _uint(_need(d, f"{prefix}.limit_in_bytes"), d, prefix),
             "usage": usage,
             "max": _uint(_need(d, f"{prefix}.max_usage_in_bytes"), d, prefix),
             "failcnt": _uint(_need(d, f"{prefix}.failcnt"), d, prefix)}
    return _nonzero(entry, "usage", "max")


def _memory_v1(d: str) -> dict[str, Any]:
    raw = _key_values(_need(d, "memory.stat"), d, "memory.stat")
    out: dict[str, Any] = {"cache": raw.get("cache", 0)}
    for key, prefix in (("usage", "memory"), ("swap", "memory.memsw"),
                        ("kernel", "memory.kmem"), ("kernelTCP", "memory.kmem.tcp")):
        entry = _memory_entry_v1(d, prefix, optional=key != "usage")
        if entry is not None:
            out[key] = entry
    out["raw"] = raw
    return _nonzero(out, "cache", "raw")


def _pids(d: str, current_fallback: bool) -> dict[str, Any] | None:
    current = _int_file(d, "pids.current")
    if current is None:
        if not current_fallback:
            return None
        # v2 without the pids controller: count the member processes (runc does). A "0"
        # is a process outside the reader's pid namespace (the kernel prints its pid as
        # seen from there, task_pid_vnr): no usable pid, but a process all the same.
        procs = _read(d, "cgroup.procs")
        if procs is None:
            return None
        return _nonzero({"current": len(procs.split())}, "current")
    limit = _int_file(d, "pids.max")
    # "max" means no limit, which runc reports as 0 (left out).
    return _nonzero({"current": current,
                     "limit": 0 if limit in (None, MAX_UINT64) else limit}, "current", "limit")


def _blkio_entries(d: str, name: str) -> list[dict[str, Any]] | None:
    """Lines "8:0 Read 123" / "8:0 123" / "Total 123" (skipped)."""
    text = _read(d, name)
    if text is None:
        return None
    entries: list[dict[str, Any]] = []
    for line in text.splitlines():
        fields = line.replace(":", " ").split()
        if not fields or fields[0] == "Total":
            continue
        if len(fields) not in (3, 4):
            raise CgroupError(f"cannot parse {os.path.join(d, name)}: malformed line {line!r}")
        entry = {"major": _uint(fields[0], d, name), "minor": _uint(fields[1], d, name),
                 "op": fields[2] if len(fields) == 4 else "",
                 "value": _uint(fields[-1], d, name)}
        entries.append(_nonzero(entry, "major", "minor", "op", "value"))
    return entries


_BLKIO_KEYS = ("sectorsRecursive", "ioServiceTimeRecursive", "ioWaitTimeRecursive",
               "ioMergedRecursive", "ioQueueRecursive", "ioTimeRecursive",
               "ioServicedRecursive", "ioServiceBytesRecursive")
_CFQ_FILES = ("sectors_recursive", "io_service_time_recursive", "io_wait_time_recursive",
              "io_merged_recursive", "io_queued_recursive", "time_recursive",
              "io_serviced_recursive", "io_service_bytes_recursive")
# runc tries these groups in order and uses the first whose first file has entries:
# BFQ with debug stats, BFQ, CFQ, throttling (recursive), throttling.
_BLKIO_GROUPS: tuple[tuple[tuple[str, str], ...], ...] = (
    tuple(zip(_BLKIO_KEYS, ("blkio.bfq." + f for f in _CFQ_FILES), strict=True)),
    (("ioServicedRecursive", "blkio.bfq.io_serviced_recursive"),
     ("ioServiceBytesRecursive", "blkio.bfq.io_service_bytes_recursive")),
    tuple(zip(_BLKIO_KEYS, ("blkio." + f for f in _CFQ_FILES), strict=True)),
    (("ioServicedRecursive", "blkio.throttle.io_serviced_recursive"),
     ("ioServiceBytesRecursive", "blkio.throttle.io_service_bytes_recursive")),
    (("ioServicedRecursive", "blkio.throttle.io_serviced"),
     ("ioServiceBytesRecursive", "blkio.throttle.io_service_bytes")),
)


def _blkio_v1(d: str) -> dict[str, Any]:
    for group in _BLKIO_GROUPS:
        first_key, first_file = group[0]
        first = _blkio_entries(d, first_file)
        if not first:
            continue
        out: dict[str, Any] = {first_key: first}
        for key, name in group[1:]:
            out[key] = _blkio_entries(d, name) or []
        return _nonzero(out, *out)
    return {}


def _hugetlb(d: str, usage_suffix: str, v1: bool) -> dict[str, Any] | None:
    """Per page size; the usage of the reservation counters (.rsvd.) when the kernel has
    them (5.7+), like runc, since that is what the limits apply to.

    v1 has the whole set of files under .rsvd. too (rsvd.max_usage_in_bytes,
    rsvd.failcnt). v2 has only rsvd.current and rsvd.max: its events file is always
    hugetlb.<size>.events (and .events.local), whose "max" counts the allocations the
    limit refused (cgroup-v2.rst "HugeTLB Interface Files").
    """
    out: dict[str, Any] = {}
    for size in _cg.hugepage_sizes():
        prefix = f"hugetlb.{size}.rsvd"
        usage = _int_file(d, f"{prefix}{usage_suffix}")
        if usage is None:
            prefix = f"hugetlb.{size}"
            usage = _int_file(d, f"{prefix}{usage_suffix}")
        if usage is None:
            return None                     # no hugetlb controller in this cgroup
        entry: dict[str, Any] = {"usage": usage}
        if v1:
            entry["max"] = _uint(_need(d, f"{prefix}.max_usage_in_bytes"), d, prefix)
            entry["failcnt"] = _uint(_need(d, f"{prefix}.failcnt"), d, prefix)
        else:
            events = f"hugetlb.{size}.events"
            entry["failcnt"] = _key_values(_need(d, events), d, events).get("max", 0)
        out[size] = _nonzero(entry, "usage", "max")
    return out


def stats_v1(dirs: Mapping[str, str]) -> dict[str, Any]:
    """runc's stats from v1 hierarchies: ``dirs`` maps a controller name (cpu, cpuacct,
    cpuset, memory, pids, blkio, hugetlb) to the container's directory in it."""
    out: dict[str, Any] = {}
    cpu = _cpu_v1(dirs.get("cpuacct"), dirs.get("cpu"))
    if cpu is not None:
        out["cpu"] = cpu
    sections: tuple[tuple[str, Callable[[str], dict[str, Any] | None]], ...] = (
        ("cpuset", _cpuset_v1), ("memory", _memory_v1),
        ("pids", lambda d: _pids(d, current_fallback=False)), ("blkio", _blkio_v1),
        ("hugetlb", lambda d: _hugetlb(d, ".usage_in_bytes", v1=True)))
    for key, reader in sections:
        if key in dirs:
            value = reader(dirs[key])
            if value is not None:
                out[key] = value
    return out


# --- cgroup v2 ------------------------------------------------------------------------

def _psi(d: str, name: str) -> dict[str, Any] | None:
    """PSI lines "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" (kernel 4.20+)."""
    text = _read(d, name)
    if text is None:
        return None
    out: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        kind, *pairs = line.split()
        data: dict[str, Any] = {}
        for pair in pairs:
            key, _, value = pair.partition("=")
            try:
                data[key] = int(value) if key == "total" else float(value)
            except ValueError:
                raise CgroupError(f"cannot parse {os.path.join(d, name)}: "
                                  f"malformed line {line!r}") from None
        out[kind] = data
    return out


def _cpu_v2(d: str) -> dict[str, Any] | None:
    text = _read(d, "cpu.stat")
    if text is None:
        return None
    values = _key_values(text, d, "cpu.stat")
    usage = {"total": values.get("usage_usec", 0) * 1000,
             "kernel": values.get("system_usec", 0) * 1000,
             "user": values.get("user_usec", 0) * 1000}
    out: dict[str, Any] = {"usage": _nonzero(usage, "total"),
                           "throttling": _throttling(d, "throttled_usec", 1000)}
    psi = _psi(d, "cpu.pressure")
    if psi is not None:
        out["psi"] = psi
    return out


def _memory_entry_v2(d: str, name: str) -> dict[str, Any] | None:
    usage = _int_file(d, f"{name}.current")
    if usage is None:
        return None
    return {"limit": _uint(_need(d, f"{name}.max"), d, f"{name}.max"), "usage": usage,
            "max": _int_file(d, f"{name}.peak") or 0, "failcnt": 0}


def _memory_v2(d: str) -> dict[str, Any] | None:
    usage = _memory_entry_v2(d, "memory")
    if usage is None:
        return None                          # memory controller not enabled here
    raw = _key_values(_need(d, "memory.stat"), d, "memory.stat")
    out: dict[str, Any] = {"cache": raw.get("file", 0), "usage": _nonzero(usage, "usage", "max")}
    swap = _memory_entry_v2(d, "memory.swap")
    if swap is not None:
        # v1 reported memory+swap; runc keeps that meaning on v2 (and no peak for the sum).
        swap["usage"] += usage["usage"]
        if swap["limit"] != MAX_UINT64:
            swap["limit"] = min(MAX_UINT64, swap["limit"] + usage["limit"])
        swap["max"] = 0
        out["swap"] = _nonzero(swap, "usage", "max")
    out["raw"] = raw
    psi = _psi(d, "memory.pressure")
    if psi is not None:
        out["psi"] = psi
    return _nonzero(out, "cache", "raw")


def _blkio_v2(d: str) -> dict[str, Any] | None:
    """io.stat "MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.." mapped to v1's tables."""
    text = _read(d, "io.stat")
    if text is None:
        return None
    table = {"rbytes": ("ioServiceBytesRecursive", "Read"),
             "wbytes": ("ioServiceBytesRecursive", "Write"),
             "rios": ("ioServicedRecursive", "Read"), "wios": ("ioServicedRecursive", "Write")}
    out: dict[str, Any] = {}
    for line in text.splitlines():
        device, *pairs = line.split() or [""]
        major, colon, minor = device.partition(":")
        if not colon:
            continue
        for pair in pairs:
            key, _, value = pair.partition("=")
            if key not in table:
                continue
            name, op = table[key]
            entry = {"major": _uint(major, d, "io.stat"), "minor": _uint(minor, d, "io.stat"),
                     "op": op, "value": _uint(value, d, "io.stat")}
            out.setdefault(name, []).append(_nonzero(entry, "major", "minor", "value"))
    psi = _psi(d, "io.pressure")
    if psi is not None:
        out["psi"] = psi
    return out


def stats_v2(directory: str) -> dict[str, Any]:
    """runc's stats from one v2 cgroup. On a hybrid host, where only some controllers live
    on the unified hierarchy, the caller takes just those sections (e.g. hugetlb)."""
    out: dict[str, Any] = {}
    sections: tuple[tuple[str, Callable[[str], dict[str, Any] | None]], ...] = (
        ("cpu", _cpu_v2), ("memory", _memory_v2),
        ("pids", lambda d: _pids(d, current_fallback=True)), ("blkio", _blkio_v2),
        ("hugetlb", lambda d: _hugetlb(d, ".current", v1=False)))
    for key, reader in sections:
        value = reader(directory)
        if value is not None:
            out[key] = value
    return out


# --- OOM kills --------------------------------------------------------------------------

def _oom_kills(directory: str, name: str) -> int:
    values = _key_values(_need(directory, name), directory, name)
    return values.get("oom_kill", 0)


def oom_kill_count_v1(memory_dir: str) -> int:
    """Processes the OOM killer killed in this memory cgroup: "oom_kill" of
    memory.oom_control (kernel 4.13+; 0 when an older kernel lacks the key)."""
    return _oom_kills(memory_dir, "memory.oom_control")


def oom_kill_count_v2(directory: str) -> int:
    """"oom_kill" of memory.events (hierarchical, like runc's OOMKillCount)."""
    return _oom_kills(directory, "memory.events")
