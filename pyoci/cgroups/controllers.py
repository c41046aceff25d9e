"""Writing ``linux.resources`` into cgroup files (v1 and v2) with runc's semantics.

Each writer takes the validated :class:`~pyoci.config.model.Resources` and writes only the
fields that are set, in the order the kernel accepts, as runc's ``libcontainer/cgroups/fs``
(v1) and ``fs2`` (v2) do. Where runc treats a zero as "unset" (its configs use plain
integers), so do we: ``memory.limit: 0``, ``cpu.shares: 0``, ``cpu.quota: 0`` etc. write
nothing. Fields that are pointers in runc (``cpu.burst``, ``cpu.idle``, ``pids.limit``,
``memory.swappiness``) are written whenever present.

Decisions, each with its reason:

* ``memory.kernel`` is deprecated (config-linux.md: NOT RECOMMENDED; the kernel dropped
  kmem limits in 5.16/6.1): ignored with a warning, as runc >= 1.1 does ("Kernel memory
  settings are ignored and will be removed").
* ``memory.kernelTCP`` is applied on v1 (``memory.kmem.tcp.limit_in_bytes``; a non-zero
  value, 0 is "unset" as in runc 1.0, the last runc that wrote it): the kernel still
  enforces that limit, so ignoring it would run the container without the environment it
  asked for (runtime.md Lifecycle step 2; issue 13). runc >= 1.1 drops it with its kmem
  warning; pyoci departs from that on purpose. A kernel without the file is an error
  naming it. v2 has no TCP-buffer limit of its own (socket memory is charged to
  ``memory.max``): ignored with a warning there, as runc's fs2 does.
* ``memory.useHierarchy`` is written to v1's ``memory.use_hierarchy`` (runc has no such
  setting and drops it). Since Linux 5.x the kernel is always hierarchical: ``true`` is
  accepted, ``false`` is refused by the kernel (EINVAL), which is reported naming the
  field rather than run non-hierarchically in name only. v2 is always hierarchical:
  ``false`` is ignored there with a warning.
* ``memory.swap`` is memory+swap (config-linux.md); v1's ``memory.memsw.limit_in_bytes``
  has the same meaning. v2's ``memory.swap.max`` is swap alone: ``swap - limit``
  (:func:`swap_to_v2`, runc's ConvertMemorySwapToCgroupV2Value).
* ``pids.limit``: runtime-spec v1.3 (PR #1279) and runc 1.4 treat values >= 0 as the limit
  (0 really means "no new tasks") and a negative value as unlimited ("max").
* ``cpu.shares`` -> ``cpu.weight`` (:func:`shares_to_weight`) uses the formula of runc 1.3+
  (opencontainers/cgroups, runc PR #4785): a quadratic in log2(shares) through
  (2, 1), (1024, 100), (262144, 10000). The older linear formula mapped the default 1024
  shares to weight 39, below the kernel's default 100, so a container that asked for
  nothing special lost CPU against its siblings; the new one maps default to default.
* Settings with no v2 counterpart (realtime CPU, swappiness, disableOOMKiller, blkio leaf
  weights, network, kernel memory) are ignored on v2, as runc's fs2 does, with a warning.
* ``checkBeforeUpdate`` (config-linux.md: the runtime MUST reject a limit below current
  usage) is checked on ``update`` for v2 (runc's CheckMemoryUsage) and, beyond runc, for v1
  too, where the kernel would otherwise reclaim page cache and accept a limit below usage.

Every failure raises :class:`~pyoci.cgroups.CgroupError` naming the JSON path, the file,
the value and the kernel's reason.
"""

from __future__ import annotations

import errno
import math
import os

from pyoci import jsonio, log
from pyoci.cgroups import CgroupError
from pyoci.config.model import DeviceRule
from pyoci.errors import describe_oserror

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Sequence

    from pyoci.config.model import BlockIO, Cpu, Device, Memory, Resources

P = "linux.resources"

V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "blkio", "pids", "devices", "freezer",
                  "hugetlb", "net_cls", "net_prio", "rdma")
V2_CONTROLLERS = ("memory", "cpu", "cpuset", "io", "pids", "hugetlb", "rdma", "misc")

# cgroup v2 documents 100000 us as cpu.max's default period (Documentation/admin-guide/
# cgroup-v2.rst "cpu.max"); runc writes it when only a quota is given.
DEFAULT_CPU_PERIOD = 100_000


# --- file access (unit tests replace write_file to record or fail writes) ----------------

def write_file(path: str, data: str, *, by_line: bool = False) -> None:
    """Write ``data`` to an existing cgroup file in one write(2), as the kernel requires
    (cgroupfs parses each write separately). No O_CREAT: a missing file is ENOENT, which
    tells "controller not enabled" apart from a refused value. ``by_line`` writes each
    non-empty line in its own write(2) on one open file (io.max, rdma.max take one device
    per write)."""
    chunks = [line + "\n" for line in data.split("\n") if line] if by_line else [data]
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        for chunk in chunks:
            raw = chunk.encode()
            if os.write(fd, raw) != len(raw):
                raise OSError(errno.EIO, "short write")
    finally:
        os.close(fd)


def read_file(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def show_value(value: str) -> str:
    """A written value as error messages print it: bare, or quoted if it has blanks."""
    return value if value and not any(c.isspace() for c in value) else jsonio.encode_string(value)


def _failure(json_path: str, path: str, value: str, exc: OSError, hint: str = "") -> CgroupError:
    if exc.errno == errno.ENOENT:
        msg = f"{json_path}: cannot write {show_value(value)} to {path}: the file does not exist"
    else:
        msg = (f"{json_path}: the kernel refused {show_value(value)} in {path}: "
               f"{describe_oserror(exc)}")
    return CgroupError(f"{msg} ({hint})" if hint else msg)


def _try(directory: str, name: str, value: str, *, by_line: bool = False) -> OSError | None:
    try:
        write_file(os.path.join(directory, name), value, by_line=by_line)
    except OSError as exc:
        return exc
    return None


def _put(directory: str, name: str, value: str, json_path: str, *, v2: bool = False,
         by_line: bool = False) -> None:
    exc = _try(directory, name, value, by_line=by_line)
    if exc is not None:
        hint = _missing_hint(directory, name, v2) if exc.errno == errno.ENOENT else ""
        raise _failure(json_path, os.path.join(directory, name), value, exc, hint)


def _missing_hint(directory: str, name: str, v2: bool) -> str:
    if not v2:
        return "this kernel or hierarchy does not provide it"
    controller = name.split(".", 1)[0]
    try:
        available = read_file(os.path.join(directory, "cgroup.controllers")).split()
    except OSError:
        available = []
    if controller != "cgroup" and controller not in available:
        return (f"the {controller} controller is not enabled for this cgroup: enable it in the "
                f"parent's cgroup.subtree_control")
    return f"{directory} has no such file"


def _read_int(directory: str, name: str, json_path: str) -> int:
    path = os.path.join(directory, name)
    try:
        text = read_file(path).strip()
        return -1 if text == "max" else int(text)
    except (OSError, ValueError) as exc:
        reason = describe_oserror(exc) if isinstance(exc, OSError) else "not a number"
        raise CgroupError(f"{json_path}: cannot read {path}: {reason}") from exc


def _read_opt_int(directory: str, name: str) -> int | None:
    try:
        text = read_file(os.path.join(directory, name)).strip()
        return -1 if text == "max" else int(text)
    except (OSError, ValueError):
        return None


# --- conversions (config-linux.md "Unified": the runtime MAY convert v1 settings) --------

def shares_to_weight(shares: int) -> int:
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000]; 1024 (the v1 default) -> 100 (the v2
    default). runc 1.3+'s formula; see the module docstring for why not the linear one."""
    if shares == 0:
        return 0
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    lg = math.log2(shares)
    return math.ceil(10 ** ((lg * lg + 125 * lg) / 612.0 - 7.0 / 34.0))


def blkio_weight_to_io_weight(weight: int) -> int:
    """blkio.weight [10, 1000] -> io.weight [1, 10000], linearly (runc's
    ConvertBlkIOToIOWeightValue), clamped to io.weight's range for BFQ-era weights < 10."""
    if weight == 0:
        return 0
    return max(1, min(10000, 1 + (weight - 10) * 9999 // 990))


def swap_to_v2(swap: int, limit: int) -> int:
    """The spec's memory+swap (``swap``) -> v2's swap-only ``memory.swap.max`` value.

    0 means "leave alone", -1 "max". An unlimited memory with swap unset means unlimited
    swap too (v1 compatibility). Otherwise swap - limit, which must not be negative.

    A swap limit with the memory limit unset (0) or unlimited (-1) has no swap-only value:
    "memory+swap <= N" with unlimited memory is no swap limit at all, and writing N as
    memory.swap.max would let memory+swap reach twice what was asked. runc refuses it
    ("unable to set swap limit without memory limit"); so does pyoci."""
    if limit == -1 and swap == 0:
        return -1
    if swap in (-1, 0):
        return swap
    if limit in (0, -1):
        state = "unset" if limit == 0 else "-1 (unlimited)"
        raise CgroupError(f"{P}.memory.swap: a swap limit needs a memory limit on cgroup v2 "
                          f"(memory.swap.max is swap - limit, and {P}.memory.limit is "
                          f"{state})")
    if limit < 0:
        raise CgroupError(f"{P}.memory.limit: invalid memory limit {limit}")
    if swap < limit:
        raise CgroupError(f"{P}.memory.swap: memory+swap {swap} is below memory.limit {limit}")
    return swap - limit


def _v2_num(value: int) -> str:
    """v2 .max/.low files spell unlimited "max"; the spec spells it -1."""
    return "max" if value == -1 else str(value)


def _pids_value(limit: int) -> str:
    return "max" if limit < 0 else str(limit)


# --- which controllers a configuration needs ----------------------------------------------

_THROTTLES = (("throttleReadBpsDevice", "throttle_read_bps_device", "read_bps_device", "rbps"),
              ("throttleWriteBpsDevice", "throttle_write_bps_device", "write_bps_device", "wbps"),
              ("throttleReadIOPSDevice", "throttle_read_iops_device", "read_iops_device",
               "riops"),
              ("throttleWriteIOPSDevice", "throttle_write_iops_device", "write_iops_device",
               "wiops"))


def _memory_fields(m: Memory, v2: bool) -> Iterable[tuple[str, bool]]:
    yield "limit", bool(m.limit)
    yield "reservation", bool(m.reservation)
    yield "swap", bool(m.swap)
    if not v2:
        yield "swappiness", m.swappiness is not None and m.swappiness != -1
        yield "disableOOMKiller", bool(m.disable_oom_killer)
        yield "kernelTCP", bool(m.kernel_tcp)
        yield "useHierarchy", m.use_hierarchy is not None


def _cpu_fields(c: Cpu, v2: bool) -> Iterable[tuple[str, str, bool]]:
    yield "cpu", "shares", bool(c.shares)
    yield "cpu", "quota", bool(c.quota)
    yield "cpu", "burst", c.burst is not None
    yield "cpu", "period", bool(c.period)
    if not v2:
        yield "cpu", "realtimeRuntime", bool(c.realtime_runtime)
        yield "cpu", "realtimePeriod", bool(c.realtime_period)
    yield "cpuset", "cpus", bool(c.cpus)
    yield "cpuset", "mems", bool(c.mems)
    yield "cpu", "idle", c.idle is not None


def _blkio_fields(b: BlockIO, v2: bool) -> Iterable[tuple[str, bool]]:
    yield "weight", bool(b.weight)
    if not v2:
        yield "leafWeight", bool(b.leaf_weight)
    yield "weightDevice", bool(b.weight_device)
    for key, attr, _file, _v2key in _THROTTLES:
        yield key, bool(getattr(b, attr))


def _needed(res: Resources, v2: bool) -> dict[str, str]:
    out: dict[str, str] = {}

    def need(controller: str, path: str, cond: bool) -> None:
        if cond and controller not in out:
            out[controller] = path

    if res.devices and not v2:
        need("devices", f"{P}.devices", True)
    if res.memory is not None:
        for name, cond in _memory_fields(res.memory, v2):
            need("memory", f"{P}.memory.{name}", cond)
    if res.cpu is not None:
        for controller, name, cond in _cpu_fields(res.cpu, v2):
            need(controller, f"{P}.cpu.{name}", cond)
    need("pids", f"{P}.pids.limit", res.pids_limit is not None)
    if res.block_io is not None:
        for name, cond in _blkio_fields(res.block_io, v2):
            need("io" if v2 else "blkio", f"{P}.blockIO.{name}", cond)
    need("hugetlb", f"{P}.hugepageLimits", bool(res.hugepage_limits))
    if res.network is not None and not v2:
        need("net_cls", f"{P}.network.classID", bool(res.network.class_id))
        need("net_prio", f"{P}.network.priorities", bool(res.network.priorities))
    need("rdma", f"{P}.rdma", bool(res.rdma))
    if v2:
        for key in res.unified:
            prefix = key.split(".", 1)[0]
            need(prefix, _unified_path(key), prefix in V2_CONTROLLERS)
    return out


def needed_v1(res: Resources) -> dict[str, str]:
    """v1 controller -> JSON path of the first field that needs it (the manager creates the
    cgroup in those hierarchies and reports a missing one by that path). "devices" is
    listed for explicit rules only: runc's default allow-list (effective_device_rules)
    applies even without linux.resources."""
    return _needed(res, v2=False)


def needed_v2(res: Resources) -> dict[str, str]:
    """v2 controller -> JSON path of the first field that needs it, including ``unified``
    keys by their file-name prefix ("io.max" -> io)."""
    return _needed(res, v2=True)


# --- cgroup v1 (Documentation/admin-guide/cgroup-v1/*) ------------------------------------

def _warn_kernel_memory(m: Memory) -> None:
    """runc 1.1+ ignores memory.kernel on both versions: the kernel deprecated kmem limits
    (kernelTCP: see the module docstring)."""
    if m.kernel is not None:
        log.warn(f"{P}.memory.kernel: kernel memory limits are deprecated and ignored")


def _v1_memory(d: str, res: Resources, update: bool) -> None:
    m = res.memory
    if m is None:
        return
    _warn_kernel_memory(m)
    limit, swap = m.limit or 0, m.swap or 0
    if update and m.check_before_update:
        _check_usage(d, limit, "memory.usage_in_bytes", swap, "memory.memsw.usage_in_bytes")
    memsw = "memory.memsw.limit_in_bytes"
    # runc: unlimiting memory without a swap value unlimits memory+swap too (if the kernel
    # accounts swap), else the old memsw limit would still cap the container.
    if limit == -1 and swap == 0 and os.path.exists(os.path.join(d, memsw)):
        swap = -1

    def set_limit() -> None:
        if limit:
            _v1_memory_limit(d, limit)

    def set_swap() -> None:
        if swap:
            _put(d, memsw, str(swap), f"{P}.memory.swap")

    # The kernel keeps memsw >= limit at every moment (EINVAL otherwise): when the new
    # memory+swap exceeds the current memory limit (raising), write memsw first; when
    # lowering, the memory limit first.
    swap_first = False
    if limit and swap:
        current = _read_int(d, "memory.limit_in_bytes", f"{P}.memory.limit")
        swap_first = swap == -1 or current < swap
    for step in (set_swap, set_limit) if swap_first else (set_limit, set_swap):
        step()
    if m.reservation:
        _put(d, "memory.soft_limit_in_bytes", str(m.reservation), f"{P}.memory.reservation")
    if m.disable_oom_killer:
        _put(d, "memory.oom_control", "1", f"{P}.memory.disableOOMKiller")
    if m.swappiness is not None and m.swappiness != -1:
        if not 0 <= m.swappiness <= 100:
            raise CgroupError(f"{P}.memory.swappiness: {m.swappiness} is out of range "
                              f"(the kernel accepts 0 to 100)")
        _put(d, "memory.swappiness", str(m.swappiness), f"{P}.memory.swappiness")
    if m.kernel_tcp:
        _put(d, "memory.kmem.tcp.limit_in_bytes", str(m.kernel_tcp), f"{P}.memory.kernelTCP")
    if m.use_hierarchy is not None:
        _put(d, "memory.use_hierarchy", "1" if m.use_hierarchy else "0",
             f"{P}.memory.useHierarchy")


def _v1_memory_limit(d: str, limit: int) -> None:
    name = "memory.limit_in_bytes"
    exc = _try(d, name, str(limit))
    if exc is None:
        return
    hint = ""
    if exc.errno == errno.EBUSY:
        # EBUSY: the kernel could not reclaim enough to get under the new limit.
        usage = _read_opt_int(d, "memory.usage_in_bytes")
        peak = _read_opt_int(d, "memory.max_usage_in_bytes")
        hint = f"the limit is below the current usage {usage} (peak {peak})"
    elif exc.errno == errno.ENOENT:
        hint = _missing_hint(d, name, False)
    raise _failure(f"{P}.memory.limit", os.path.join(d, name), str(limit), exc, hint)


def _check_usage(d: str, limit: int, usage_file: str, swap: int, swap_usage_file: str) -> None:
    """config-linux.md checkBeforeUpdate: reject a limit at or below current usage. Best
    effort like runc: an unreadable usage file does not block the update."""
    usage = _read_opt_int(d, usage_file)
    if usage is None:
        return
    swap_usage = _read_opt_int(d, swap_usage_file)
    if swap > 0 and swap <= (usage if swap_usage is None else swap_usage):
        raise CgroupError(f"{P}.memory.swap: rejecting memory+swap limit {swap}: it is not above "
                          f"the current usage {usage} (checkBeforeUpdate)")
    if limit > 0 and limit <= usage:
        raise CgroupError(f"{P}.memory.limit: rejecting memory limit {limit}: it is not above the "
                          f"current usage {usage} (checkBeforeUpdate)")


def _v1_cpu(d: str, res: Resources, update: bool) -> None:
    c = res.cpu
    if c is None:
        return
    if c.shares:
        _put(d, "cpu.shares", str(c.shares), f"{P}.cpu.shares")
        # The kernel clamps shares to [2, 262144] silently; runc reads back to say so.
        got = _read_int(d, "cpu.shares", f"{P}.cpu.shares")
        if got != c.shares:
            bound = "maximum" if c.shares > got else "minimum"
            raise CgroupError(f"{P}.cpu.shares: the kernel clamped {c.shares} to {got} in "
                              f"{os.path.join(d, 'cpu.shares')}: the {bound} allowed is {got}")
    # cfs period/burst are checked by the kernel against the *current* quota: a smaller
    # period (old quota/new period exceeding the parent) or a burst with quota -1 gives
    # EINVAL. When a quota comes too, runc retries them after writing the quota.
    retry: list[tuple[str, str, str]] = []
    if c.period:
        exc = _try(d, "cpu.cfs_period_us", str(c.period))
        if exc is not None:
            if exc.errno != errno.EINVAL or not c.quota:
                raise _failure(f"{P}.cpu.period", os.path.join(d, "cpu.cfs_period_us"),
                               str(c.period), exc, _hint_for(exc, d, "cpu.cfs_period_us"))
            retry.append(("cpu.cfs_period_us", str(c.period), f"{P}.cpu.period"))
    if c.burst is not None:
        exc = _try(d, "cpu.cfs_burst_us", str(c.burst))
        if exc is not None and exc.errno == errno.ENOENT:
            log.debug(f"{P}.cpu.burst: ignored: this kernel has no cpu.cfs_burst_us (< 5.14)")
        elif exc is not None:
            if exc.errno != errno.EINVAL or not c.quota:
                raise _failure(f"{P}.cpu.burst", os.path.join(d, "cpu.cfs_burst_us"),
                               str(c.burst), exc)
            retry.append(("cpu.cfs_burst_us", str(c.burst), f"{P}.cpu.burst"))
    if c.quota:
        _put(d, "cpu.cfs_quota_us", str(c.quota), f"{P}.cpu.quota")
        for name, value, json_path in retry:
            _put(d, name, value, json_path)
    if c.idle is not None:
        _put(d, "cpu.idle", str(c.idle), f"{P}.cpu.idle")
    _v1_rt(d, c)


def _hint_for(exc: OSError, d: str, name: str) -> str:
    return _missing_hint(d, name, False) if exc.errno == errno.ENOENT else ""


def _v1_rt(d: str, c: Cpu) -> None:
    """cpu.rt_period_us / cpu.rt_runtime_us. The kernel checks runtime/period against the
    parent's budget after each write, so with both given the order is the one whose
    intermediate ratio is smaller (runc's SetRtSched). The manager must apply this before
    it moves a SCHED_RR/FIFO process in (a group with no RT budget refuses it)."""
    period, runtime = c.realtime_period or 0, c.realtime_runtime or 0
    writes = {"period": ("cpu.rt_period_us", str(period), f"{P}.cpu.realtimePeriod"),
              "runtime": ("cpu.rt_runtime_us", str(runtime), f"{P}.cpu.realtimeRuntime")}
    if not period and not runtime:
        return
    if not runtime or not period:
        order = ["period"] if period else ["runtime"]
    else:
        old_period = _read_int(d, "cpu.rt_period_us", f"{P}.cpu.realtimePeriod")
        old_runtime = _read_int(d, "cpu.rt_runtime_us", f"{P}.cpu.realtimeRuntime")

        def ratio(rt: int, per: int) -> float:
            return math.inf if rt < 0 else rt / per

        # Period first leaves old_runtime/new_period in force for a moment; runtime first
        # leaves new_runtime/old_period. Take the smaller one.
        period_first = ratio(old_runtime, period) < ratio(runtime, old_period)
        order = ["period", "runtime"] if period_first else ["runtime", "period"]
    for key in order:
        _put(d, *writes[key])


def _v1_cpuset(d: str, res: Resources, update: bool) -> None:
    c = res.cpu
    if c is None:
        return
    if c.cpus:
        _put(d, "cpuset.cpus", c.cpus, f"{P}.cpu.cpus")
    if c.mems:
        _put(d, "cpuset.mems", c.mems, f"{P}.cpu.mems")


def _v1_pids(d: str, res: Resources, update: bool) -> None:
    if res.pids_limit is not None:
        _put(d, "pids.max", _pids_value(res.pids_limit), f"{P}.pids.limit")


def _v1_blkio(d: str, res: Resources, update: bool) -> None:
    b = res.block_io
    if b is None:
        return
    # CFQ's blkio.weight went with the legacy schedulers (5.0); BFQ provides
    # blkio.bfq.weight(_device) instead (Documentation/admin-guide/cgroup-v1/
    # blkio-controller.rst). runc picks whichever this kernel has.
    cfq = os.path.exists(os.path.join(d, "blkio.weight"))
    weight_file = "blkio.weight" if cfq else "blkio.bfq.weight"
    device_file = "blkio.weight_device" if cfq else "blkio.bfq.weight_device"
    if b.weight:
        _put(d, weight_file, str(b.weight), f"{P}.blockIO.weight")
    if b.leaf_weight:
        _put(d, "blkio.leaf_weight", str(b.leaf_weight), f"{P}.blockIO.leafWeight")
    for i, wd in enumerate(b.weight_device):
        where = f"{P}.blockIO.weightDevice[{i}]"
        if wd.weight:
            _put(d, device_file, f"{wd.major}:{wd.minor} {wd.weight}", f"{where}.weight")
        if wd.leaf_weight:
            _put(d, "blkio.leaf_weight_device", f"{wd.major}:{wd.minor} {wd.leaf_weight}",
                 f"{where}.leafWeight")
    for key, attr, file, _v2key in _THROTTLES:
        for i, t in enumerate(getattr(b, attr)):
            _put(d, f"blkio.throttle.{file}", f"{t.major}:{t.minor} {t.rate}",
                 f"{P}.blockIO.{key}[{i}]")


def hugepage_sizes(root: str = "/sys/kernel/mm/hugepages") -> list[str]:
    """This kernel's huge page sizes in the spec's spelling ("2MB", "1GB"), from
    <root>/hugepages-<N>kB (base 1024, config-linux.md)."""
    try:
        names = os.listdir(root)
    except OSError:
        return []
    sizes: list[tuple[int, str]] = []
    for name in names:
        if not (name.startswith("hugepages-") and name.endswith("kB")):
            continue
        kib = int(name[len("hugepages-"):-2])
        value, unit = kib, "KB"
        for bigger in ("MB", "GB", "TB"):
            if value < 1024 or value % 1024:
                break
            value, unit = value // 1024, bigger
        sizes.append((kib, f"{value}{unit}"))
    return [s for _, s in sorted(sizes)]


def _hugetlb(d: str, res: Resources, suffix: str, v2: bool) -> None:
    """hugetlb.<size>.limit_in_bytes (v1) / .max (v2), and the reservation limit
    .rsvd.<...> where the kernel has it (5.7+): config-linux.md says the limit applies to
    reservations when supported. As runc, a missing rsvd file stops trying rsvd."""
    skip_rsvd = False
    for i, h in enumerate(res.hugepage_limits):
        json_path = f"{P}.hugepageLimits[{i}]"
        name = f"hugetlb.{h.page_size}{suffix}"
        value = str(h.limit)
        exc = _try(d, name, value)
        if exc is not None:
            hint = ""
            if exc.errno == errno.ENOENT:
                sizes = hugepage_sizes()
                hint = (_missing_hint(d, name, v2) if h.page_size in sizes else
                        f"pageSize {h.page_size!r} is not one of this kernel's huge page "
                        f"sizes: {', '.join(sizes) or 'none'}")
            raise _failure(json_path, os.path.join(d, name), value, exc, hint)
        if skip_rsvd:
            continue
        rsvd = f"hugetlb.{h.page_size}.rsvd{suffix}"
        exc = _try(d, rsvd, value)
        if exc is not None and exc.errno == errno.ENOENT:
            skip_rsvd = True
        elif exc is not None:
            raise _failure(json_path, os.path.join(d, rsvd), value, exc)


def _v1_hugetlb(d: str, res: Resources, update: bool) -> None:
    _hugetlb(d, res, ".limit_in_bytes", v2=False)


def _v1_net_cls(d: str, res: Resources, update: bool) -> None:
    if res.network is not None and res.network.class_id:
        _put(d, "net_cls.classid", str(res.network.class_id), f"{P}.network.classID")


def _v1_net_prio(d: str, res: Resources, update: bool) -> None:
    if res.network is None:
        return
    for i, p in enumerate(res.network.priorities):
        _put(d, "net_prio.ifpriomap", f"{p.name} {p.priority}", f"{P}.network.priorities[{i}]")


def _rdma(d: str, res: Resources, v2: bool) -> None:
    """rdma.max takes "<device> hca_handle=N hca_object=M"; an absent one stays as is."""
    for device, limit in res.rdma.items():
        value = device
        if limit.hca_handles is not None:
            value += f" hca_handle={limit.hca_handles}"
        if limit.hca_objects is not None:
            value += f" hca_object={limit.hca_objects}"
        _put(d, "rdma.max", value, f"{P}.rdma.{device}", v2=v2)


def _nothing(d: str, res: Resources, update: bool) -> None:
    """cpuacct (accounting only), freezer (the manager's freeze/thaw) and devices (rules go
    through devices_v1.write_rules) have nothing in linux.resources to write."""


_V1: dict[str, Callable[[str, Resources, bool], None]] = {
    "memory": _v1_memory, "cpu": _v1_cpu, "cpuacct": _nothing, "cpuset": _v1_cpuset,
    "blkio": _v1_blkio, "pids": _v1_pids, "devices": _nothing, "freezer": _nothing,
    "hugetlb": _v1_hugetlb, "net_cls": _v1_net_cls, "net_prio": _v1_net_prio,
    "rdma": lambda d, res, update: _rdma(d, res, v2=False),
}


def apply_v1(controller: str, directory: str, res: Resources, *, update: bool = False) -> None:
    """Write ``res``'s fields of one v1 ``controller`` into its cgroup ``directory``.
    ``update`` marks `pyoci update` (enables memory.checkBeforeUpdate)."""
    try:
        writer = _V1[controller]
    except KeyError:
        raise ValueError(f"unknown cgroup v1 controller {controller!r}") from None
    writer(directory, res, update)


# --- cgroup v2 (Documentation/admin-guide/cgroup-v2.rst) ----------------------------------

def _v2_pids(d: str, res: Resources, update: bool) -> None:
    if res.pids_limit is not None:
        _put(d, "pids.max", _pids_value(res.pids_limit), f"{P}.pids.limit", v2=True)


def _v2_memory(d: str, res: Resources, update: bool) -> None:
    m = res.memory
    if m is None:
        return
    _warn_kernel_memory(m)
    _ignored_on_v2(("swappiness", m.swappiness is not None),
                   ("disableOOMKiller", bool(m.disable_oom_killer)),
                   ("kernelTCP", bool(m.kernel_tcp)),
                   ("useHierarchy", m.use_hierarchy is False), prefix="memory")
    limit, swap, reservation = m.limit or 0, m.swap or 0, m.reservation or 0
    if not (limit or swap or reservation):
        return
    if update and m.check_before_update:
        _check_usage(d, limit, "memory.current", swap, "memory.current")
    swap_v2 = swap_to_v2(swap, limit)
    swap_value = _v2_num(swap_v2) if swap_v2 else ("0" if swap > 0 else "")
    if swap_value:
        # Written before memory.max like runc (v2 has no memsw >= limit rule). Without swap
        # accounting the file is missing: "max" or "0" then asks for nothing to enforce.
        exc = _try(d, "memory.swap.max", swap_value)
        if exc is not None and not (exc.errno == errno.ENOENT and swap_value in ("max", "0")):
            hint = ""
            if exc.errno == errno.ENOENT:
                hint = _missing_hint(d, "memory.swap.max", True)
                if hint.endswith("has no such file"):
                    hint = "this kernel does not account swap (CONFIG_MEMCG_SWAP, swapaccount=)"
            raise _failure(f"{P}.memory.swap", os.path.join(d, "memory.swap.max"), swap_value,
                           exc, hint)
    if limit:
        _put(d, "memory.max", _v2_num(limit), f"{P}.memory.limit", v2=True)
    if reservation:
        _put(d, "memory.low", _v2_num(reservation), f"{P}.memory.reservation", v2=True)


def _ignored_on_v2(*fields: tuple[str, bool], prefix: str) -> None:
    """runc's fs2 drops these silently; pyoci says so (a warning, as the value asked for
    cannot be honoured, yet refusing would break configs written for v1 hosts)."""
    for name, present in fields:
        if present:
            log.warn(f"{P}.{prefix}.{name}: ignored: cgroup v2 has no equivalent")


def _v2_io(d: str, res: Resources, update: bool) -> None:
    b = res.block_io
    if b is None:
        return
    _ignored_on_v2(("leafWeight", bool(b.leaf_weight)),
                   ("weightDevice[].leafWeight", any(w.leaf_weight for w in b.weight_device)),
                   prefix="blockIO")
    bfq_text: str | None
    try:
        bfq_text = read_file(os.path.join(d, "io.bfq.weight"))
    except OSError:
        bfq_text = None
    if b.weight:
        if bfq_text is not None:
            # BFQ's weight has blkio.weight's scale: no conversion.
            _put(d, "io.bfq.weight", str(b.weight), f"{P}.blockIO.weight", v2=True)
        else:
            _put(d, "io.weight", str(blkio_weight_to_io_weight(b.weight)),
                 f"{P}.blockIO.weight", v2=True)
    if b.weight_device:
        # Per-device BFQ weights came in 5.4; older io.bfq.weight reads as a bare number.
        per_device = bfq_text is not None and not bfq_text.strip().isdigit()
        for i, wd in enumerate(b.weight_device):
            if not wd.weight:
                continue
            if not per_device:
                log.debug(f"{P}.blockIO.weightDevice[{i}]: ignored: no per-device BFQ weights")
                continue
            _put(d, "io.bfq.weight", f"{wd.major}:{wd.minor} {wd.weight}",
                 f"{P}.blockIO.weightDevice[{i}].weight", v2=True)
    for key, attr, _file, v2key in _THROTTLES:
        for i, t in enumerate(getattr(b, attr)):
            _put(d, "io.max", f"{t.major}:{t.minor} {v2key}={t.rate}",
                 f"{P}.blockIO.{key}[{i}]", v2=True)


def _v2_cpu(d: str, res: Resources, update: bool) -> None:
    c = res.cpu
    if c is None:
        return
    _ignored_on_v2(("realtimeRuntime", bool(c.realtime_runtime)),
                   ("realtimePeriod", bool(c.realtime_period)), prefix="cpu")
    if c.idle is not None:
        _put(d, "cpu.idle", str(c.idle), f"{P}.cpu.idle", v2=True)
    if c.shares:
        _put(d, "cpu.weight", str(shares_to_weight(c.shares)), f"{P}.cpu.shares", v2=True)
    retry_burst = False
    if c.burst is not None:
        exc = _try(d, "cpu.max.burst", str(c.burst))
        if exc is not None:
            # A burst above the current (maybe "max") quota is EINVAL until cpu.max is set.
            if exc.errno != errno.EINVAL or not c.quota:
                raise _failure(f"{P}.cpu.burst", os.path.join(d, "cpu.max.burst"),
                               str(c.burst), exc, _missing_hint(d, "cpu.max.burst", True)
                               if exc.errno == errno.ENOENT else "")
            retry_burst = True
    if c.quota or c.period:
        quota = str(c.quota) if c.quota and c.quota > 0 else "max"
        value = f"{quota} {c.period or DEFAULT_CPU_PERIOD}"
        _put(d, "cpu.max", value, f"{P}.cpu.{'quota' if c.quota else 'period'}", v2=True)
        if retry_burst:
            _put(d, "cpu.max.burst", str(c.burst), f"{P}.cpu.burst", v2=True)


def _v2_cpuset(d: str, res: Resources, update: bool) -> None:
    c = res.cpu
    if c is None:
        return
    if c.cpus:
        _put(d, "cpuset.cpus", c.cpus, f"{P}.cpu.cpus", v2=True)
    if c.mems:
        _put(d, "cpuset.mems", c.mems, f"{P}.cpu.mems", v2=True)


def _v2_hugetlb(d: str, res: Resources, update: bool) -> None:
    _hugetlb(d, res, ".max", v2=True)


def _unified_path(key: str) -> str:
    return f"{P}.unified[{jsonio.encode_string(key)}]"


def _v2_unified(d: str, res: Resources) -> None:
    """config-linux.md "Unified": each key is a file of the container's cgroup, written
    as is ("Configuration unknown to the runtime MUST still be written"), with an error
    when its controller is not present. Keys are file names: no '/' and no '..', so a key
    cannot reach outside the container's cgroup."""
    for key, value in res.unified.items():
        json_path = _unified_path(key)
        if not key or "/" in key or ".." in key or "\0" in key:
            raise CgroupError(f"{json_path}: not a file name of the container's cgroup "
                              f"('/' and '..' are not allowed)")
        controller, dot, param = key.partition(".")
        if not (controller and dot and param):
            raise CgroupError(f"{json_path}: expected a CONTROLLER.PARAMETER file name")
        _put(d, key, value, json_path, v2=True, by_line="\n" in value.strip("\n"))


_V2: tuple[tuple[str, Callable[[str, Resources, bool], None]], ...] = (
    # runc's fs2 Manager.Set order.
    ("pids", _v2_pids), ("memory", _v2_memory), ("io", _v2_io), ("cpu", _v2_cpu),
    ("cpuset", _v2_cpuset), ("hugetlb", _v2_hugetlb),
    ("rdma", lambda d, res, update: _rdma(d, res, v2=True)),
)


def apply_v2(directory: str, res: Resources, controllers: Collection[str],
             *, update: bool = False) -> None:
    """Write the fields of ``controllers`` (the v2 controllers enabled for ``directory``;
    on a hybrid host only those living on the unified hierarchy), then every ``unified``
    entry, whose file must exist. ``update`` marks `pyoci update` (enables
    memory.checkBeforeUpdate)."""
    wanted = set(controllers)
    for controller, writer in _V2:
        if controller in wanted:
            writer(directory, res, update)
    _v2_unified(directory, res)


# --- devices (the allow-list runc applies; v1 writes it, v2 compiles it to BPF) ----------

def _rule(type_: str, major: int | None, minor: int | None, access: str) -> DeviceRule:
    return DeviceRule(allow=True, type=type_, major=major, minor=minor, access=access)


# runc's specconv AllowedDevices, in its order; the path says which linux.devices entry
# replaces it (runc drops a default whose path linux.devices also lists).
RUNC_DEFAULT_DEVICES: tuple[tuple[str | None, DeviceRule], ...] = (
    (None, _rule("c", None, None, "m")),        # mknod of any char device
    (None, _rule("b", None, None, "m")),        # mknod of any block device
    ("/dev/null", _rule("c", 1, 3, "rwm")),
    ("/dev/random", _rule("c", 1, 8, "rwm")),
    ("/dev/full", _rule("c", 1, 7, "rwm")),
    ("/dev/tty", _rule("c", 5, 0, "rwm")),
    ("/dev/zero", _rule("c", 1, 5, "rwm")),
    ("/dev/urandom", _rule("c", 1, 9, "rwm")),
    (None, _rule("c", 136, None, "rwm")),       # /dev/pts/*
    (None, _rule("c", 5, 2, "rwm")),            # /dev/ptmx
    (None, _rule("c", 10, 200, "rwm")),         # /dev/net/tun (kept by runc 1.2+ for compat)
)


def effective_device_rules(res: Resources | None,
                           devices: Sequence[Device]) -> tuple[DeviceRule, ...]:
    """The device allow-list runc applies: ``linux.resources.devices`` in the listed order
    (config-linux.md: "MUST apply entries in the listed order"), then runc's built-in
    defaults, which therefore cannot be overridden by the spec's rules (runc's own comment
    calls this questionable, but containers rely on it).

    ``linux.devices`` adds no rule of its own (runc creates the nodes but does not allow
    them: the spec's resources.devices must). A default whose path is also in
    ``linux.devices`` is dropped, exactly as runc's createDevices does, so redefining
    /dev/null there needs a resources.devices rule for it."""
    listed = {d.path for d in devices}
    spec_rules = tuple(res.devices) if res is not None else ()
    return spec_rules + tuple(rule for path, rule in RUNC_DEFAULT_DEVICES
                              if path is None or path not in listed)
