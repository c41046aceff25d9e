"""Unit tests of pyoci.cgroups.controllers / devices_v1 / stats against fake cgroup dirs.

A temp directory stands in for a cgroup: its files are pre-created (the writers never
create files), written values land in them, and ``write_file`` is wrapped to record the
order of writes or to fail like the kernel does.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pyoci.cgroups import CgroupError, controllers, devices_v1, stats
from pyoci.config.loader import load_resources
from pyoci.config.model import Device, DeviceRule

UNLIMITED_V1 = "9223372036854771712"
MiB = 1 << 20

Writer = Callable[..., None]


def res(doc: dict) -> object:
    return load_resources(doc)


def cgdir(tmp_path: Path, files: dict[str, str], name: str = "cg") -> str:
    d = tmp_path / name
    d.mkdir()
    for file, content in files.items():
        (d / file).write_text(content)
    return str(d)


def contents(d: str, name: str) -> str:
    return Path(d, name).read_text()


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every attempted write as (file name, data), in order."""
    log: list[tuple[str, str]] = []
    real = controllers.write_file

    def record(path: str, data: str, *, by_line: bool = False) -> None:
        log.append((os.path.basename(path), data))
        real(path, data, by_line=by_line)

    monkeypatch.setattr(controllers, "write_file", record)
    return log


def fail_on(monkeypatch: pytest.MonkeyPatch, rule: Callable[[str, str], int | None]) -> None:
    """Make writes fail with the errno ``rule(name, data)`` returns (None: write it)."""
    real = controllers.write_file

    def fake(path: str, data: str, *, by_line: bool = False) -> None:
        err = rule(os.path.basename(path), data)
        if err:
            raise OSError(err, os.strerror(err))
        real(path, data, by_line=by_line)

    monkeypatch.setattr(controllers, "write_file", fake)


# --- v1 memory ----------------------------------------------------------------------------

def memory_v1(tmp_path: Path, limit: str = UNLIMITED_V1, memsw: bool = True) -> str:
    files = {"memory.limit_in_bytes": limit, "memory.soft_limit_in_bytes": UNLIMITED_V1,
             "memory.swappiness": "60", "memory.oom_control": "oom_kill_disable 0\n",
             "memory.usage_in_bytes": str(5 * MiB), "memory.max_usage_in_bytes": str(9 * MiB),
             "memory.kmem.limit_in_bytes": UNLIMITED_V1}
    if memsw:
        files["memory.memsw.limit_in_bytes"] = limit
    return cgdir(tmp_path, files)


def test_v1_memory_writes_each_field(tmp_path: Path, writes: list) -> None:
    d = memory_v1(tmp_path)
    controllers.apply_v1("memory", d, res({"memory": {
        "limit": 64 * MiB, "swap": 128 * MiB, "reservation": 32 * MiB, "swappiness": 10,
        "disableOOMKiller": True}}))
    assert contents(d, "memory.limit_in_bytes") == str(64 * MiB)
    assert contents(d, "memory.memsw.limit_in_bytes") == str(128 * MiB)
    assert contents(d, "memory.soft_limit_in_bytes") == str(32 * MiB)
    assert contents(d, "memory.swappiness") == "10"
    assert contents(d, "memory.oom_control") == "1"
    # Lowering from "unlimited": the memory limit must go first (memsw >= limit).
    assert [name for name, _ in writes] == [
        "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes",
        "memory.oom_control", "memory.swappiness"]


def kernel_memsw_rule(d: str) -> Callable[[str, str], int | None]:
    """The kernel's invariant memory.memsw.limit_in_bytes >= memory.limit_in_bytes."""
    def value(name: str, data: str | None = None) -> int:
        text = data if data is not None else contents(d, name)
        return 1 << 62 if int(text) == -1 else int(text)

    def rule(name: str, data: str) -> int | None:
        if name == "memory.limit_in_bytes" and value(name, data) > value(
                "memory.memsw.limit_in_bytes"):
            return errno.EINVAL
        if name == "memory.memsw.limit_in_bytes" and value(name, data) < value(
                "memory.limit_in_bytes"):
            return errno.EINVAL
        return None
    return rule


@pytest.mark.parametrize(("start", "limit", "swap", "first"), [
    (32 * MiB, 256 * MiB, 512 * MiB, "memory.memsw.limit_in_bytes"),   # raising
    (256 * MiB, 32 * MiB, 48 * MiB, "memory.limit_in_bytes"),           # lowering
    (32 * MiB, 64 * MiB, -1, "memory.memsw.limit_in_bytes"),            # swap unlimited
])
def test_v1_memory_and_swap_order_satisfies_the_kernel(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: int, limit: int, swap: int,
        first: str) -> None:
    d = memory_v1(tmp_path, limit=str(start))
    Path(d, "memory.memsw.limit_in_bytes").write_text(str(start * 2))
    fail_on(monkeypatch, kernel_memsw_rule(d))
    order: list[str] = []
    inner = controllers.write_file
    monkeypatch.setattr(controllers, "write_file",
                        lambda p, data, **kw: (order.append(os.path.basename(p)),
                                               inner(p, data, **kw)))
    controllers.apply_v1("memory", d, res({"memory": {"limit": limit, "swap": swap}}))
    assert contents(d, "memory.limit_in_bytes") == str(limit)
    assert contents(d, "memory.memsw.limit_in_bytes") == str(swap)
    assert order[0] == first


def test_v1_memory_wrong_order_would_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake kernel rule really bites: a memsw below the current limit is refused."""
    d = memory_v1(tmp_path, limit=str(256 * MiB))
    fail_on(monkeypatch, kernel_memsw_rule(d))
    with pytest.raises(CgroupError) as exc:
        controllers.apply_v1("memory", d, res({"memory": {"swap": 48 * MiB}}))
    assert str(exc.value) == (
        f"linux.resources.memory.swap: the kernel refused {48 * MiB} in "
        f"{d}/memory.memsw.limit_in_bytes: invalid argument")


def test_v1_unlimited_memory_unlimits_swap_when_accounted(tmp_path: Path, writes: list) -> None:
    d = memory_v1(tmp_path, limit=str(64 * MiB))
    controllers.apply_v1("memory", d, res({"memory": {"limit": -1}}))
    assert contents(d, "memory.limit_in_bytes") == "-1"
    assert contents(d, "memory.memsw.limit_in_bytes") == "-1"
    assert writes[0] == ("memory.memsw.limit_in_bytes", "-1")

    d2 = cgdir(tmp_path, {"memory.limit_in_bytes": "1"}, name="noswap")
    writes.clear()
    controllers.apply_v1("memory", d2, res({"memory": {"limit": -1}}))
    assert writes == [("memory.limit_in_bytes", "-1")]


def test_v1_memory_busy_names_usage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = memory_v1(tmp_path)
    fail_on(monkeypatch, lambda name, data: errno.EBUSY if name == "memory.limit_in_bytes"
            else None)
    with pytest.raises(CgroupError) as exc:
        controllers.apply_v1("memory", d, res({"memory": {"limit": MiB}}))
    assert str(exc.value) == (
        f"linux.resources.memory.limit: the kernel refused {MiB} in {d}/memory.limit_in_bytes: "
        f"device or resource busy (the limit is below the current usage {5 * MiB} "
        f"(peak {9 * MiB}))")


def test_v1_memory_swappiness_range_and_unset(tmp_path: Path, writes: list) -> None:
    d = memory_v1(tmp_path)
    with pytest.raises(CgroupError, match=r"memory\.swappiness: 150 is out of range"):
        controllers.apply_v1("memory", d, res({"memory": {"swappiness": 150}}))
    controllers.apply_v1("memory", d, res({"memory": {"swappiness": -1}}))
    assert writes == []
    assert contents(d, "memory.swappiness") == "60"


def test_v1_kernel_memory_is_ignored_with_a_warning(
        tmp_path: Path, writes: list, capsys: pytest.CaptureFixture[str]) -> None:
    d = memory_v1(tmp_path)
    controllers.apply_v1("memory", d, res({"memory": {"kernel": 4 * MiB}}))
    assert writes == []
    assert "memory.kernel: kernel memory limits are deprecated and ignored" in \
        capsys.readouterr().err


def test_v1_kernel_tcp_is_written_or_refused(tmp_path: Path, writes: list) -> None:
    """issue 13: the kernel still enforces kmem.tcp on v1, so kernelTCP is applied (0 is
    "unset", as in runc 1.0) and a kernel without the file is an error naming it."""
    d = memory_v1(tmp_path)
    with pytest.raises(CgroupError, match=r"memory\.kernelTCP.*kmem\.tcp\.limit_in_bytes"):
        controllers.apply_v1("memory", d, res({"memory": {"kernelTCP": MiB}}))
    Path(d, "memory.kmem.tcp.limit_in_bytes").write_text(UNLIMITED_V1)
    controllers.apply_v1("memory", d, res({"memory": {"kernelTCP": 0}}))
    controllers.apply_v1("memory", d, res({"memory": {"kernelTCP": MiB}}))
    assert writes[-1] == ("memory.kmem.tcp.limit_in_bytes", str(MiB))
    assert contents(d, "memory.kmem.tcp.limit_in_bytes") == str(MiB)
    assert controllers.needed_v1(res({"memory": {"kernelTCP": MiB}})) == {
        "memory": "linux.resources.memory.kernelTCP"}


def test_v2_kernel_tcp_is_ignored_with_a_warning(
        tmp_path: Path, writes: list, capsys: pytest.CaptureFixture[str]) -> None:
    d = memory_v2(tmp_path)
    controllers.apply_v2(d, res({"memory": {"kernelTCP": MiB}}), ["memory"])
    assert writes == []
    assert "memory.kernelTCP: ignored: cgroup v2 has no equivalent" in capsys.readouterr().err


def test_v1_check_before_update(tmp_path: Path, writes: list) -> None:
    d = memory_v1(tmp_path)
    r = res({"memory": {"limit": 4 * MiB, "checkBeforeUpdate": True}})
    with pytest.raises(CgroupError, match=r"rejecting memory limit 4194304: it is not above the "
                                          r"current usage 5242880"):
        controllers.apply_v1("memory", d, r, update=True)
    assert writes == []
    controllers.apply_v1("memory", d, r)            # at create there is nothing to protect
    assert contents(d, "memory.limit_in_bytes") == str(4 * MiB)


# --- v1 cpu -----------------------------------------------------------------------------

def cpu_v1(tmp_path: Path) -> str:
    return cgdir(tmp_path, {"cpu.shares": "1024", "cpu.cfs_period_us": "100000",
                            "cpu.cfs_quota_us": "-1", "cpu.cfs_burst_us": "0", "cpu.idle": "0",
                            "cpu.rt_period_us": "1000000", "cpu.rt_runtime_us": "0"})


def test_v1_cpu_values(tmp_path: Path, writes: list) -> None:
    d = cpu_v1(tmp_path)
    controllers.apply_v1("cpu", d, res({"cpu": {"shares": 512, "quota": 25000, "period": 50000,
                                                "burst": 10000, "idle": 1}}))
    expected = {"cpu.shares": "512", "cpu.cfs_period_us": "50000", "cpu.cfs_quota_us": "25000",
                "cpu.cfs_burst_us": "10000", "cpu.idle": "1"}
    assert {name: contents(d, name) for name in expected} == expected
    assert [n for n, _ in writes] == ["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_burst_us",
                                      "cpu.cfs_quota_us", "cpu.idle"]


def test_v1_cpu_period_and_burst_retried_after_quota(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = cpu_v1(tmp_path)
    Path(d, "cpu.cfs_quota_us").write_text("-1")

    # The kernel: a burst needs a quota; a period is refused until the quota is written.
    def rule(name: str, data: str) -> int | None:
        quota = contents(d, "cpu.cfs_quota_us")
        if name in ("cpu.cfs_burst_us", "cpu.cfs_period_us") and quota == "-1":
            return errno.EINVAL
        return None

    fail_on(monkeypatch, rule)
    attempts: list[str] = []
    inner = controllers.write_file
    monkeypatch.setattr(controllers, "write_file",
                        lambda p, data, **kw: (attempts.append(os.path.basename(p)),
                                               inner(p, data, **kw)))
    controllers.apply_v1("cpu", d, res({"cpu": {"quota": 20000, "period": 40000,
                                                "burst": 5000}}))
    assert attempts == ["cpu.cfs_period_us", "cpu.cfs_burst_us", "cpu.cfs_quota_us",
                        "cpu.cfs_period_us", "cpu.cfs_burst_us"]
    assert (contents(d, "cpu.cfs_period_us"), contents(d, "cpu.cfs_burst_us")) == ("40000",
                                                                                 "5000")
    # Without a quota there is nothing to retry after: the refusal is reported.
    with pytest.raises(CgroupError) as exc:
        Path(d, "cpu.cfs_quota_us").write_text("-1")
        controllers.apply_v1("cpu", d, res({"cpu": {"burst": 5000}}))
    assert str(exc.value) == (f"linux.resources.cpu.burst: the kernel refused 5000 in "
                              f"{d}/cpu.cfs_burst_us: invalid argument")


def test_v1_cpu_quota_refused_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = cpu_v1(tmp_path)
    fail_on(monkeypatch, lambda name, data: errno.EINVAL if (name, data) == (
        "cpu.cfs_quota_us", "500") else None)
    with pytest.raises(CgroupError) as exc:
        controllers.apply_v1("cpu", d, res({"cpu": {"quota": 500}}))
    assert str(exc.value) == (f"linux.resources.cpu.quota: the kernel refused 500 in "
                              f"{d}/cpu.cfs_quota_us: invalid argument")


def test_v1_cpu_shares_clamped_by_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = cpu_v1(tmp_path)

    def clamp(path: str, data: str, *, by_line: bool = False) -> None:
        Path(path).write_text(str(min(int(data), 262144)))

    monkeypatch.setattr(controllers, "write_file", clamp)
    with pytest.raises(CgroupError, match=r"cpu\.shares: the kernel clamped 500000 to 262144 .*"
                                          r"the maximum allowed is 262144"):
        controllers.apply_v1("cpu", d, res({"cpu": {"shares": 500000}}))


def test_v1_burst_ignored_when_kernel_lacks_it(tmp_path: Path, writes: list) -> None:
    d = cpu_v1(tmp_path)
    os.unlink(os.path.join(d, "cpu.cfs_burst_us"))
    controllers.apply_v1("cpu", d, res({"cpu": {"burst": 100}}))
    assert writes == [("cpu.cfs_burst_us", "100")]


@pytest.mark.parametrize(("old_runtime", "old_period", "runtime", "period", "first"), [
    # old 0/1000000; period first leaves 0/500000 (0) < runtime first 400000/1000000.
    ("0", "1000000", 400000, 500000, "cpu.rt_period_us"),
    # old 900000/1000000; period first would leave 900000/200000 = 4.5 -> runtime first.
    ("900000", "1000000", 10000, 200000, "cpu.rt_runtime_us"),
])
def test_v1_realtime_order(tmp_path: Path, writes: list, old_runtime: str, old_period: str,
                           runtime: int, period: int, first: str) -> None:
    d = cpu_v1(tmp_path)
    Path(d, "cpu.rt_runtime_us").write_text(old_runtime)
    Path(d, "cpu.rt_period_us").write_text(old_period)
    controllers.apply_v1("cpu", d, res({"cpu": {"realtimeRuntime": runtime,
                                                "realtimePeriod": period}}))
    assert writes[0][0] == first and len(writes) == 2
    assert (contents(d, "cpu.rt_runtime_us"), contents(d, "cpu.rt_period_us")) == (
        str(runtime), str(period))


# --- v1 other controllers ----------------------------------------------------------------

@pytest.mark.parametrize(("limit", "written"), [(42, "42"), (-1, "max"), (0, "0")])
def test_pids(tmp_path: Path, limit: int, written: str) -> None:
    d = cgdir(tmp_path, {"pids.max": "max"})
    controllers.apply_v1("pids", d, res({"pids": {"limit": limit}}))
    assert contents(d, "pids.max") == written
    Path(d, "pids.max").write_text("1")
    controllers.apply_v2(d, res({"pids": {"limit": limit}}), {"pids"})
    assert contents(d, "pids.max") == written


def test_v1_cpuset(tmp_path: Path, writes: list) -> None:
    d = cgdir(tmp_path, {"cpuset.cpus": "", "cpuset.mems": ""})
    controllers.apply_v1("cpuset", d, res({"cpu": {"cpus": "0-1", "mems": "0"}}))
    assert writes == [("cpuset.cpus", "0-1"), ("cpuset.mems", "0")]
    assert contents(d, "cpuset.cpus") == "0-1"


BLKIO = {"weight": 500, "leafWeight": 300,
         "weightDevice": [{"major": 8, "minor": 0, "weight": 200, "leafWeight": 100},
                          {"major": 8, "minor": 16, "weight": 700}],
         "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
         "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 700}],
         "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 30}],
         "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 40}]}


def test_v1_blkio_bfq_files(tmp_path: Path, writes: list) -> None:
    files = ["blkio.bfq.weight", "blkio.bfq.weight_device", "blkio.leaf_weight",
             "blkio.leaf_weight_device", "blkio.throttle.read_bps_device",
             "blkio.throttle.write_bps_device", "blkio.throttle.read_iops_device",
             "blkio.throttle.write_iops_device"]
    d = cgdir(tmp_path, dict.fromkeys(files, ""))
    controllers.apply_v1("blkio", d, res({"blockIO": BLKIO}))
    assert writes == [
        ("blkio.bfq.weight", "500"), ("blkio.leaf_weight", "300"),
        ("blkio.bfq.weight_device", "8:0 200"), ("blkio.leaf_weight_device", "8:0 100"),
        ("blkio.bfq.weight_device", "8:16 700"),
        ("blkio.throttle.read_bps_device", "8:0 600"),
        ("blkio.throttle.write_bps_device", "8:0 700"),
        ("blkio.throttle.read_iops_device", "8:16 30"),
        ("blkio.throttle.write_iops_device", "8:16 40")]


def test_v1_blkio_cfq_files_when_present(tmp_path: Path, writes: list) -> None:
    d = cgdir(tmp_path, {"blkio.weight": "", "blkio.weight_device": ""})
    controllers.apply_v1("blkio", d, res({"blockIO": {
        "weight": 10, "weightDevice": [{"major": 8, "minor": 0, "weight": 20}]}}))
    assert writes == [("blkio.weight", "10"), ("blkio.weight_device", "8:0 20")]


def test_v1_blkio_missing_leaf_weight_file(tmp_path: Path) -> None:
    d = cgdir(tmp_path, {"blkio.bfq.weight": ""})
    with pytest.raises(CgroupError) as exc:
        controllers.apply_v1("blkio", d, res({"blockIO": {"leafWeight": 300}}))
    assert str(exc.value) == (f"linux.resources.blockIO.leafWeight: cannot write 300 to "
                              f"{d}/blkio.leaf_weight: the file does not exist (this kernel or "
                              f"hierarchy does not provide it)")


def test_hugetlb_v1_and_v2(tmp_path: Path, writes: list,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(controllers, "hugepage_sizes", lambda: ["2MB", "1GB"])
    d = cgdir(tmp_path, {"hugetlb.2MB.limit_in_bytes": "", "hugetlb.2MB.rsvd.limit_in_bytes": "",
                         "hugetlb.1GB.limit_in_bytes": "", "hugetlb.1GB.rsvd.limit_in_bytes": ""})
    r = res({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB},
                                {"pageSize": "1GB", "limit": 0}]})
    controllers.apply_v1("hugetlb", d, r)
    assert writes == [("hugetlb.2MB.limit_in_bytes", str(4 * MiB)),
                      ("hugetlb.2MB.rsvd.limit_in_bytes", str(4 * MiB)),
                      ("hugetlb.1GB.limit_in_bytes", "0"),
                      ("hugetlb.1GB.rsvd.limit_in_bytes", "0")]
    # v2 without reservation files: the first missing rsvd file stops trying them.
    d2 = cgdir(tmp_path, {"hugetlb.2MB.max": "max", "hugetlb.1GB.max": "max"}, name="v2")
    writes.clear()
    controllers.apply_v2(d2, r, {"hugetlb"})
    assert writes == [("hugetlb.2MB.max", str(4 * MiB)), ("hugetlb.2MB.rsvd.max", str(4 * MiB)),
                      ("hugetlb.1GB.max", "0")]


def test_hugetlb_unknown_page_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(controllers, "hugepage_sizes", lambda: ["2MB", "1GB"])
    d = cgdir(tmp_path, {"hugetlb.2MB.limit_in_bytes": ""})
    with pytest.raises(CgroupError) as exc:
        controllers.apply_v1("hugetlb", d, res({"hugepageLimits": [{"pageSize": "2mb",
                                                                     "limit": 1}]}))
    assert str(exc.value) == (
        f"linux.resources.hugepageLimits[0]: cannot write 1 to {d}/hugetlb.2mb.limit_in_bytes: "
        f"the file does not exist (pageSize '2mb' is not one of this kernel's huge page sizes: "
        f"2MB, 1GB)")


def test_hugepage_sizes_spelling(tmp_path: Path) -> None:
    for name in ["hugepages-2048kB", "hugepages-1048576kB", "hugepages-64kB", "other"]:
        (tmp_path / name).mkdir()
    assert controllers.hugepage_sizes(str(tmp_path)) == ["64KB", "2MB", "1GB"]
    assert controllers.hugepage_sizes(str(tmp_path / "missing")) == []


def test_network_and_rdma(tmp_path: Path, writes: list) -> None:
    d = cgdir(tmp_path, {"net_cls.classid": "0", "net_prio.ifpriomap": "", "rdma.max": ""})
    r = res({"network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500},
                                                             {"name": "lo", "priority": 1}]},
             "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000},
                      "mlx4_0": {"hcaObjects": 1000}}})
    for controller in ("net_cls", "net_prio", "rdma", "cpuacct", "freezer", "devices"):
        controllers.apply_v1(controller, d, r)
    assert writes == [("net_cls.classid", "1048577"), ("net_prio.ifpriomap", "eth0 500"),
                      ("net_prio.ifpriomap", "lo 1"),
                      ("rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
                      ("rdma.max", "mlx4_0 hca_object=1000")]


def test_unknown_v1_controller(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="perf_event"):
        controllers.apply_v1("perf_event", str(tmp_path), res({}))


def test_needed_v1_and_v2() -> None:
    r = res({"devices": [{"allow": False, "access": "rwm"}],
             "memory": {"swappiness": 10}, "cpu": {"quota": 0, "period": 100000, "mems": "0"},
             "pids": {"limit": 0}, "blockIO": {"leafWeight": 10},
             "hugepageLimits": [{"pageSize": "2MB", "limit": 1}],
             "network": {"classID": 1}, "rdma": {"x": {"hcaHandles": 1}},
             "unified": {"io.max": "8:0 rbps=1", "cgroup.freeze": "0", "misc.max": "x 1"}})
    assert controllers.needed_v1(r) == {
        "devices": "linux.resources.devices", "memory": "linux.resources.memory.swappiness",
        "cpu": "linux.resources.cpu.period", "cpuset": "linux.resources.cpu.mems",
        "pids": "linux.resources.pids.limit", "blkio": "linux.resources.blockIO.leafWeight",
        "hugetlb": "linux.resources.hugepageLimits", "net_cls": "linux.resources.network.classID",
        "rdma": "linux.resources.rdma"}
    # swappiness and leafWeight have no v2 counterpart; unified keys name their controller.
    assert controllers.needed_v2(r) == {
        "cpu": "linux.resources.cpu.period", "cpuset": "linux.resources.cpu.mems",
        "pids": "linux.resources.pids.limit", "hugetlb": "linux.resources.hugepageLimits",
        "rdma": "linux.resources.rdma", "io": 'linux.resources.unified["io.max"]',
        "misc": 'linux.resources.unified["misc.max"]'}
    assert controllers.needed_v1(res({})) == {} == controllers.needed_v2(res({}))


# --- conversions ------------------------------------------------------------------------

@pytest.mark.parametrize(("shares", "weight"), [
    (0, 0), (1, 1), (2, 1), (3, 2), (100, 17), (512, 59), (1024, 100), (2048, 174),
    (262143, 10000), (262144, 10000), (1 << 20, 10000)])
def test_shares_to_weight(shares: int, weight: int) -> None:
    assert controllers.shares_to_weight(shares) == weight


@pytest.mark.parametrize(("blkio", "io"), [(0, 0), (1, 1), (10, 1), (500, 4950), (1000, 10000)])
def test_blkio_weight_to_io_weight(blkio: int, io: int) -> None:
    assert controllers.blkio_weight_to_io_weight(blkio) == io


@pytest.mark.parametrize(("swap", "limit", "v2"), [
    (0, -1, -1), (-1, 100, -1), (-1, -1, -1), (0, 100, 0), (300, 100, 200), (100, 100, 0)])
def test_swap_to_v2(swap: int, limit: int, v2: int) -> None:
    assert controllers.swap_to_v2(swap, limit) == v2


@pytest.mark.parametrize(("swap", "limit", "message"), [
    (300, 0, "linux.resources.memory.swap: a swap limit needs a memory limit on cgroup v2 "
             "(memory.swap.max is swap - limit, and linux.resources.memory.limit is unset)"),
    # memory+swap <= 300 with unlimited memory: no swap-only value means that (runc:
    # "unable to set swap limit without memory limit").
    (300, -1, "linux.resources.memory.swap: a swap limit needs a memory limit on cgroup v2 "
              "(memory.swap.max is swap - limit, and linux.resources.memory.limit is -1 "
              "(unlimited))"),
    (100, 300, "memory+swap 100 is below memory.limit 300")])
def test_swap_to_v2_refusals(swap: int, limit: int, message: str) -> None:
    with pytest.raises(CgroupError, match=re.escape(message)):
        controllers.swap_to_v2(swap, limit)


def test_v2_swap_with_unlimited_memory_writes_nothing(tmp_path: Path, writes: list) -> None:
    d = memory_v2(tmp_path)
    with pytest.raises(CgroupError, match=r"^linux\.resources\.memory\.swap: a swap limit "
                                          r"needs a memory limit"):
        controllers.apply_v2(d, res({"memory": {"limit": -1, "swap": 300 * MiB}}), {"memory"})
    assert writes == []


# --- v2 ---------------------------------------------------------------------------------

def memory_v2(tmp_path: Path, swap: bool = True) -> str:
    files = {"memory.max": "max", "memory.low": "0", "memory.current": str(5 * MiB),
             "cgroup.controllers": "cpu io memory pids"}
    if swap:
        files["memory.swap.max"] = "max"
    return cgdir(tmp_path, files)


def test_v2_memory(tmp_path: Path, writes: list) -> None:
    d = memory_v2(tmp_path)
    controllers.apply_v2(d, res({"memory": {"limit": 64 * MiB, "swap": 96 * MiB,
                                            "reservation": 32 * MiB, "swappiness": 5,
                                            "disableOOMKiller": True}}), {"memory"})
    assert writes == [("memory.swap.max", str(32 * MiB)), ("memory.max", str(64 * MiB)),
                      ("memory.low", str(32 * MiB))]


@pytest.mark.parametrize(("memory", "expected"), [
    ({"limit": 64 * MiB, "swap": 64 * MiB}, [("memory.swap.max", "0"),
                                             ("memory.max", str(64 * MiB))]),
    ({"limit": -1}, [("memory.swap.max", "max"), ("memory.max", "max")]),
    ({"limit": 64 * MiB, "swap": -1}, [("memory.swap.max", "max"),
                                       ("memory.max", str(64 * MiB))]),
    ({"swappiness": 0}, []),
])
def test_v2_memory_swap_cases(tmp_path: Path, writes: list, memory: dict,
                              expected: list) -> None:
    controllers.apply_v2(memory_v2(tmp_path), res({"memory": memory}), {"memory"})
    assert writes == expected


def test_v2_memory_without_swap_accounting(tmp_path: Path) -> None:
    d = memory_v2(tmp_path, swap=False)
    controllers.apply_v2(d, res({"memory": {"limit": -1}}), {"memory"})   # "max": nothing to do
    assert contents(d, "memory.max") == "max"
    with pytest.raises(CgroupError) as exc:
        controllers.apply_v2(d, res({"memory": {"limit": 10, "swap": 20}}), {"memory"})
    assert str(exc.value) == (f"linux.resources.memory.swap: cannot write 10 to "
                              f"{d}/memory.swap.max: the file does not exist (this kernel does "
                              f"not account swap (CONFIG_MEMCG_SWAP, swapaccount=))")


def test_v2_check_before_update(tmp_path: Path, writes: list) -> None:
    d = memory_v2(tmp_path)
    r = res({"memory": {"limit": 4 * MiB, "checkBeforeUpdate": True}})
    with pytest.raises(CgroupError, match="rejecting memory limit 4194304: it is not above the "
                                          "current usage 5242880"):
        controllers.apply_v2(d, r, {"memory"}, update=True)
    assert writes == []
    controllers.apply_v2(d, res({"memory": {"limit": 8 * MiB, "checkBeforeUpdate": True}}),
                         {"memory"}, update=True)
    assert contents(d, "memory.max") == str(8 * MiB)


def test_v2_cpu(tmp_path: Path, writes: list) -> None:
    d = cgdir(tmp_path, {"cpu.weight": "100", "cpu.max": "max 100000", "cpu.max.burst": "0",
                         "cpu.idle": "0"})
    controllers.apply_v2(d, res({"cpu": {"shares": 512, "quota": 50000, "burst": 1000,
                                         "idle": 0, "realtimeRuntime": 10}}), {"cpu"})
    assert writes == [("cpu.idle", "0"), ("cpu.weight", "59"), ("cpu.max.burst", "1000"),
                      ("cpu.max", "50000 100000")]
    writes.clear()
    controllers.apply_v2(d, res({"cpu": {"period": 20000}}), {"cpu"})
    controllers.apply_v2(d, res({"cpu": {"quota": -1, "period": 30000}}), {"cpu"})
    assert writes == [("cpu.max", "max 20000"), ("cpu.max", "max 30000")]


def test_v2_burst_retried_after_cpu_max(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = cgdir(tmp_path, {"cpu.max": "max 100000", "cpu.max.burst": "0"})
    fail_on(monkeypatch, lambda name, data: errno.EINVAL if name == "cpu.max.burst" and
            contents(d, "cpu.max").startswith("max") else None)
    controllers.apply_v2(d, res({"cpu": {"quota": 40000, "burst": 20000}}), {"cpu"})
    assert (contents(d, "cpu.max"), contents(d, "cpu.max.burst")) == ("40000 100000", "20000")


def test_v2_io_with_bfq(tmp_path: Path, writes: list) -> None:
    d = cgdir(tmp_path, {"io.bfq.weight": "default 100\n", "io.max": "",
                         "cgroup.controllers": "io"})
    controllers.apply_v2(d, res({"blockIO": BLKIO}), {"io"})
    assert writes == [("io.bfq.weight", "500"), ("io.bfq.weight", "8:0 200"),
                      ("io.bfq.weight", "8:16 700"), ("io.max", "8:0 rbps=600"),
                      ("io.max", "8:0 wbps=700"), ("io.max", "8:16 riops=30"),
                      ("io.max", "8:16 wiops=40")]


def test_v2_io_without_bfq_converts_weight(tmp_path: Path, writes: list) -> None:
    d = cgdir(tmp_path, {"io.weight": "default 100", "cgroup.controllers": "io"})
    controllers.apply_v2(d, res({"blockIO": {"weight": 500, "weightDevice": [
        {"major": 8, "minor": 0, "weight": 200}]}}), {"io"})
    assert writes == [("io.weight", "4950")]


def test_v2_missing_controller_file(tmp_path: Path) -> None:
    d = cgdir(tmp_path, {"cgroup.controllers": "memory"})
    with pytest.raises(CgroupError) as exc:
        controllers.apply_v2(d, res({"pids": {"limit": 10}}), {"pids"})
    assert str(exc.value) == (
        f"linux.resources.pids.limit: cannot write 10 to {d}/pids.max: the file does not exist "
        f"(the pids controller is not enabled for this cgroup: enable it in the parent's "
        f"cgroup.subtree_control)")


def test_v2_writes_only_given_controllers(tmp_path: Path, writes: list,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(controllers, "hugepage_sizes", lambda: ["2MB"])
    d = cgdir(tmp_path, {"hugetlb.2MB.max": "max", "hugetlb.2MB.rsvd.max": "max"})
    controllers.apply_v2(d, res({"memory": {"limit": MiB}, "pids": {"limit": 5},
                                 "cpu": {"shares": 2, "cpus": "0"},
                                 "hugepageLimits": [{"pageSize": "2MB", "limit": 2 * MiB}]}),
                         {"hugetlb"})
    assert [n for n, _ in writes] == ["hugetlb.2MB.max", "hugetlb.2MB.rsvd.max"]


def test_v2_unified(tmp_path: Path, writes: list) -> None:
    d = cgdir(tmp_path, {"cgroup.controllers": "io memory", "io.max": "", "memory.high": "max",
                         "cgroup.freeze": "0"})
    controllers.apply_v2(d, res({"unified": {"memory.high": "1000000",
                                             "io.max": "8:0 rbps=1\n8:16 wiops=2\n",
                                             "cgroup.freeze": "0"}}), set())
    assert writes == [("memory.high", "1000000"), ("io.max", "8:0 rbps=1\n8:16 wiops=2\n"),
                      ("cgroup.freeze", "0")]
    # One write(2) per line, each device separately.
    assert contents(d, "io.max") == "8:0 rbps=1\n8:16 wiops=2\n"


@pytest.mark.parametrize("key", ["../memory.max", "x/memory.max", "memory..max", "..", ""])
def test_v2_unified_refuses_paths(tmp_path: Path, key: str) -> None:
    d = cgdir(tmp_path, {})
    with pytest.raises(CgroupError, match=r"not a file name of the container's cgroup"):
        controllers.apply_v2(d, res({"unified": {key: "1"}}), set())


def test_v2_unified_missing_file(tmp_path: Path) -> None:
    d = cgdir(tmp_path, {"cgroup.controllers": "memory"})
    with pytest.raises(CgroupError) as exc:
        controllers.apply_v2(d, res({"unified": {"hugetlb.2MB.max": "0"}}), set())
    assert str(exc.value) == (
        f'linux.resources.unified["hugetlb.2MB.max"]: cannot write 0 to {d}/hugetlb.2MB.max: '
        f"the file does not exist (the hugetlb controller is not enabled for this cgroup: "
        f"enable it in the parent's cgroup.subtree_control)")
    with pytest.raises(CgroupError, match="expected a CONTROLLER.PARAMETER file name"):
        controllers.apply_v2(d, res({"unified": {"memory": "0"}}), set())


def test_write_file_refuses_to_create(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        controllers.write_file(str(tmp_path / "memory.max"), "1")
    assert not (tmp_path / "memory.max").exists()


# --- devices ----------------------------------------------------------------------------

def rule(allow: bool, type_: str = "a", major: int | None = None, minor: int | None = None,
         access: str = "rwm") -> DeviceRule:
    return DeviceRule(allow=allow, type=type_, major=major, minor=minor, access=access)


def test_effective_device_rules() -> None:
    spec = res({"devices": [{"allow": False, "access": "rwm"},
                            {"allow": True, "type": "c", "major": 10, "minor": 229,
                             "access": "rw"}]})
    rules = controllers.effective_device_rules(spec, ())
    assert rules[:2] == (rule(False), rule(True, "c", 10, 229, "rw"))
    defaults = [r for _path, r in controllers.RUNC_DEFAULT_DEVICES]
    assert list(rules[2:]) == defaults and len(defaults) == 11
    assert rule(True, "c", 1, 3) in rules and rule(True, "c", 136, None) in rules
    # A default whose path linux.devices redefines is dropped (runc's createDevices);
    # linux.devices entries add no rule themselves.
    devs = (Device(path="/dev/null", type="c", major=1, minor=3),
            Device(path="/dev/fuse", type="c", major=10, minor=229))
    rules = controllers.effective_device_rules(None, devs)
    assert rule(True, "c", 1, 3) not in rules and len(rules) == 10
    assert not any(r.major == 10 and r.minor == 229 for r in rules)


class FakeDevicesKernel:
    """The kernel's devices.allow/deny/list behaviour (security/device_cgroup.c)."""

    def __init__(self, listing: str = "a *:* rwm\n") -> None:
        self.allow_all = listing.startswith("a")
        self.exceptions: dict[tuple[str, str, str], set[str]] = {}
        if not self.allow_all:
            for line in listing.splitlines():
                t, mm, acc = line.split()
                major, minor = mm.split(":")
                self.exceptions[(t, major, minor)] = set(acc)
        self.writes: list[tuple[str, str]] = []

    def write(self, path: str, data: str, *, by_line: bool = False) -> None:
        name = os.path.basename(path)
        self.writes.append((name, data))
        t, mm, acc = data.split()
        if t == "a":
            self.allow_all, self.exceptions = name == "devices.allow", {}
            return
        major, minor = mm.split(":")
        key = (t, major, minor)
        adds = (name == "devices.allow") != self.allow_all
        if adds:
            self.exceptions.setdefault(key, set()).update(acc)
        elif key in self.exceptions:
            self.exceptions[key] -= set(acc)
            if not self.exceptions[key]:
                del self.exceptions[key]

    def read(self, path: str) -> str:
        if self.allow_all:
            return "a *:* rwm\n"
        return "".join(f"{t} {ma}:{mi} {''.join(p for p in 'rwm' if p in acc)}\n"
                       for (t, ma, mi), acc in self.exceptions.items())


@pytest.fixture
def devices_kernel(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], FakeDevicesKernel]:
    def install(listing: str = "a *:* rwm\n") -> FakeDevicesKernel:
        kernel = FakeDevicesKernel(listing)
        monkeypatch.setattr(controllers, "write_file", kernel.write)
        monkeypatch.setattr(controllers, "read_file", kernel.read)
        return kernel
    return install


def test_devices_from_allow_all(tmp_path: Path, devices_kernel: Callable) -> None:
    kernel = devices_kernel()
    devices_v1.write_rules(str(tmp_path), [
        rule(True, "c", 10, 229, "rw"), rule(True, "b", 8, 0, "r"), rule(True, "c", 136),
        rule(True, "c", 1, 3, "r"), rule(True, "c", 1, 3, "w"), rule(True, "b", None, None, "m")])
    # No leading full deny in the list: the result is still an allow-list.
    assert kernel.writes == [("devices.deny", "a *:* rwm"), ("devices.allow", "b *:* m"),
                             ("devices.allow", "c 1:3 rw"), ("devices.allow", "b 8:0 r"),
                             ("devices.allow", "c 10:229 rw"), ("devices.allow", "c 136:* rwm")]
    assert set(kernel.read("").splitlines()) == {
        "b *:* m", "b 8:0 r", "c 1:3 rw", "c 10:229 rw", "c 136:* rwm"}


def test_devices_update_writes_only_the_difference(tmp_path: Path,
                                                   devices_kernel: Callable) -> None:
    kernel = devices_kernel("c 1:3 rwm\nc 1:5 rwm\nc 5:0 rwm\n")
    devices_v1.write_rules(str(tmp_path), [rule(False), rule(True, "c", 1, 3, "r"),
                                           rule(True, "c", 5, 0), rule(True, "c", 1, 9)])
    assert kernel.writes == [("devices.deny", "c 1:3 wm"), ("devices.deny", "c 1:5 rwm"),
                             ("devices.allow", "c 1:9 rwm")]


def test_devices_allow_all_then_denies(tmp_path: Path, devices_kernel: Callable) -> None:
    kernel = devices_kernel("c 1:3 rwm\n")
    devices_v1.write_rules(str(tmp_path), [rule(True), rule(False, "b", 8, 0, "w")])
    assert kernel.writes == [("devices.allow", "a *:* rwm"), ("devices.deny", "b 8:0 w")]
    assert kernel.read("") == "a *:* rwm\n"


def test_devices_refuses_hole_in_wildcard(tmp_path: Path, devices_kernel: Callable) -> None:
    kernel = devices_kernel()
    with pytest.raises(CgroupError, match=r"cannot revoke c 1:3 rw: .* cannot punch a hole in "
                                          r"the wider rule c \*:\* rwm"):
        devices_v1.write_rules(str(tmp_path), [rule(False), rule(True, "c"),
                                               rule(False, "c", 1, 3, "rw")])
    assert kernel.writes == []


@pytest.mark.parametrize(("bad", "message"), [
    (rule(True, "c", 1, 3, "rwx"), "access 'rwx' must be a non-empty combination"),
    (rule(True, "c", 1, 3, ""), "access '' must be a non-empty combination"),
    (rule(True, "p", 1, 3), "type 'p' must be 'a', 'b' or 'c'")])
def test_devices_invalid_rules(tmp_path: Path, devices_kernel: Callable, bad: DeviceRule,
                               message: str) -> None:
    devices_kernel()
    with pytest.raises(CgroupError, match=message):
        devices_v1.write_rules(str(tmp_path), [rule(False), bad])


def test_devices_write_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = cgdir(tmp_path, {"devices.list": "a *:* rwm\n", "devices.deny": ""})

    def refuse(path: str, data: str, *, by_line: bool = False) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(controllers, "write_file", refuse)
    with pytest.raises(CgroupError) as exc:
        devices_v1.write_rules(d, [rule(False)])
    assert str(exc.value) == (f'linux.resources.devices: the kernel refused "a *:* rwm" in '
                              f"{d}/devices.deny: operation not permitted")


def test_devices_mismatch_after_writing(tmp_path: Path, devices_kernel: Callable,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = devices_kernel()
    monkeypatch.setattr(controllers, "write_file", lambda path, data, **kw: None)  # ignored
    with pytest.raises(CgroupError, match="does not show the requested rules"):
        devices_v1.write_rules(str(tmp_path), [rule(False), rule(True, "c", 1, 3)])
    assert kernel.read("") == "a *:* rwm\n"


# --- stats ------------------------------------------------------------------------------

def test_stats_v1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(controllers, "hugepage_sizes", lambda: ["2MB"])
    monkeypatch.setattr(stats, "clock_ticks", lambda: 100)
    cpuacct = cgdir(tmp_path, {
        "cpuacct.stat": "user 150\nsystem 25\n", "cpuacct.usage": "1900000000\n",
        "cpuacct.usage_percpu": "1000000000 900000000 \n",
        "cpuacct.usage_all": "cpu user system\n0 800 200\n1 700 200\n"}, "cpuacct")
    cpu = cgdir(tmp_path, {"cpu.stat": "nr_periods 10\nnr_throttled 2\nthrottled_time 500\n"},
                "cpu")
    cpuset = cgdir(tmp_path, {"cpuset.cpus": "0-2,5\n", "cpuset.mems": "0\n",
                              "cpuset.cpu_exclusive": "0", "cpuset.sched_relax_domain_level": "-1"},
                   "cpuset")
    memory = cgdir(tmp_path, {
        "memory.stat": "cache 4096\nrss 8192\n", "memory.usage_in_bytes": "12288",
        "memory.limit_in_bytes": "65536", "memory.max_usage_in_bytes": "20000",
        "memory.failcnt": "3", "memory.memsw.usage_in_bytes": "12288",
        "memory.memsw.limit_in_bytes": "131072", "memory.memsw.max_usage_in_bytes": "0",
        "memory.memsw.failcnt": "0"}, "memory")
    pids = cgdir(tmp_path, {"pids.current": "3\n", "pids.max": "max\n"}, "pids")
    blkio = cgdir(tmp_path, {
        "blkio.bfq.io_serviced_recursive": "",
        "blkio.throttle.io_serviced_recursive": "8:0 Read 4\n8:0 Write 0\nTotal 4\n",
        "blkio.throttle.io_service_bytes_recursive": "8:0 Read 16384\nTotal 16384\n"}, "blkio")
    hugetlb = cgdir(tmp_path, {"hugetlb.2MB.usage_in_bytes": "0",
                               "hugetlb.2MB.max_usage_in_bytes": "2097152",
                               "hugetlb.2MB.failcnt": "1"}, "hugetlb")
    got = stats.stats_v1({"cpuacct": cpuacct, "cpu": cpu, "cpuset": cpuset, "memory": memory,
                          "pids": pids, "blkio": blkio, "hugetlb": hugetlb, "freezer": "/x"})
    assert got == {
        "cpu": {"usage": {"total": 1900000000, "percpu": [1000000000, 900000000],
                          "percpu_kernel": [200, 200], "percpu_user": [800, 700],
                          "kernel": 250000000, "user": 1500000000},
                "throttling": {"periods": 10, "throttledPeriods": 2, "throttledTime": 500}},
        "cpuset": {"cpus": [0, 1, 2, 5], "mems": [0], "cpu_exclusive": 0,
                   "sched_relax_domain_level": -1},
        "memory": {"cache": 4096,
                   "usage": {"limit": 65536, "usage": 12288, "max": 20000, "failcnt": 3},
                   "swap": {"limit": 131072, "usage": 12288, "failcnt": 0},
                   "raw": {"cache": 4096, "rss": 8192}},
        "pids": {"current": 3},
        "blkio": {"ioServicedRecursive": [{"major": 8, "op": "Read", "value": 4},
                                          {"major": 8, "op": "Write"}],
                  "ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 16384}]},
        "hugetlb": {"2MB": {"max": 2097152, "failcnt": 1}}}


def test_stats_v1_missing_required_file(tmp_path: Path) -> None:
    memory = cgdir(tmp_path, {"memory.stat": "cache 0\n"})
    with pytest.raises(CgroupError, match=r"cannot read .*/memory.usage_in_bytes: no such file"):
        stats.stats_v1({"memory": memory})
    bad = cgdir(tmp_path, {"pids.current": "three"}, "bad")
    with pytest.raises(CgroupError, match=r"cannot parse .*/pids.current: 'three' is not a "
                                          r"number"):
        stats.stats_v1({"pids": bad})


def test_stats_v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(controllers, "hugepage_sizes", lambda: ["2MB"])
    psi = "some avg10=0.50 avg60=0.00 avg300=0.00 total=1234\n" \
          "full avg10=0.00 avg60=0.00 avg300=0.00 total=99\n"
    d = cgdir(tmp_path, {
        "cpu.stat": "usage_usec 3000\nuser_usec 2000\nsystem_usec 1000\nnr_periods 4\n"
                    "nr_throttled 1\nthrottled_usec 7\n",
        "cpu.pressure": psi,
        "memory.current": "8192", "memory.max": "max", "memory.peak": "10000",
        "memory.swap.current": "100", "memory.swap.max": "max",
        "memory.stat": "anon 4096\nfile 2048\n",
        "pids.current": "2", "pids.max": "50",
        "io.stat": "254:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
        "hugetlb.2MB.current": "0", "hugetlb.2MB.events": "max 2\n"})
    max64 = 2**64 - 1
    assert stats.stats_v2(d) == {
        "cpu": {"usage": {"total": 3000000, "kernel": 1000000, "user": 2000000},
                "throttling": {"periods": 4, "throttledPeriods": 1, "throttledTime": 7000},
                "psi": {"some": {"avg10": 0.5, "avg60": 0.0, "avg300": 0.0, "total": 1234},
                        "full": {"avg10": 0.0, "avg60": 0.0, "avg300": 0.0, "total": 99}}},
        "memory": {"cache": 2048,
                   "usage": {"limit": max64, "usage": 8192, "max": 10000, "failcnt": 0},
                   "swap": {"limit": max64, "usage": 8292, "failcnt": 0},
                   "raw": {"anon": 4096, "file": 2048}},
        "pids": {"current": 2, "limit": 50},
        "blkio": {"ioServiceBytesRecursive": [{"major": 254, "op": "Read", "value": 4096},
                                              {"major": 254, "op": "Write"}],
                  "ioServicedRecursive": [{"major": 254, "op": "Read", "value": 1},
                                          {"major": 254, "op": "Write"}]},
        "hugetlb": {"2MB": {"failcnt": 2}}}


def hugetlb_v2_files(usage: dict[str, int], rsvd: dict[str, int],
                     refused: dict[str, int]) -> dict[str, str]:
    """The hugetlb files a v2 cgroup shows on a 5.7+ kernel, per page size."""
    files: dict[str, str] = {}
    for size in ("2MB", "1GB"):
        events = f"max {refused[size]}\n"
        files |= {f"hugetlb.{size}.current": str(usage[size]), f"hugetlb.{size}.max": "max",
                  f"hugetlb.{size}.events": events, f"hugetlb.{size}.events.local": events,
                  f"hugetlb.{size}.rsvd.current": str(rsvd[size]),
                  f"hugetlb.{size}.rsvd.max": "max"}
    return files


def test_stats_v2_hugetlb_with_reservation_files(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel has hugetlb.<size>.rsvd.{current,max} but no rsvd.events: the failure
    count always comes from hugetlb.<size>.events; the usage is the reservation's."""
    monkeypatch.setattr(controllers, "hugepage_sizes", lambda: ["2MB", "1GB"])
    d = cgdir(tmp_path, hugetlb_v2_files(usage={"2MB": 2 * MiB, "1GB": 0},
                                         rsvd={"2MB": 4 * MiB, "1GB": 1 << 30},
                                         refused={"2MB": 3, "1GB": 0}))
    assert stats.stats_v2(d) == {"hugetlb": {"2MB": {"usage": 4 * MiB, "failcnt": 3},
                                             "1GB": {"usage": 1 << 30, "failcnt": 0}}}


def test_stats_v2_without_controllers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cgroup with no controllers enabled: cpu.stat is core, pids come from cgroup.procs."""
    monkeypatch.setattr(controllers, "hugepage_sizes", lambda: ["2MB"])
    d = cgdir(tmp_path, {"cpu.stat": "usage_usec 10\nuser_usec 6\nsystem_usec 4\n",
                         "cgroup.procs": "12\n34\n"})
    assert stats.stats_v2(d) == {
        "cpu": {"usage": {"total": 10000, "kernel": 4000, "user": 6000}, "throttling": {}},
        "pids": {"current": 2}}


def test_oom_kill_counts(tmp_path: Path) -> None:
    d = cgdir(tmp_path, {"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
                         "memory.events": "low 0\nhigh 0\nmax 5\noom 2\noom_kill 2\n"
                                          "oom_group_kill 0\n"})
    assert stats.oom_kill_count_v1(d) == 3
    assert stats.oom_kill_count_v2(d) == 2
    old = cgdir(tmp_path, {"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\n"}, "old")
    assert stats.oom_kill_count_v1(old) == 0
    with pytest.raises(CgroupError, match=r"cannot read .*/memory.events: no such file"):
        stats.oom_kill_count_v2(old)
