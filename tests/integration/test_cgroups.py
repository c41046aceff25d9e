"""The cgroup executor through real containers (config-linux.md "Control groups"): the
limits of linux.resources are in the container's cgroup files as seen from the host and
are enforced inside; pause/resume, ps, events, update and kill --all act on the cgroup;
delete (also --force) removes it from every hierarchy."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    Bundle,
    Runtime,
    assert_no_cgroup,
    assert_nothing_left,
    base_config,
    cgroup_dir,
    cgroup_dirs,
    own_cgroup,
)

pytestmark = pytest.mark.integration

SLEEPER = ["sleep", "300"]


def _config(args: list[str], resources: dict[str, Any] | None = None,
            **linux: Any) -> dict[str, Any]:
    cfg = base_config(args=args)
    if resources is not None:
        cfg["linux"]["resources"] = resources
    cfg["linux"].update(linux)
    return cfg


def _read(path: Path) -> str:
    return path.read_text().strip()


def _created(runtime: Runtime, bundle: Bundle, cid: str, cfg: dict[str, Any]) -> None:
    bundle.write(cfg)
    res = runtime("create", "-b", str(bundle.path), cid)
    assert res.returncode == 0, res.stderr


def _running(runtime: Runtime, bundle: Bundle, cid: str, cfg: dict[str, Any]) -> int:
    _created(runtime, bundle, cid, cfg)
    runtime("start", cid, check=True)
    return runtime.state(cid)["pid"]


def test_default_path_is_the_id_below_our_own_cgroup(runtime: Runtime, bundle: Bundle) -> None:
    pid = _running(runtime, bundle, "cg-default", _config(SLEEPER))
    for d in cgroup_dirs("cg-default"):
        if d.parts[4] == "systemd":
            continue  # a named hierarchy, not a controller: runc leaves it alone too
        assert d.is_dir(), d
        assert str(pid) in _read(d / "cgroup.procs").split(), d
    runtime("delete", "--force", "cg-default", check=True)
    assert_nothing_left(runtime, "cg-default", bundle)


def test_limits_are_written_to_the_cgroup(runtime: Runtime, bundle: Bundle) -> None:
    res = {"memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20},
           "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
           "pids": {"limit": 42}}
    _running(runtime, bundle, "cg-limits", _config(SLEEPER, res, cgroupsPath="pyoci-t/limits"))
    mem = cgroup_dir("pyoci-t/limits", "memory")
    assert _read(mem / "memory.limit_in_bytes") == str(64 << 20)
    assert _read(mem / "memory.soft_limit_in_bytes") == str(32 << 20)
    if (mem / "memory.memsw.limit_in_bytes").exists():
        assert _read(mem / "memory.memsw.limit_in_bytes") == str(96 << 20)
    cpu = cgroup_dir("pyoci-t/limits", "cpu")
    assert _read(cpu / "cpu.shares") == "512"
    assert _read(cpu / "cpu.cfs_quota_us") == "50000"
    assert _read(cpu / "cpu.cfs_period_us") == "100000"
    assert _read(cgroup_dir("pyoci-t/limits", "cpuset") / "cpuset.cpus") == "0"
    assert _read(cgroup_dir("pyoci-t/limits", "pids") / "pids.max") == "42"
    runtime("delete", "--force", "cg-limits", check=True)
    assert_nothing_left(runtime, "cg-limits", bundle)
    # Levels above the container that create made are removed too (runc keeps them).
    assert not any(parent.exists() for parent in cgroup_dirs("pyoci-t"))


def test_absolute_path_is_from_the_hierarchy_root(runtime: Runtime, bundle: Bundle) -> None:
    # Below our own memory cgroup, so this test stays inside what it may touch.
    path = own_cgroup("memory").rstrip("/") + "/pyoci-abs"
    _running(runtime, bundle, "cg-abs", _config(SLEEPER, {"pids": {"limit": 7}},
                                                cgroupsPath=path))
    assert _read(Path("/sys/fs/cgroup/pids" + path) / "pids.max") == "7"
    runtime("delete", "--force", "cg-abs", check=True)
    assert_no_cgroup(path)


def test_memory_limit_is_enforced_and_reported(runtime: Runtime, bundle: Bundle) -> None:
    res = {"memory": {"limit": 16 << 20, "swap": 16 << 20}}
    # dd needs a 64 MiB buffer: over the limit, so the OOM killer ends it.
    _running(runtime, bundle, "cg-oom",
             _config(["sh", "-c", "sleep 1; dd if=/dev/zero of=/dev/null bs=64M count=4; "
                      "echo dd=$?; sleep 300"], res))
    deadline = time.monotonic() + 20
    ooms = 0
    while time.monotonic() < deadline:
        stats = json.loads(runtime("events", "--stats", "cg-oom", check=True).stdout)
        assert stats["type"] == "stats" and stats["id"] == "cg-oom"
        mem = stats["data"]["memory"]
        assert mem["usage"]["limit"] == 16 << 20
        ooms = int(_read(cgroup_dir("cg-oom", "memory") / "memory.oom_control")
                   .split("oom_kill ")[1].split()[0])
        if ooms:
            break
        time.sleep(0.2)
    assert ooms >= 1
    runtime("delete", "--force", "cg-oom", check=True)
    assert_nothing_left(runtime, "cg-oom", bundle)


def test_events_stream_reports_oom(runtime: Runtime, bundle: Bundle) -> None:
    res = {"memory": {"limit": 16 << 20, "swap": 16 << 20}}
    _running(runtime, bundle, "cg-ev",
             _config(["sh", "-c", "sleep 1; dd if=/dev/zero of=/dev/null bs=64M count=1; "
                      "sleep 2"], res))
    # The stream ends by itself when the container's init exits (~3 s from now).
    out = runtime("events", "--interval", "1s", "cg-ev", timeout=30, check=True).stdout
    kinds = [json.loads(line)["type"] for line in out.splitlines()]
    assert "oom" in kinds and "stats" in kinds, out
    runtime("delete", "cg-ev", check=True)
    assert_nothing_left(runtime, "cg-ev", bundle)


def test_pids_limit_stops_a_fork_loop(runtime: Runtime, bundle: Bundle) -> None:
    script = "i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); echo $i; done"
    bundle.write(_config(["sh", "-c", script], {"pids": {"limit": 10}}))
    res = runtime("run", "-b", str(bundle.path), "cg-pids", timeout=60)
    assert "can't fork" in res.stderr, res.stderr
    started = res.stdout.split()
    # sh itself takes one of the 10 slots: at most 9 sleeps start.
    assert started and int(started[-1]) <= 9, res.stdout
    assert res.returncode != 0
    assert_nothing_left(runtime, "cg-pids", bundle)


def test_pause_freezes_and_resume_thaws(runtime: Runtime, bundle: Bundle,
                                        host_dir: Path) -> None:
    # Written to a temp file and renamed: a freeze between `>`'s truncation and the write
    # would otherwise leave an empty counter for as long as the pause lasts.
    cfg = _config(["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /shared/n.tmp; "
                   "mv /shared/n.tmp /shared/n; usleep 20000; done"])
    cfg["mounts"].append({"destination": "/shared", "type": "bind", "source": str(host_dir),
                          "options": ["rbind"]})
    _running(runtime, bundle, "cg-pause", cfg)
    counter = host_dir / "n"

    def value() -> int:
        for _ in range(50):
            text = counter.read_text().strip() if counter.exists() else ""
            if text:
                return int(text)
            time.sleep(0.05)
        raise AssertionError("counter never written")

    first = value()
    runtime("pause", "cg-pause", check=True)
    assert runtime.state("cg-pause")["status"] == "paused"
    frozen = value()
    time.sleep(0.5)
    assert value() == frozen >= first
    assert runtime("pause", "cg-pause").returncode == 1  # already paused
    runtime("resume", "cg-pause", check=True)
    assert runtime.state("cg-pause")["status"] == "running"
    time.sleep(0.5)
    assert value() > frozen
    res = runtime("resume", "cg-pause")
    assert res.returncode == 1 and "not paused" in res.stderr
    runtime("delete", "--force", "cg-pause", check=True)
    assert_nothing_left(runtime, "cg-pause", bundle)


def test_delete_force_of_a_paused_container(runtime: Runtime, bundle: Bundle) -> None:
    _running(runtime, bundle, "cg-fp", _config(SLEEPER))
    runtime("pause", "cg-fp", check=True)
    runtime("delete", "--force", "cg-fp", check=True, timeout=30)
    assert_nothing_left(runtime, "cg-fp", bundle)


def test_ps_lists_the_cgroup(runtime: Runtime, bundle: Bundle) -> None:
    pid = _running(runtime, bundle, "cg-ps",
                   _config(["sh", "-c", "sleep 300 & sleep 301 & wait"]))
    pids = json.loads(runtime("ps", "--format", "json", "cg-ps", check=True).stdout)
    assert pid in pids and len(pids) == 3
    table = runtime("ps", "cg-ps", check=True).stdout.splitlines()
    assert table[0].split()[1] == "PID" and len(table) == 4, table
    runtime("delete", "--force", "cg-ps", check=True)
    assert_nothing_left(runtime, "cg-ps", bundle)


def test_kill_all_reaches_processes_outside_a_pid_namespace(runtime: Runtime,
                                                           bundle: Bundle) -> None:
    cfg = _config(["sh", "-c", "sleep 300 & sleep 301 & wait"])
    cfg["linux"]["namespaces"] = [ns for ns in cfg["linux"]["namespaces"] if ns["type"] != "pid"]
    _running(runtime, bundle, "cg-killall", cfg)
    pids = json.loads(runtime("ps", "--format", "json", "cg-killall", check=True).stdout)
    assert len(pids) == 3
    runtime("kill", "--all", "cg-killall", "KILL", check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.05)
    assert not any(Path(f"/proc/{p}/status").exists()
                   and "State:\tZ" not in Path(f"/proc/{p}/status").read_text() for p in pids)
    runtime("delete", "cg-killall", check=True)
    assert_nothing_left(runtime, "cg-killall", bundle)


def test_kill_all_after_the_init_exited(runtime: Runtime, bundle: Bundle) -> None:
    """containerd's shim sends `kill --all ID KILL` once the init of a container without
    its own pid namespace has exited: what is left in the cgroup must still get it."""
    cfg = _config(["sh", "-c", "sleep 300 & exit 0"])
    cfg["linux"]["namespaces"] = [ns for ns in cfg["linux"]["namespaces"] if ns["type"] != "pid"]
    _running(runtime, bundle, "cg-orphan", cfg)
    deadline = time.monotonic() + 10
    while runtime.state("cg-orphan")["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    left = json.loads(runtime("ps", "--format", "json", "cg-orphan", check=True).stdout)
    assert len(left) == 1
    runtime("kill", "--all", "cg-orphan", "KILL", check=True)
    deadline = time.monotonic() + 10
    while json.loads(runtime("ps", "--format", "json", "cg-orphan", check=True).stdout):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    res = runtime("kill", "cg-orphan", "KILL")  # without --all a stopped one is an error
    assert res.returncode == 1 and "stopped" in res.stderr
    runtime("delete", "cg-orphan", check=True)
    assert_nothing_left(runtime, "cg-orphan", bundle)


def test_update_changes_limits(runtime: Runtime, bundle: Bundle) -> None:
    _running(runtime, bundle, "cg-upd", _config(SLEEPER, {"memory": {"limit": 64 << 20},
                                                          "pids": {"limit": 20}}))
    runtime("update", "--memory", "32m", "--pids-limit", "30", "cg-upd", check=True)
    assert _read(cgroup_dir("cg-upd", "memory") / "memory.limit_in_bytes") == str(32 << 20)
    assert _read(cgroup_dir("cg-upd", "pids") / "pids.max") == "30"
    runtime("update", "--resources", "-", "cg-upd", check=True,
            input=json.dumps({"cpu": {"shares": 256}, "pids": {"limit": -1}}))
    assert _read(cgroup_dir("cg-upd", "cpu") / "cpu.shares") == "256"
    assert _read(cgroup_dir("cg-upd", "pids") / "pids.max") == "max"
    assert _read(cgroup_dir("cg-upd", "memory") / "memory.limit_in_bytes") == str(32 << 20)
    bad = runtime("update", "--resources", "-", "cg-upd",
                  input=json.dumps({"memory": {"limit": "lots"}}))
    assert bad.returncode == 1 and "memory.limit" in bad.stderr
    runtime("delete", "--force", "cg-upd", check=True)
    assert_nothing_left(runtime, "cg-upd", bundle)


def test_device_allow_list_is_enforced(runtime: Runtime, bundle: Bundle) -> None:
    # CAP_MKNOD lets the process make the node; the device cgroup still denies opening it.
    caps = ["CAP_MKNOD", "CAP_DAC_OVERRIDE"]
    cfg = _config(["sh", "-c", "mknod /tmp/sda b 8 0 && head -c1 /tmp/sda; echo sda=$?; "
                   "head -c1 /dev/zero >/dev/null; echo zero=$?; "
                   "head -c1 /dev/full >/dev/null; echo full=$?"],
                  {"devices": [{"allow": False, "access": "rwm"},
                               {"allow": True, "type": "c", "major": 1, "minor": 5,
                                "access": "r"}]})
    cfg["process"]["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
    cfg["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    bundle.write(cfg)
    res = runtime("run", "-b", str(bundle.path), "cg-dev")
    assert "sda=1" in res.stdout, res.stdout + res.stderr
    assert "zero=0" in res.stdout  # allowed by the config
    assert "full=0" in res.stdout  # one of runc's default devices, allowed after the list
    assert "Operation not permitted" in res.stderr
    assert_nothing_left(runtime, "cg-dev", bundle)


def test_cgroup_namespace_roots_at_the_container(runtime: Runtime, bundle: Bundle) -> None:
    cfg = _config(["cat", "/proc/self/cgroup"])
    cfg["linux"]["namespaces"].append({"type": "cgroup"})
    bundle.write(cfg)
    res = runtime("run", "-b", str(bundle.path), "cg-ns")
    assert res.returncode == 0, res.stderr
    memory = [line for line in res.stdout.splitlines() if ":memory:" in line]
    assert memory == [memory[0]] and memory[0].endswith(":/"), res.stdout
    assert_nothing_left(runtime, "cg-ns", bundle)


def test_kernel_refusal_is_a_clear_error(runtime: Runtime, bundle: Bundle) -> None:
    bundle.write(_config(SLEEPER, {"cpu": {"quota": 500, "period": 100000}}))
    res = runtime("create", "-b", str(bundle.path), "cg-bad")
    assert res.returncode == 1
    assert "linux.resources.cpu.quota" in res.stderr and "cpu.cfs_quota_us" in res.stderr
    assert "invalid argument" in res.stderr, res.stderr
    assert_nothing_left(runtime, "cg-bad", bundle)


def test_controller_missing_on_this_host_is_a_clear_error(runtime: Runtime,
                                                          bundle: Bundle) -> None:
    # net_cls is not mounted on this machine kind (see ../shared/reference/README.md).
    if any(d.parts[4].startswith("net_cls") for d in cgroup_dirs("x")):
        pytest.skip("this host mounts net_cls")
    bundle.write(_config(SLEEPER, {"network": {"classID": 1048577}}))
    res = runtime("create", "-b", str(bundle.path), "cg-nocls")
    assert res.returncode == 1
    assert "linux.resources.network.classID" in res.stderr and "net_cls" in res.stderr
    assert_nothing_left(runtime, "cg-nocls", bundle)


def test_stopped_container_keeps_cgroup_until_delete(runtime: Runtime, bundle: Bundle) -> None:
    bundle.write(_config(["true"]))
    runtime("create", "-b", str(bundle.path), "cg-stop", check=True)
    runtime("start", "cg-stop", check=True)
    deadline = time.monotonic() + 10
    while runtime.state("cg-stop")["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cgroup_dir("cg-stop", "memory").is_dir()
    assert json.loads(runtime("ps", "-f", "json", "cg-stop", check=True).stdout) == []
    runtime("delete", "cg-stop", check=True)
    assert_nothing_left(runtime, "cg-stop", bundle)


@pytest.mark.parametrize("cgroupns", [False, True])
def test_cgroup_mount_shows_the_container_own_limits(runtime: Runtime, bundle: Bundle,
                                                     cgroupns: bool) -> None:
    """Inside, /sys/fs/cgroup is the container's own cgroup, never the host's tree: a bind
    of its directories without a cgroup namespace (as runc), a fresh mount with one."""
    cfg = _config(["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                   "/sys/fs/cgroup/pids/pids.max; ls /sys/fs/cgroup/pids | grep -c '^cg-'"],
                  {"memory": {"limit": 64 << 20}, "pids": {"limit": 50}})
    cfg["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup",
                          "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]})
    if cgroupns:
        cfg["linux"]["namespaces"].append({"type": "cgroup"})
    bundle.write(cfg)
    res = runtime("run", "-b", str(bundle.path), "cg-mnt")
    assert res.stdout.split() == [str(64 << 20), "50", "0"], res.stdout + res.stderr
    assert_nothing_left(runtime, "cg-mnt", bundle)
