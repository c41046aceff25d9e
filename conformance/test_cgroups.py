"""config-linux.md "Control groups": cgroupsPath, the container's processes in
its cgroup, memory/cpu/pids/blockIO limits seen in the host's cgroup files,
the allowed device list, removal on delete (runtime.md "Delete"); and runc's
cgroup commands that are not in the spec (pause/resume, ps, update, events).

The cgroups a case causes are always beneath this process's own cgroup in
every hierarchy (/proc/self/cgroup): relative cgroupsPath values, or an
absolute one built from our own (deepest) cgroup path.  Intermediate
directories a runtime creates and does not remove are removed by the case.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from .harness import (
    WAIT_FOR_GO,
    assert_gone,
    cgroup_dir,
    cgroup_dirs_along,
    cgroup_membership,
    cgroup_mounts,
    process_cgroup_dir,
    remove_cgroup_dirs,
    wait_until,
)

MiB = 1024 * 1024


def need_v1(*controllers: str) -> None:
    """Skip unless each controller has a cgroup v1 hierarchy (what these
    cases read their files from)."""
    mounts = cgroup_mounts()
    missing = [c for c in controllers if c not in mounts]
    if missing:
        pytest.skip(f"host has no cgroup v1 hierarchy for {', '.join(missing)}")


def own_path(controller: str) -> str:
    return cgroup_membership()[controller]


def join(base: str, rel: str) -> str:
    return base.rstrip("/") + "/" + rel


@pytest.fixture
def cgroup_cleanup(runtime):
    """Directories a case expects a runtime may leave (e.g. the parent of a
    nested relative cgroupsPath): the case registers them; after the case the
    containers are force-deleted and the directories rmdir'ed (only if
    empty, deepest first)."""
    dirs: list[Path] = []
    yield dirs
    for cid in set(runtime.ids):
        runtime("delete", "--force", cid, fail_on_timeout=False)
    remove_cgroup_dirs(dirs)


def created_container(runtime, bundle) -> int:
    """Create a container whose process waits for /out/go; return its host pid."""
    bundle.mount_out().sh(WAIT_FOR_GO)
    runtime.create(bundle)
    return runtime.state(bundle.cid)["pid"]


def read(path: Path | None) -> str:
    assert path is not None
    return path.read_text().strip()


# ---------------------------------------------------------------- cgroupsPath


def test_cgroups_path_relative(runtime, bundle, cgroup_cleanup):
    """config-linux.md "Cgroups Path": "In the case of a relative path (not
    starting with /), the runtime MAY interpret the path relative to a
    runtime-determined location in the cgroups hierarchy." The location is
    the runtime's choice; runc (and pyoci, which follows it) use the calling
    process's own cgroup, so the container's memory and pids cgroups are
    <caller's cgroup>/<cgroupsPath>."""
    need_v1("memory", "pids")
    rel = f"{bundle.cid}-parent/{bundle.cid}"
    bundle.linux["cgroupsPath"] = rel
    bundle.linux["resources"] = {"memory": {"limit": 256 * MiB}, "pids": {"limit": 100}}
    for controller, mine in cgroup_membership().items():
        parent = cgroup_dir(controller, join(mine, rel))
        if parent is not None:
            cgroup_cleanup.append(parent.parent)
    pid = created_container(runtime, bundle)
    got = cgroup_membership(pid)
    for controller in ("memory", "pids"):
        assert got[controller] == join(own_path(controller), rel), (controller, got)


def test_cgroups_path_absolute(runtime, bundle, cgroup_cleanup):
    """config-linux.md "Cgroups Path": "In the case of an absolute path
    (starting with /), the runtime MUST take the path to be relative to the
    cgroups mount point." The path is built below our own cgroup (so it is
    beneath it in every hierarchy); the container's memory and pids cgroups
    are exactly that path."""
    need_v1("memory", "pids")
    mine = cgroup_membership()
    deepest = max(mine.values(), key=len)
    if not all(p == deepest or deepest.startswith(join(p, "")) for p in mine.values()):
        pytest.skip(f"no absolute path is beneath our own cgroups in every hierarchy: {mine}")
    path = join(deepest, f"{bundle.cid}-abs/{bundle.cid}")
    # everything along the path that does not exist yet was caused by this case
    cgroup_cleanup.extend(d for d in cgroup_dirs_along(path) if not d.exists())
    bundle.linux["cgroupsPath"] = path
    bundle.linux["resources"] = {"memory": {"limit": 256 * MiB}, "pids": {"limit": 100}}
    pid = created_container(runtime, bundle)
    got = cgroup_membership(pid)
    assert got["memory"] == path, got
    assert got["pids"] == path, got
    assert read(cgroup_dir("pids", path) / "pids.max") == "100"


def test_same_cgroups_path_same_place(runtime, bundle, make_extra_bundle):
    """config-linux.md "Cgroups Path": "If the value is specified, the runtime
    MUST consistently attach to the same place in the cgroups hierarchy given
    the same value of cgroupsPath." Two containers, one after the other, with
    the same value land in the same cgroups."""
    need_v1("memory", "pids")
    rel = f"{bundle.cid}-same"
    places = []
    for b in (bundle, make_extra_bundle()):
        b.linux["cgroupsPath"] = rel
        b.linux["resources"] = {"pids": {"limit": 50}}
        pid = created_container(runtime, b)
        got = cgroup_membership(pid)
        places.append((got["memory"], got["pids"]))
        runtime.delete(b.cid, force=True)
    assert places[0] == places[1], places
    assert places[0][1].endswith("/" + rel), places


def test_container_processes_are_in_the_cgroup(runtime, bundle):
    """config-linux.md "Control groups": cgroups "are used to restrict
    resource usage for a container" -- the container process and the
    processes it forks are members (cgroup.procs) of the container's cgroup,
    and nothing else is."""
    need_v1("pids")
    bundle.linux["resources"] = {"pids": {"limit": 20}}
    bundle.mount_out().sh("sleep 300 & echo $! > /out/child; wait")
    runtime.create(bundle)
    runtime.start(bundle.cid)
    assert wait_until(lambda: (bundle.out / "child").exists()
                      and (bundle.out / "child").read_text().strip())
    pid = runtime.state(bundle.cid)["pid"]
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    directory = process_cgroup_dir(pid, "pids")
    assert directory != process_cgroup_dir(os.getpid(), "pids"), "container shares our cgroup"
    members = {int(p) for p in read(directory / "cgroup.procs").split()}
    assert members == {pid, *map(int, children)}, (members, pid, children)
    assert len(children) == 1, children


def test_delete_removes_the_cgroup(runtime, bundle):
    """runtime.md "Delete": "Deleting a container MUST delete the resources
    that were created during the create step." -- the cgroups the container
    was placed in (in every hierarchy where it got its own) are gone after
    delete."""
    need_v1("memory", "pids")
    bundle.linux["cgroupsPath"] = bundle.cid
    bundle.linux["resources"] = {"memory": {"limit": 128 * MiB}, "pids": {"limit": 30}}
    pid = created_container(runtime, bundle)
    mine = cgroup_membership()
    theirs = cgroup_membership(pid)
    made = [cgroup_dir(c, p) for c, p in theirs.items() if p != mine.get(c)]
    made = [d for d in made if d is not None]
    assert any(d.parts[-1] == bundle.cid for d in made), theirs
    assert all(d.is_dir() for d in made), made
    (bundle.out / "go").touch()
    runtime.start(bundle.cid)
    assert runtime.wait_status(bundle.cid, "stopped") == "stopped"
    runtime.delete(bundle.cid)
    left = [d for d in made if d.exists()]
    assert not left, f"cgroups left after delete: {left}"
    assert_gone(runtime, bundle.cid)


# ---------------------------------------------------------------- limits


def test_memory_limits(runtime, bundle):
    """config-linux.md "Memory": "limit (int64, OPTIONAL) - sets limit of
    memory usage", "reservation ... sets soft limit", "swap ... sets limit of
    memory+Swap usage", "swappiness", "disableOOMKiller ... To disable it,
    specify a value of true." -- seen in the container's memory cgroup (v1
    files) once create has returned."""
    need_v1("memory")
    bundle.linux["resources"] = {"memory": {
        "limit": 96 * MiB, "reservation": 48 * MiB, "swap": 192 * MiB,
        "swappiness": 17, "disableOOMKiller": True,
    }}
    pid = created_container(runtime, bundle)
    d = process_cgroup_dir(pid, "memory")
    assert d != process_cgroup_dir(os.getpid(), "memory")
    assert read(d / "memory.limit_in_bytes") == str(96 * MiB)
    assert read(d / "memory.soft_limit_in_bytes") == str(48 * MiB)
    if (d / "memory.memsw.limit_in_bytes").exists():
        assert read(d / "memory.memsw.limit_in_bytes") == str(192 * MiB)
    assert read(d / "memory.swappiness") == "17"
    assert "oom_kill_disable 1" in read(d / "memory.oom_control").splitlines()


def test_cpu_limits(runtime, bundle):
    """config-linux.md "CPU": "shares ... a relative share of CPU time",
    "quota ... the total amount of time in microseconds for which all tasks
    in a cgroup can run during one period", "period", "cpus ... list of CPUs
    the container will run in", "mems ... list of Memory Nodes" -- in the
    cpu and cpuset v1 files."""
    need_v1("cpu", "cpuset")
    mine = cgroup_dir("cpuset", own_path("cpuset"))
    cpu = read(mine / "cpuset.effective_cpus").replace("-", ",").split(",")[-1]
    mem = read(mine / "cpuset.effective_mems").replace("-", ",").split(",")[0]
    bundle.linux["resources"] = {"cpu": {
        "shares": 512, "quota": 30000, "period": 150000, "cpus": cpu, "mems": mem,
    }}
    pid = created_container(runtime, bundle)
    d = process_cgroup_dir(pid, "cpu")
    assert d != process_cgroup_dir(os.getpid(), "cpu")
    assert read(d / "cpu.shares") == "512"
    assert read(d / "cpu.cfs_quota_us") == "30000"
    assert read(d / "cpu.cfs_period_us") == "150000"
    s = process_cgroup_dir(pid, "cpuset")
    assert read(s / "cpuset.cpus") == cpu
    assert read(s / "cpuset.mems") == mem
    assert Path(f"/proc/{pid}/status").read_text().split("Cpus_allowed_list:")[1].split()[0] \
        == cpu


def test_pids_limit_enforced(runtime, bundle):
    """config-linux.md "PIDs": "limit (int64, REQUIRED) - specifies the
    maximum number of tasks in the cgroup" -- pids.max shows it, and a shell
    starting background sleeps can start no more than limit - 1 of them (it
    counts itself) before fork fails."""
    need_v1("pids")
    limit = 6
    bundle.linux["resources"] = {"pids": {"limit": limit}}
    bundle.mount_out().sh(
        "n=0; while [ $n -lt 20 ]; do sleep 30 & n=$((n+1)); echo $n > /out/started; "
        "done 2>/out/err"
    )
    runtime.create(bundle)
    pid = runtime.state(bundle.cid)["pid"]
    assert read(process_cgroup_dir(pid, "pids") / "pids.max") == str(limit)
    runtime.start(bundle.cid)
    assert runtime.wait_status(bundle.cid, "stopped") == "stopped"
    started = int((bundle.out / "started").read_text())
    err = (bundle.out / "err").read_text()
    assert 0 < started < limit, f"{started} background processes started under pids.max {limit}"
    assert "fork" in err, err


def root_disk() -> tuple[int, int] | None:
    """major, minor of a whole disk with a request queue (not loop/ram/zram)."""
    for entry in sorted(Path("/sys/block").iterdir()):
        if entry.name.startswith(("loop", "ram", "zram", "nbd", "sr", "dm-", "md")):
            continue
        try:
            if int((entry / "size").read_text()) == 0:
                continue
            major, minor = (entry / "dev").read_text().strip().split(":")
        except (OSError, ValueError):
            continue
        return int(major), int(minor)
    return None


def test_blockio_throttle(runtime, bundle):
    """config-linux.md "Block IO": "throttleReadBpsDevice,
    throttleWriteBpsDevice ... an array of per-device bandwidth rate limits",
    "throttleReadIOPSDevice, throttleWriteIOPSDevice ... an array of
    per-device IO rate limits" -- in the blkio.throttle.* v1 files."""
    need_v1("blkio")
    disk = root_disk()
    if disk is None:
        pytest.skip("no whole disk to throttle")
    major, minor = disk
    dev = {"major": major, "minor": minor}
    bundle.linux["resources"] = {"blockIO": {
        "throttleReadBpsDevice": [{**dev, "rate": 10 * MiB}],
        "throttleWriteBpsDevice": [{**dev, "rate": 5 * MiB}],
        "throttleReadIOPSDevice": [{**dev, "rate": 1000}],
        "throttleWriteIOPSDevice": [{**dev, "rate": 500}],
    }}
    pid = created_container(runtime, bundle)
    d = process_cgroup_dir(pid, "blkio")
    assert d != process_cgroup_dir(os.getpid(), "blkio")
    key = f"{major}:{minor}"
    assert read(d / "blkio.throttle.read_bps_device") == f"{key} {10 * MiB}"
    assert read(d / "blkio.throttle.write_bps_device") == f"{key} {5 * MiB}"
    assert read(d / "blkio.throttle.read_iops_device") == f"{key} 1000"
    assert read(d / "blkio.throttle.write_iops_device") == f"{key} 500"


def test_blockio_weight(runtime, bundle):
    """config-linux.md "Block IO": "weight (uint16, OPTIONAL) - specifies
    per-cgroup weight." (blkio.weight, or blkio.bfq.weight where BFQ is the
    only proportional policy)."""
    need_v1("blkio")
    mine = cgroup_dir("blkio", own_path("blkio"))
    names = [n for n in ("blkio.weight", "blkio.bfq.weight") if (mine / n).exists()]
    if not names:
        pytest.skip("the host's blkio controller has no weight file (no CFQ/BFQ policy)")
    bundle.linux["resources"] = {"blockIO": {"weight": 321}}
    pid = created_container(runtime, bundle)
    d = process_cgroup_dir(pid, "blkio")
    values = [read(d / n).split()[-1] for n in names]
    assert "321" in values, dict(zip(names, values, strict=True))


# ---------------------------------------------------------------- devices


def device_probe(path: str, major: int, minor: int) -> str:
    """Shell: mknod the node (the devices controller may refuse that too),
    then, if it is a character device, try opening it read-only and
    write-only, each in a subshell (a failed redirection of ``exec`` ends
    the shell); prints PATH:r=ok / PATH:w=ok, errors go to /out/err."""
    return (
        f"mknod {path} c {major} {minor} 2>>/out/err; "
        f"if [ -c {path} ]; then "
        f"(exec 3<{path}) 2>>/out/err && echo {path}:r=ok; "
        f"(exec 4>{path}) 2>>/out/err && echo {path}:w=ok; fi; "
    )


FUSE = (10, 229)       # not among runc's default allowed devices; open is harmless
LOOP_CONTROL = (10, 237)  # idem


def test_device_allow_list(runtime, bundle):
    """config-linux.md "Allowed Device list": "devices (array of objects,
    OPTIONAL) configures the allowed device list." With everything denied
    but /dev/fuse, a loop-control node made inside the container (which has
    CAP_MKNOD) cannot be opened (EPERM from the devices controller), while
    a fuse node can."""
    need_v1("devices")
    for name in ("/dev/fuse", "/dev/loop-control"):
        if not Path(name).exists():
            pytest.skip(f"host has no {name}")
    caps = ["CAP_MKNOD", "CAP_KILL"]
    bundle.config["process"]["capabilities"] = {
        k: caps for k in ("bounding", "effective", "permitted")
    }
    bundle.linux["resources"] = {"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": FUSE[0], "minor": FUSE[1], "access": "rwm"},
    ]}
    bundle.mount_out()
    bundle.sh(device_probe("/dev/conf-fuse", *FUSE)
              + device_probe("/dev/conf-loopctl", *LOOP_CONTROL) + "true")
    res = runtime.run(bundle)
    assert res.rc == 0, str(res)
    lines = res.out.split()
    err = (bundle.out / "err").read_text() if (bundle.out / "err").exists() else ""
    assert "/dev/conf-fuse:r=ok" in lines and "/dev/conf-fuse:w=ok" in lines, (res.out, err)
    assert not any(ln.startswith("/dev/conf-loopctl") for ln in lines), (res.out, err)
    assert "Operation not permitted" in err, err


def test_device_rules_applied_in_order(runtime, bundle):
    """config-linux.md "Allowed Device list": "The runtime MUST apply entries
    in the listed order." -- allow c 10:229 rwm, then deny its r: the node
    opens for writing but not for reading (in the reverse order it would
    open for both)."""
    need_v1("devices")
    if not Path("/dev/fuse").exists():
        pytest.skip("host has no /dev/fuse")
    caps = ["CAP_MKNOD", "CAP_KILL"]
    bundle.config["process"]["capabilities"] = {
        k: caps for k in ("bounding", "effective", "permitted")
    }
    fuse = {"type": "c", "major": FUSE[0], "minor": FUSE[1]}
    bundle.linux["resources"] = {"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, **fuse, "access": "rwm"},
        {"allow": False, **fuse, "access": "r"},
    ]}
    bundle.mount_out().sh(device_probe("/dev/conf-fuse", *FUSE) + "true")
    res = runtime.run(bundle)
    assert res.rc == 0, str(res)
    err = (bundle.out / "err").read_text() if (bundle.out / "err").exists() else ""
    assert res.out.split() == ["/dev/conf-fuse:w=ok"], (res.out, err)
    assert "Operation not permitted" in err, err


# ---------------------------------------------------------------- unified


def test_unified_for_absent_controller_fails(runtime, bundle):
    """config-linux.md "Unified": "The runtime MUST generate an error when
    the configuration refers to a cgroup controller that is not present or
    that cannot be enabled." -- a key of a made-up controller."""
    bundle.linux["resources"] = {"unified": {"conformancebogus.max": "1"}}
    res = runtime.create(bundle, check=False)
    assert not res.ok, f"unified entry for a missing controller accepted\n{res}"
    assert_gone(runtime, bundle.cid)


# ---------------------------------------------------------------- runc CLI
# runtime.md "Operations": the spec has no pause/resume/ps/update/events; these
# cases pin down runc's commands (their JSON and their effect on cgroups),
# which pyoci mirrors.


def counter_script() -> str:
    return ("i=0; while :; do i=$((i+1)); echo $i > /out/n.tmp; mv /out/n.tmp /out/n; "
            "sleep 0.02; done")


def count(bundle) -> int:
    try:
        return int((bundle.out / "n").read_text() or 0)
    except (OSError, ValueError):
        return 0


def test_pause_and_resume(runtime, bundle):
    """runc CLI: ``pause ID`` freezes every process of a running container
    (status "paused", freezer FROZEN, a counter stops); ``resume ID`` thaws
    them (status "running", the counter moves on)."""
    need_v1("freezer")
    bundle.mount_out().sh(counter_script())
    runtime.create(bundle)
    runtime.start(bundle.cid)
    assert wait_until(lambda: count(bundle) > 3)
    pid = runtime.state(bundle.cid)["pid"]
    res = runtime("pause", bundle.cid)
    assert res.ok, str(res)
    assert runtime.state(bundle.cid)["status"] == "paused"
    freezer = process_cgroup_dir(pid, "freezer")
    assert freezer != process_cgroup_dir(os.getpid(), "freezer")
    assert read(freezer / "freezer.state") == "FROZEN"
    frozen_at = count(bundle)
    time.sleep(0.5)
    assert count(bundle) == frozen_at, "the counter moved while paused"
    res = runtime("resume", bundle.cid)
    assert res.ok, str(res)
    assert runtime.state(bundle.cid)["status"] == "running"
    assert read(freezer / "freezer.state") == "THAWED"
    assert wait_until(lambda: count(bundle) > frozen_at + 3), "the counter did not resume"


def test_ps_json_lists_container_pids(runtime, bundle):
    """runc CLI: ``ps --format json ID`` prints a JSON array of the host pids
    of the container's processes (the container process and its children)."""
    bundle.mount_out().sh("sleep 300 & echo $! > /out/child; wait")
    runtime.create(bundle)
    runtime.start(bundle.cid)
    assert wait_until(lambda: (bundle.out / "child").exists()
                      and (bundle.out / "child").read_text().strip())
    pid = runtime.state(bundle.cid)["pid"]
    children = {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    res = runtime("ps", "--format", "json", bundle.cid)
    assert res.ok, str(res)
    pids = json.loads(res.out)
    assert isinstance(pids, list) and all(isinstance(p, int) for p in pids), res.out
    assert set(pids) == {pid, *children}, (pids, pid, children)


def test_update_changes_limits(runtime, bundle, tmp_path):
    """runc CLI: ``update`` changes a running container's limits, from flags
    (``--pids-limit``, ``--memory``) or from a LinuxResources JSON file
    (``-r FILE``); the cgroup files show the new values."""
    need_v1("memory", "pids", "cpu")
    bundle.linux["resources"] = {"memory": {"limit": 64 * MiB}, "pids": {"limit": 20},
                                 "cpu": {"shares": 1024}}
    bundle.mount_out().sh(WAIT_FOR_GO)
    runtime.create(bundle)
    runtime.start(bundle.cid)
    pid = runtime.state(bundle.cid)["pid"]
    res = runtime("update", "--pids-limit", "42", "--memory", str(96 * MiB), bundle.cid)
    assert res.ok, str(res)
    assert read(process_cgroup_dir(pid, "pids") / "pids.max") == "42"
    assert read(process_cgroup_dir(pid, "memory") / "memory.limit_in_bytes") == str(96 * MiB)
    resources = tmp_path / "resources.json"
    resources.write_text(json.dumps({"pids": {"limit": 43}, "cpu": {"shares": 700}}))
    res = runtime("update", "-r", str(resources), bundle.cid)
    assert res.ok, str(res)
    assert read(process_cgroup_dir(pid, "pids") / "pids.max") == "43"
    assert read(process_cgroup_dir(pid, "cpu") / "cpu.shares") == "700"
    # untouched by the second update
    assert read(process_cgroup_dir(pid, "memory") / "memory.limit_in_bytes") == str(96 * MiB)


def test_events_stats(runtime, bundle):
    """runc CLI: ``events --stats ID`` prints one JSON object
    {"type": "stats", "id": ID, "data": {...}} whose pids.current counts the
    container's processes and whose memory usage is non-zero."""
    need_v1("memory", "pids")
    bundle.linux["resources"] = {"pids": {"limit": 20}}
    bundle.mount_out().sh("sleep 300 & echo up > /out/up; wait")
    runtime.create(bundle)
    runtime.start(bundle.cid)
    assert wait_until(lambda: (bundle.out / "up").exists())
    res = runtime("events", "--stats", bundle.cid)
    assert res.ok, str(res)
    event = json.loads(res.out)
    assert event["type"] == "stats" and event["id"] == bundle.cid, event
    data = event["data"]
    assert data["pids"]["current"] == 2, data["pids"]
    assert data["pids"].get("limit") == 20, data["pids"]
    assert data["memory"]["usage"]["usage"] > 0, data["memory"]
