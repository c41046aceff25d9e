"""Process attributes that were validated but never applied (issue 13), each observed from
inside the container (or, for the cgroup file, from the host), and each refusal checked to
name the JSON path and to leave nothing behind."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from tests.helpers import Bundle, Runtime, assert_nothing_left, base_config, cgroup_dir

pytestmark = pytest.mark.integration


def _cid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def _stat_fields(text: str) -> list[str]:
    """/proc/PID/stat split after the command (which may hold spaces): index 0 is field 3."""
    return text[text.rindex(")") + 2:].split()


def _run(runtime: Runtime, bundle: Bundle, name: str) -> str:
    proc = runtime("run", "--bundle", str(bundle.path), _cid(name))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _refused(runtime: Runtime, bundle: Bundle, name: str) -> str:
    cid = _cid(name)
    proc = runtime("run", "--bundle", str(bundle.path), cid)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert_nothing_left(runtime, cid, bundle)
    return proc.stderr


def test_scheduler_policy_and_nice(runtime: Runtime, bundle: Bundle) -> None:
    """config.md process.scheduler: SCHED_BATCH with nice 5 (sched_setattr(2)). The
    process's /proc/self/stat shows nice (field 19) and policy (field 41)."""
    bundle.config["process"]["args"] = ["/bin/cat", "/proc/self/stat"]
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 5}
    bundle.write()
    fields = _stat_fields(_run(runtime, bundle, "sched"))
    assert (fields[19 - 3], fields[41 - 3]) == ("5", "3")  # nice 5, SCHED_BATCH


def test_scheduler_flags_reach_the_kernel(runtime: Runtime, bundle: Bundle) -> None:
    """SCHED_FLAG_RESET_ON_FORK with a negative nice (needs CAP_SYS_NICE: applied before
    the capabilities are dropped): the shell runs at nice -5, its child (cat) starts again
    at nice 0 (sched(7)). SCHED_IDLE is seen as policy 5."""
    # The trailing `true`: busybox sh would exec a last command in place, not fork it.
    bundle.config["process"]["args"] = ["/bin/sh", "-c",
                                        "cat /proc/$$/stat; cat /proc/self/stat; true"]
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_OTHER", "nice": -5,
                                             "flags": ["SCHED_FLAG_RESET_ON_FORK"]}
    bundle.write()
    shell, child = _run(runtime, bundle, "schedflag").splitlines()
    assert _stat_fields(shell)[19 - 3] == "-5"
    assert _stat_fields(child)[19 - 3] == "0"  # reset on fork
    bundle.config["process"]["args"] = ["/bin/cat", "/proc/self/stat"]
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_IDLE"}
    bundle.write()
    assert _stat_fields(_run(runtime, bundle, "schedidle"))[41 - 3] == "5"


def test_scheduler_real_time_priority(runtime: Runtime, bundle: Bundle) -> None:
    """SCHED_FIFO with priority 10 (rt_priority: /proc/self/stat field 40). On a cgroup v1
    cpu hierarchy with RT group scheduling the container's cgroup needs a real-time budget
    first; without it the kernel's EPERM comes with that explanation."""
    bundle.config["process"]["args"] = ["/bin/cat", "/proc/self/stat"]
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_FIFO", "priority": 10}
    bundle.write()
    cid = _cid("fifo")
    proc = runtime("run", "--bundle", str(bundle.path), cid)
    if proc.returncode != 0:
        assert "process.scheduler: the kernel refused policy SCHED_FIFO" in proc.stderr
        assert "operation not permitted" in proc.stderr
        assert "linux.resources.cpu.realtimeRuntime" in proc.stderr
        assert_nothing_left(runtime, cid, bundle)
        bundle.config["linux"]["resources"] = {
            "cpu": {"realtimeRuntime": 10000, "realtimePeriod": 1000000}}
        bundle.write()
        proc = runtime("run", "--bundle", str(bundle.path), _cid("fifo"))
    assert proc.returncode == 0, proc.stderr
    fields = _stat_fields(proc.stdout)
    assert (fields[40 - 3], fields[41 - 3]) == ("10", "1")  # rt_priority 10, SCHED_FIFO


def test_scheduler_deadline(runtime: Runtime, bundle: Bundle) -> None:
    """SCHED_DEADLINE with runtime/deadline/period: /proc/self/sched shows policy 6 and
    the deadline parameters (the process execs straight from the init: a deadline task
    may not fork)."""
    bundle.config["process"]["args"] = ["/bin/cat", "/proc/self/sched"]
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_DEADLINE", "runtime": 10_000_000,
                                             "deadline": 30_000_000, "period": 30_000_000}
    bundle.write()
    out = _run(runtime, bundle, "dl")
    values = {k.strip(): v.strip() for k, _, v in (line.partition(":")
                                                   for line in out.splitlines()[2:])}
    assert values["policy"] == "6"
    assert "dl.runtime" in values and "dl.deadline" in values


def test_scheduler_the_kernel_refuses_is_an_error(runtime: Runtime, bundle: Bundle) -> None:
    """SCHED_ISO is in the spec but was never merged into Linux: EINVAL, reported with the
    field; nothing of the container is left."""
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_ISO"}
    bundle.write()
    err = _refused(runtime, bundle, "schediso")
    assert "process.scheduler: the kernel refused policy SCHED_ISO" in err
    assert "invalid argument" in err


def test_scheduler_values_runc_refuses(runtime: Runtime, bundle: Bundle) -> None:
    """runc's validate rules: nice within [-20, 19], priority only for FIFO/RR, deadline
    values only for SCHED_DEADLINE; every problem listed at once."""
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_OTHER", "nice": 20,
                                             "priority": 3, "period": 10}
    bundle.write()
    err = _refused(runtime, bundle, "schedbad")
    for path in ("process.scheduler.nice", "process.scheduler.priority",
                 "process.scheduler.period"):
        assert path in err


@pytest.mark.parametrize(("klass", "level", "shown"), [
    ("IOPRIO_CLASS_IDLE", 0, "idle"),
    ("IOPRIO_CLASS_BE", 7, "best-effort: prio 7"),
    ("IOPRIO_CLASS_RT", 2, "realtime: prio 2"),
])
def test_io_priority(runtime: Runtime, bundle: Bundle, klass: str, level: int,
                     shown: str) -> None:
    """config.md process.ioPriority (ioprio_set(2), IOPRIO_WHO_PROCESS), read back by
    busybox's ionice (ioprio_get) in the container."""
    bundle.config["process"]["args"] = ["/bin/ionice"]
    bundle.config["process"]["ioPriority"] = {"class": klass, "priority": level}
    bundle.write()
    assert _run(runtime, bundle, "ioprio").strip() == shown


def test_personality_linux32(runtime: Runtime, bundle: Bundle) -> None:
    """config-linux.md linux.personality LINUX32: `uname -m` says i686, as under crun and
    runc; `exec` gets it too (runc's personality.bats)."""
    if os.uname().machine != "x86_64":
        pytest.skip("LINUX32 shows as i686 only on x86_64")
    bundle.config["process"]["args"] = ["/bin/sleep", "60"]
    bundle.config["linux"]["personality"] = {"domain": "LINUX32", "flags": []}
    bundle.write()
    cid = _cid("pers")
    runtime("run", "-d", "--bundle", str(bundle.path), cid, check=True)
    try:
        pid = runtime.state(cid)["pid"]
        with open(f"/proc/{pid}/personality") as f:
            assert int(f.read(), 16) == 0x0008  # PER_LINUX32
        out = runtime("exec", cid, "uname", "-m", check=True).stdout
        assert out.strip() == "i686"
    finally:
        runtime("delete", "--force", cid)


def test_personality_run(runtime: Runtime, bundle: Bundle) -> None:
    if os.uname().machine != "x86_64":
        pytest.skip("LINUX32 shows as i686 only on x86_64")
    bundle.config["process"]["args"] = ["/bin/uname", "-m"]
    bundle.config["linux"]["personality"] = {"domain": "LINUX32"}
    bundle.write()
    assert _run(runtime, bundle, "pers32").strip() == "i686"
    bundle.config["linux"]["personality"] = {"domain": "LINUX"}
    bundle.write()
    assert _run(runtime, bundle, "pers64").strip() == "x86_64"


def test_personality_flags_are_refused(runtime: Runtime, bundle: Bundle) -> None:
    """config-linux.md: "Currently no flag values are supported": pyoci says so rather
    than run without what was asked."""
    bundle.config["linux"]["personality"] = {"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}
    bundle.write()
    err = _refused(runtime, bundle, "persflag")
    assert "linux.personality.flags[0]" in err
    assert "no personality flags are defined by the runtime-spec" in err


def _allowed(text: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in text.splitlines()
                if line.startswith("Cpus_allowed_list:"))


@pytest.fixture
def two_cpus() -> None:
    if not {0, 1} <= os.sched_getaffinity(0):
        pytest.skip("needs CPUs 0 and 1 in this process's affinity")


@pytest.mark.usefixtures("two_cpus")
def test_exec_cpu_affinity(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """config.md process.execCPUAffinity, as runc applies it: only to `exec`'d processes
    (never the init); ``initial`` before the cgroup join, kept without ``final``;
    ``final`` after the join. Both from config.json's process and from --process."""
    bundle.config["process"]["args"] = ["/bin/sleep", "60"]
    bundle.config["process"]["execCPUAffinity"] = {"initial": "1"}
    bundle.write()
    cid = _cid("aff")
    runtime("run", "-d", "--bundle", str(bundle.path), cid, check=True)
    try:
        pid = runtime.state(cid)["pid"]
        assert os.sched_getaffinity(pid) == os.sched_getaffinity(0)  # the init: untouched
        out = runtime("exec", cid, "cat", "/proc/self/status", check=True).stdout
        assert _allowed(out) == "1"
        proc = dict(bundle.config["process"], args=["/bin/cat", "/proc/self/status"],
                    execCPUAffinity={"initial": "1", "final": "0"})
        spec = tmp_path / "process.json"
        spec.write_text(json.dumps(proc))
        out = runtime("exec", "--process", str(spec), cid, check=True).stdout
        assert _allowed(out) == "0"
        # A list the kernel cannot use (no such CPU online) names the field, exits 1.
        proc["execCPUAffinity"] = {"final": "4095"}
        spec.write_text(json.dumps(proc))
        bad = runtime("exec", "--process", str(spec), cid)
        assert bad.returncode == 1
        assert "process.execCPUAffinity.final: the kernel refused CPUs 4095" in bad.stderr
        assert "Traceback" not in bad.stderr
    finally:
        runtime("delete", "--force", cid)


def test_exec_cpu_affinity_bad_list_is_a_config_error(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["process"]["execCPUAffinity"] = {"initial": "3-1"}
    bundle.write()
    err = _refused(runtime, bundle, "affbad")
    assert "process.execCPUAffinity.initial" in err and "backwards" in err


def _kmem_tcp_dir(cgpath: str) -> Path:
    try:
        d = cgroup_dir(cgpath, "memory")
    except LookupError:
        pytest.skip("no cgroup v1 memory hierarchy on this host")
    parent = d.parent
    while not parent.exists():
        parent = parent.parent
    if not (parent / "memory.kmem.tcp.limit_in_bytes").exists():
        pytest.skip("this kernel has no memory.kmem.tcp.limit_in_bytes")
    return d


def test_kernel_tcp_is_applied_on_v1(runtime: Runtime, bundle: Bundle) -> None:
    """linux.resources.memory.kernelTCP: the kernel still enforces kmem.tcp on v1, so the
    value is written (it used to be dropped with a warning)."""
    cid = _cid("ktcp")
    cgpath = f"pyoci-test-{cid}"
    d = _kmem_tcp_dir(cgpath)
    cfg = base_config(args=["/bin/sleep", "60"])
    cfg["linux"]["cgroupsPath"] = cgpath
    cfg["linux"]["resources"] = {"memory": {"kernelTCP": 16 * 2**20}}
    bundle.write(cfg)
    runtime("run", "-d", "--bundle", str(bundle.path), cid, check=True)
    try:
        assert (d / "memory.kmem.tcp.limit_in_bytes").read_text().strip() == str(16 * 2**20)
    finally:
        runtime("delete", "--force", cid)
    assert_nothing_left(runtime, cid, bundle)


def test_use_hierarchy_on_v1(runtime: Runtime, bundle: Bundle) -> None:
    """linux.resources.memory.useHierarchy (v1 memory.use_hierarchy): the kernel is always
    hierarchical now, so `true` runs and `false` is the kernel's refusal, naming the field
    (it used to be dropped without a word)."""
    cid = _cid("hier")
    cgpath = f"pyoci-test-{cid}"
    d = _kmem_tcp_dir(cgpath)
    cfg = base_config(args=["/bin/true"])
    cfg["linux"]["cgroupsPath"] = cgpath
    cfg["linux"]["resources"] = {"memory": {"useHierarchy": False}}
    bundle.write(cfg)
    err = _refused(runtime, bundle, "hier")
    assert "linux.resources.memory.useHierarchy" in err and "use_hierarchy" in err
    cfg["linux"]["resources"] = {"memory": {"useHierarchy": True}}
    cfg["process"]["args"] = ["/bin/sleep", "60"]
    bundle.write(cfg)
    runtime("run", "-d", "--bundle", str(bundle.path), cid, check=True)
    try:
        assert (d / "memory.use_hierarchy").read_text().strip() == "1"
    finally:
        runtime("delete", "--force", cid)
    assert_nothing_left(runtime, cid, bundle)


def test_id_mapped_mounts_are_refused(runtime: Runtime, bundle: Bundle) -> None:
    """mounts[].uidMappings/gidMappings (config.md, id-mapped mounts): refused by name."""
    bundle.config["mounts"].append({
        "destination": "/mnt", "type": "bind", "source": str(bundle.rootfs / "tmp"),
        "options": ["bind"], "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]})
    bundle.write()
    err = _refused(runtime, bundle, "idmap")
    assert "id-mapped mounts (uidMappings/gidMappings) are not supported" in err
