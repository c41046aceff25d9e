"""The resource writers, device rules and stats against the real kernel.

Every cgroup is created beneath this process's own cgroup of each hierarchy (read from
/proc/self/cgroup and /proc/self/mountinfo) and removed at the end; processes put in them
are started here and killed before removal.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pyoci.cgroups import CgroupError, controllers, devices_v1, stats
from pyoci.config.loader import load_resources
from pyoci.config.model import Resources

pytestmark = pytest.mark.integration

MiB = 1 << 20
UNLIMITED_V1 = 9223372036854771712        # PAGE_COUNTER_MAX in bytes on 4 KiB pages
UNIFIED = "/sys/fs/cgroup/unified"


def res(doc: dict) -> Resources:
    loaded = load_resources(doc)
    assert loaded is not None
    return loaded


def own_cgroups() -> dict[str, str]:
    """hierarchy key ("memory", "cpu", ..., "" for cgroup2) -> our path in it."""
    out: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        for name in names.split(",") if names else [""]:
            out[name] = path
    return out


def v1_mount(controller: str) -> str | None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fstype, _source, options = right.split()[:3]
        if fstype == "cgroup" and controller in options.split(","):
            return left.split()[4]
    return None


def read(d: str, name: str) -> str:
    return Path(d, name).read_text().strip()


def remove(d: str) -> None:
    """rmdir a cgroup; its killed processes may take a moment to leave it."""
    for _ in range(100):
        try:
            os.rmdir(d)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)
    os.rmdir(d)


@pytest.fixture
def cgroups() -> Iterator[Callable[[str], str]]:
    """make(hierarchy) -> a new empty cgroup beneath our own one in that hierarchy
    ("memory", "cpu", ... for v1, "unified" for the cgroup2 mount, or an existing cgroup
    path to create a child of)."""
    made: list[str] = []
    own = own_cgroups()

    def make(where: str) -> str:
        if where.startswith("/"):
            parent = where
        elif where == "unified":
            if not os.path.exists(os.path.join(UNIFIED, "cgroup.controllers")):
                pytest.skip("no cgroup2 hierarchy at /sys/fs/cgroup/unified")
            parent = UNIFIED + own.get("", "/")
        else:
            mount = v1_mount(where)
            if mount is None or where not in own:
                pytest.skip(f"the {where} v1 controller is not mounted on this host")
            parent = mount + own[where]
        path = os.path.join(parent, f"pyoci-test-{uuid.uuid4().hex[:8]}")
        os.mkdir(path)
        made.append(path)
        return path

    yield make
    for path in reversed(made):
        remove(path)


WORKER = """
import os, sys, time
sys.stdin.readline()                       # wait until placed in the cgroups
data = b"\\1" * ({mib} << 20)              # touched, so charged to the memory cgroup
start = time.monotonic()
while time.monotonic() - start < {busy}:   # burn CPU
    pass
for dev in {devices!r}:
    try:
        os.close(os.open(dev, os.O_RDONLY))
        print(dev, "ok", flush=True)
    except OSError as exc:
        print(dev, exc.errno, flush=True)
print("ready", flush=True)
sys.stdin.readline()
"""


class Worker:
    """A child process that does its work only after the test has put it in cgroups."""

    def __init__(self, mib: int = 0, busy: float = 0.0, devices: tuple[str, ...] = ()) -> None:
        script = WORKER.format(mib=mib, busy=busy, devices=list(devices))
        self.proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def join(self, *dirs: str) -> None:
        for d in dirs:
            Path(d, "cgroup.procs").write_text(str(self.proc.pid))

    def run(self) -> list[str]:
        """Let it work; its output lines up to "ready" (empty if it died)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        lines: list[str] = []
        for line in self.proc.stdout:
            if line.strip() == "ready":
                break
            lines.append(line.strip())
        return lines

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def workers() -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(**kwargs: object) -> Worker:
        worker = Worker(**kwargs)  # type: ignore[arg-type]
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


# --- v1 writers -------------------------------------------------------------------------

def test_memory_v1_values_and_swap_order(cgroups: Callable[[str], str]) -> None:
    d = cgroups("memory")
    controllers.apply_v1("memory", d, res({"memory": {
        "limit": 64 * MiB, "swap": 128 * MiB, "reservation": 32 * MiB, "swappiness": 10,
        "disableOOMKiller": True}}))
    assert read(d, "memory.limit_in_bytes") == str(64 * MiB)
    assert read(d, "memory.memsw.limit_in_bytes") == str(128 * MiB)
    assert read(d, "memory.soft_limit_in_bytes") == str(32 * MiB)
    assert read(d, "memory.swappiness") == "10"
    assert "oom_kill_disable 1" in read(d, "memory.oom_control")
    # Lowering below the current memory limit: limit first, else memsw < limit (EINVAL).
    controllers.apply_v1("memory", d, res({"memory": {"limit": 32 * MiB, "swap": 48 * MiB}}),
                         update=True)
    assert (read(d, "memory.limit_in_bytes"), read(d, "memory.memsw.limit_in_bytes")) == (
        str(32 * MiB), str(48 * MiB))
    # Raising above the current memsw: memsw first, else limit > memsw (EINVAL).
    controllers.apply_v1("memory", d, res({"memory": {"limit": 256 * MiB, "swap": 512 * MiB}}),
                         update=True)
    assert (read(d, "memory.limit_in_bytes"), read(d, "memory.memsw.limit_in_bytes")) == (
        str(256 * MiB), str(512 * MiB))
    # -1 without swap unlimits both.
    controllers.apply_v1("memory", d, res({"memory": {"limit": -1}}), update=True)
    assert read(d, "memory.limit_in_bytes") == str(UNLIMITED_V1)
    assert read(d, "memory.memsw.limit_in_bytes") == str(UNLIMITED_V1)


def test_memory_v1_swap_below_limit_is_refused(cgroups: Callable[[str], str]) -> None:
    d = cgroups("memory")
    controllers.apply_v1("memory", d, res({"memory": {"limit": 64 * MiB}}))
    with pytest.raises(CgroupError) as exc:
        controllers.apply_v1("memory", d, res({"memory": {"swap": 32 * MiB}}))
    assert str(exc.value) == (f"linux.resources.memory.swap: the kernel refused {32 * MiB} in "
                              f"{d}/memory.memsw.limit_in_bytes: invalid argument")


def test_cpu_v1_values(cgroups: Callable[[str], str]) -> None:
    d = cgroups("cpu")
    # The burst is refused while the quota is still -1 and retried after it.
    controllers.apply_v1("cpu", d, res({"cpu": {
        "shares": 512, "period": 50000, "quota": 25000, "burst": 10000,
        "realtimeRuntime": 10000, "realtimePeriod": 500000}}))
    assert {f: read(d, f) for f in ("cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us",
                                    "cpu.cfs_burst_us", "cpu.rt_runtime_us",
                                    "cpu.rt_period_us")} == {
        "cpu.shares": "512", "cpu.cfs_period_us": "50000", "cpu.cfs_quota_us": "25000",
        "cpu.cfs_burst_us": "10000", "cpu.rt_runtime_us": "10000", "cpu.rt_period_us": "500000"}
    # The kernel keeps burst <= quota: lowering the quota under the burst is refused ...
    with pytest.raises(CgroupError, match=r"cpu\.quota: the kernel refused 5000 .*invalid"):
        controllers.apply_v1("cpu", d, res({"cpu": {"quota": 5000}}), update=True)
    # ... unless the burst comes down first, as the writers order it.
    controllers.apply_v1("cpu", d, res({"cpu": {"period": 10000, "quota": 5000, "burst": 0,
                                                "idle": 1}}), update=True)
    assert {f: read(d, f) for f in ("cpu.cfs_period_us", "cpu.cfs_quota_us",
                                    "cpu.cfs_burst_us", "cpu.idle")} == {
        "cpu.cfs_period_us": "10000", "cpu.cfs_quota_us": "5000", "cpu.cfs_burst_us": "0",
        "cpu.idle": "1"}


def test_cpu_v1_quota_below_one_millisecond(cgroups: Callable[[str], str]) -> None:
    d = cgroups("cpu")
    with pytest.raises(CgroupError) as exc:
        controllers.apply_v1("cpu", d, res({"cpu": {"quota": 500}}))
    assert str(exc.value) == (f"linux.resources.cpu.quota: the kernel refused 500 in "
                              f"{d}/cpu.cfs_quota_us: invalid argument")
    assert read(d, "cpu.cfs_quota_us") == "-1"


def test_cpu_v1_shares_clamped(cgroups: Callable[[str], str]) -> None:
    d = cgroups("cpu")
    with pytest.raises(CgroupError, match=r"clamped 1 to 2 .*the minimum allowed is 2"):
        controllers.apply_v1("cpu", d, res({"cpu": {"shares": 1}}))


def test_cpuset_and_pids_v1(cgroups: Callable[[str], str]) -> None:
    cpuset = cgroups("cpuset")
    controllers.apply_v1("cpuset", cpuset, res({"cpu": {"cpus": "0", "mems": "0"}}))
    assert (read(cpuset, "cpuset.cpus"), read(cpuset, "cpuset.mems")) == ("0", "0")
    with pytest.raises(CgroupError, match=r"linux.resources.cpu.cpus: the kernel refused 4096 "
                                          r"in .*/cpuset.cpus: "):
        controllers.apply_v1("cpuset", cpuset, res({"cpu": {"cpus": "4096"}}))
    pids = cgroups("pids")
    for limit, shown in ((42, "42"), (-1, "max"), (0, "0")):
        controllers.apply_v1("pids", pids, res({"pids": {"limit": limit}}))
        assert read(pids, "pids.max") == shown


def block_device() -> tuple[int, int]:
    for name in sorted(os.listdir("/sys/block")):
        if not name.startswith(("loop", "ram", "zram")):
            major, minor = Path(f"/sys/block/{name}/dev").read_text().strip().split(":")
            return int(major), int(minor)
    pytest.skip("no disk block device to throttle")


def blkio_weight_files(d: str) -> tuple[str, str] | None:
    """(weight file, per-device weight file) this kernel gives a v1 blkio cgroup: CFQ's
    blkio.weight* went with the legacy schedulers (5.0), BFQ's blkio.bfq.weight* exist only
    while some disk uses BFQ (Documentation/admin-guide/cgroup-v1/blkio-controller.rst);
    None when neither does (e.g. every disk on mq-deadline)."""
    for weight, device in (("blkio.weight", "blkio.weight_device"),
                           ("blkio.bfq.weight", "blkio.bfq.weight_device")):
        if os.path.exists(f"{d}/{weight}"):
            return weight, device
    return None


def test_blkio_v1_throttles(cgroups: Callable[[str], str]) -> None:
    d = cgroups("blkio")
    major, minor = block_device()
    controllers.apply_v1("blkio", d, res({"blockIO": {
        "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": MiB}],
        "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 120}]}}))
    assert f"{major}:{minor} {MiB}" in read(d, "blkio.throttle.read_bps_device").splitlines()
    assert f"{major}:{minor} 120" in read(d, "blkio.throttle.write_iops_device").splitlines()


def test_blkio_v1(cgroups: Callable[[str], str]) -> None:
    d = cgroups("blkio")
    files = blkio_weight_files(d)
    if files is None:
        pytest.skip("no blkio.weight or blkio.bfq.weight in the blkio hierarchy: no disk "
                    "uses the BFQ scheduler (nor CFQ, gone since 5.0)")
    major, minor = block_device()
    controllers.apply_v1("blkio", d, res({"blockIO": {
        "weight": 500,
        "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": MiB}]}}))
    assert read(d, files[0]).split()[-1] == "500"
    assert f"{major}:{minor} {MiB}" in read(d, "blkio.throttle.read_bps_device").splitlines()


def test_blkio_v1_weight_without_bfq_names_the_missing_file(
        cgroups: Callable[[str], str]) -> None:
    """runc 1.1 (libcontainer/cgroups/fs/blkio.go) writes blkio.bfq.weight when
    blkio.weight is absent and fails with "openat2 .../blkio.bfq.weight: no such file or
    directory"; pyoci fails the same way, naming the field and the file."""
    d = cgroups("blkio")
    if blkio_weight_files(d) is not None:
        pytest.skip("this kernel has a blkio weight file (a disk uses BFQ)")
    with pytest.raises(CgroupError) as exc:
        controllers.apply_v1("blkio", d, res({"blockIO": {"weight": 500}}))
    assert str(exc.value).startswith(
        f"linux.resources.blockIO.weight: cannot write 500 to {d}/blkio.bfq.weight: "
        "the file does not exist")


def test_blkio_v1_refused_device_weight_is_reported(cgroups: Callable[[str], str]) -> None:
    d = cgroups("blkio")
    if blkio_weight_files(d) is None:
        pytest.skip("no blkio.weight_device or blkio.bfq.weight_device in the blkio "
                    "hierarchy: no disk uses the BFQ scheduler")
    major, minor = block_device()
    scheduler = Path(f"/sys/dev/block/{major}:{minor}/queue/scheduler")
    if not scheduler.exists() or "[bfq]" in scheduler.read_text():
        pytest.skip("the disk uses BFQ, which accepts per-device weights")
    with pytest.raises(CgroupError) as exc:
        controllers.apply_v1("blkio", d, res({"blockIO": {"weightDevice": [
            {"major": major, "minor": minor, "weight": 300}]}}))
    assert str(exc.value).startswith(
        f'linux.resources.blockIO.weightDevice[0].weight: the kernel refused "{major}:{minor} '
        f'300" in {d}/blkio.')


# --- devices ----------------------------------------------------------------------------

def listing(d: str) -> set[str]:
    return set(read(d, "devices.list").splitlines())


def test_devices_v1_rules_read_back(cgroups: Callable[[str], str]) -> None:
    d = cgroups("devices")
    assert listing(d) == {"a *:* rwm"}
    spec = res({"devices": [{"allow": False, "access": "rwm"},
                            {"allow": True, "type": "c", "major": 10, "minor": 229,
                             "access": "rw"}]})
    devices_v1.write_rules(d, controllers.effective_device_rules(spec, ()))
    assert listing(d) == {
        "c 10:229 rw", "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm",
        "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm"}
    # An update only revokes and adds what changed.
    devices_v1.write_rules(d, [r for r in controllers.effective_device_rules(None, ())
                               if r.major != 136])
    assert "c 136:* rwm" not in listing(d) and "c 10:229 rw" not in listing(d)
    assert "c 1:3 rwm" in listing(d)


def test_devices_v1_are_enforced(cgroups: Callable[[str], str],
                                 workers: Callable[..., Worker]) -> None:
    d = cgroups("devices")
    devices_v1.write_rules(d, controllers.effective_device_rules(
        res({"devices": [{"allow": False, "access": "rwm"}]}), ()))
    worker = workers(devices=("/dev/null", "/dev/kmsg"))
    worker.join(d)
    assert worker.run() == ["/dev/null ok", "/dev/kmsg 1"]      # kmsg: EPERM


# --- stats ------------------------------------------------------------------------------

def test_stats_v1_of_a_busy_process(cgroups: Callable[[str], str],
                                    workers: Callable[..., Worker]) -> None:
    dirs = {name: cgroups(name) for name in ("memory", "cpu", "cpuacct", "pids", "blkio",
                                             "cpuset")}
    controllers.apply_v1("cpuset", dirs["cpuset"], res({"cpu": {"cpus": "0", "mems": "0"}}))
    controllers.apply_v1("pids", dirs["pids"], res({"pids": {"limit": 10}}))
    controllers.apply_v1("memory", dirs["memory"], res({"memory": {"limit": 256 * MiB}}))
    worker = workers(mib=24, busy=0.3)
    worker.join(*dirs.values())
    worker.run()
    got = stats.stats_v1(dirs)
    usage = got["cpu"]["usage"]
    assert usage["total"] >= 200_000_000                    # >= 0.2 s of the 0.3 s busy loop
    assert len(usage["percpu"]) == len(read(dirs["cpuacct"], "cpuacct.usage_percpu").split())
    assert sum(usage["percpu"]) == pytest.approx(usage["total"], rel=0.05)
    assert usage["user"] + usage["kernel"] > 0
    assert got["cpu"]["throttling"] == {}                   # no quota, never throttled
    memory = got["memory"]
    assert 24 * MiB <= memory["usage"]["usage"] <= memory["usage"]["max"]
    assert memory["usage"]["limit"] == 256 * MiB
    assert memory["raw"]["rss"] >= 24 * MiB
    assert got["pids"] == {"current": 1, "limit": 10}
    assert got["cpuset"]["cpus"] == [0] and got["cpuset"]["mems"] == [0]
    assert "blkio" in got and "hugetlb" not in got
    assert stats.oom_kill_count_v1(dirs["memory"]) == 0


def test_oom_kill_count_v1(cgroups: Callable[[str], str],
                           workers: Callable[..., Worker]) -> None:
    d = cgroups("memory")
    controllers.apply_v1("memory", d, res({"memory": {"limit": 16 * MiB, "swap": 16 * MiB}}))
    worker = workers(mib=64)
    worker.join(d)
    assert worker.run() == []
    assert worker.proc.wait(timeout=30) == -9
    assert stats.oom_kill_count_v1(d) == 1


# --- cgroup v2 on the unified hierarchy --------------------------------------------------

def test_hugetlb_on_the_unified_hierarchy(cgroups: Callable[[str], str]) -> None:
    sizes = controllers.hugepage_sizes()
    if not sizes:
        pytest.skip("this kernel has no huge pages")
    parent = cgroups("unified")
    if "hugetlb" not in read(parent, "cgroup.controllers").split():
        pytest.skip("hugetlb is not delegated to our unified cgroup (the unified root's "
                    "cgroup.subtree_control lacks it, and this test does not change the root)")
    Path(parent, "cgroup.subtree_control").write_text("+hugetlb")
    d = cgroups(parent)
    assert "hugetlb" in read(d, "cgroup.controllers").split()
    controllers.apply_v2(d, res({"hugepageLimits": [{"pageSize": sizes[0], "limit": 0}]}),
                         {"hugetlb"})
    assert read(d, f"hugetlb.{sizes[0]}.max") == "0"
    assert "hugetlb" in stats.stats_v2(d)


def test_unified_missing_controller_is_explained(cgroups: Callable[[str], str]) -> None:
    d = cgroups("unified")
    enabled = read(d, "cgroup.controllers").split()
    assert "pids" not in enabled                           # pids lives on its v1 hierarchy
    with pytest.raises(CgroupError) as exc:
        controllers.apply_v2(d, res({"unified": {"pids.max": "10"}}), set())
    assert str(exc.value) == (
        f'linux.resources.unified["pids.max"]: cannot write 10 to {d}/pids.max: the file does '
        f"not exist (the pids controller is not enabled for this cgroup: enable it in the "
        f"parent's cgroup.subtree_control)")
    sizes = controllers.hugepage_sizes()
    if sizes and "hugetlb" not in enabled:
        with pytest.raises(CgroupError, match="the hugetlb controller is not enabled"):
            controllers.apply_v2(d, res({"hugepageLimits": [{"pageSize": sizes[0],
                                                             "limit": 0}]}), {"hugetlb"})
    # Core files exist in every cgroup: unified writes them.
    controllers.apply_v2(d, res({"unified": {"cgroup.max.descendants": "5"}}), set())
    assert read(d, "cgroup.max.descendants") == "5"


def test_stats_v2_of_a_busy_process(cgroups: Callable[[str], str],
                                    workers: Callable[..., Worker]) -> None:
    d = cgroups("unified")
    worker = workers(busy=0.2)
    worker.join(d)
    worker.run()
    got = stats.stats_v2(d)
    assert got["cpu"]["usage"]["total"] >= 100_000_000
    assert got["cpu"]["usage"]["user"] + got["cpu"]["usage"]["kernel"] > 0
    assert got["pids"] == {"current": 1}
    if os.path.exists(f"{d}/cpu.pressure"):
        assert set(got["cpu"]["psi"]) >= {"some"}
