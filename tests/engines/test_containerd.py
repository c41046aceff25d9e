"""containerd 1.6 (ctr, shim v2) with runc and with pyoci: each scenario runs once per
runtime and pyoci's exit codes and output must equal runc's. The shim calls the runtime as
`--root DIR --log BUNDLE/log.json --log-format json <command>`: create, start, exec
--process FILE --detach, ps --format json, pause, resume, kill, delete (docs/testing.md)."""

from __future__ import annotations

import pytest

from tests.engines.containerd_engine import Containerd, exit_code_of_rm
from tests.engines.support import (
    Observation,
    OciRuntime,
    Reference,
    cgroup_procs,
    freezer_state,
    wait_for,
)
from tests.helpers import cgroup_dirs

pytestmark = [pytest.mark.integration, pytest.mark.engines]

# pid 1 is sh waiting on a child; SIGTERM (trapped) ends it with status 7.
SERVE = 'trap "exit 7" TERM; sleep 100000 & wait'


def _start(ctrd: Containerd, rt: OciRuntime, cid: str) -> None:
    res = ctrd.run(rt, cid, "sh", "-c", SERVE, detach=True)
    assert res.rc == 0, (f"{rt.name}: ctr run -d failed\n{res.describe()}\n"
                         f"containerd log:\n{ctrd.log_tail()}")
    assert wait_for(lambda: ctrd.task_status(cid) == "RUNNING", 10), ctrd.tasks()


def _remove(ctrd: Containerd, cid: str) -> None:
    if ctrd.task_status(cid) not in ("STOPPED", "absent"):
        ctrd.ctr("task", "kill", "--signal", "SIGKILL", cid)
        wait_for(lambda: ctrd.task_status(cid) in ("STOPPED", "absent"), 10)
    ctrd.ctr("task", "rm", "--force", cid)
    ctrd.ctr("containers", "rm", cid)


def _runtime_log(ctrd: Containerd, cid: str) -> str:
    return f"runtime --log of {cid}:\n{ctrd.runtime_log(cid)[-3000:]}"


def _freezer(ctrd: Containerd, cid: str) -> str:
    return freezer_state(ctrd.container_cgroup(cid))


def _left(ctrd: Containerd, rt: OciRuntime, cid: str) -> Observation:
    """What must be gone after the container is: ctr's record, the runtime's state dir,
    the cgroup in every hierarchy."""
    return {"containers left": ctrd.containers(),
            "runtime state left": (ctrd.runtime_state(rt) / cid).exists(),
            "cgroups left": [str(d) for d in cgroup_dirs(ctrd.container_cgroup(cid))
                             if d.exists()]}


# --- scenarios -----------------------------------------------------------------------------

def run_rm(ctrd: Containerd, rt: OciRuntime) -> Observation:
    cid = "pyoci-run"
    res = ctrd.run(rt, cid, "sh", "-c", "echo hi; exit 3")
    return {"run": res, **_left(ctrd, rt, cid)}


def task_exec(ctrd: Containerd, rt: OciRuntime) -> Observation:
    cid = "pyoci-exec"
    _start(ctrd, rt, cid)
    try:
        obs: Observation = {
            "exec": ctrd.ctr("task", "exec", "--fifo-dir", str(ctrd.fifo_dir), "--exec-id",
                             "e1", cid, "sh", "-c", "echo hi; exit 5"),
            "exec --cwd --user": ctrd.ctr("task", "exec", "--fifo-dir", str(ctrd.fifo_dir),
                                          "--exec-id", "e2", "--cwd", "/tmp", "--user", "1000",
                                          cid, "sh", "-c", 'echo "$(id -u) $(pwd)"'),
            "exec missing": ctrd.ctr("task", "exec", "--fifo-dir", str(ctrd.fifo_dir),
                                     "--exec-id", "e3", cid, "/nonexistent").rc != 0,
            "status": ctrd.task_status(cid),
        }
        obs["_log"] = _runtime_log(ctrd, cid)
        return obs
    finally:
        _remove(ctrd, cid)


def task_ps(ctrd: Containerd, rt: OciRuntime) -> Observation:
    """`ps --format json`: the pids in the container's cgroup, as the host sees them."""
    cid = "pyoci-ps"
    _start(ctrd, rt, cid)
    try:
        res = ctrd.ctr("task", "ps", cid)
        rows = [line.split()[0] for line in res.stdout.splitlines()[1:] if line.strip()]
        init = ctrd.tasks()[cid][0]
        in_cgroup = cgroup_procs(ctrd.container_cgroup(cid))
        return {"ps rc": res.rc, "_ps": res, "process count": len(rows),
                "init listed": str(init) in rows,
                "same as cgroup.procs": sorted(rows) == in_cgroup,
                "_log": _runtime_log(ctrd, cid)}
    finally:
        _remove(ctrd, cid)


def pause_resume(ctrd: Containerd, rt: OciRuntime) -> Observation:
    cid = "pyoci-pause"
    _start(ctrd, rt, cid)
    try:
        obs: Observation = {"pause": ctrd.ctr("task", "pause", cid),
                            "paused status": ctrd.task_status(cid),
                            "paused freezer": _freezer(ctrd, cid)}
        obs.update({"resume": ctrd.ctr("task", "resume", cid),
                    "resumed status": ctrd.task_status(cid),
                    "resumed freezer": _freezer(ctrd, cid),
                    "_log": _runtime_log(ctrd, cid)})
        return obs
    finally:
        _remove(ctrd, cid)


def kill_rm(ctrd: Containerd, rt: OciRuntime) -> Observation:
    """task kill (SIGTERM, as `kill ID 15`), then task rm (`delete ID`), container rm."""
    cid = "pyoci-kill"
    _start(ctrd, rt, cid)
    try:
        log = _runtime_log(ctrd, cid)
        kill = ctrd.ctr("task", "kill", cid)
        stopped = wait_for(lambda: ctrd.task_status(cid) == "STOPPED", 15)
        rm = ctrd.ctr("task", "rm", cid)
        crm = ctrd.ctr("containers", "rm", cid)
        return {"kill": kill, "stopped": stopped, "task rm rc": rm.rc, "_task rm": rm,
                "exit status": exit_code_of_rm(rm), "containers rm": crm,
                **_left(ctrd, rt, cid), "_log": log}
    finally:
        _remove(ctrd, cid)


def failing_create(ctrd: Containerd, rt: OciRuntime) -> Observation:
    cid = "pyoci-fail"
    res = ctrd.run(rt, cid, "/nonexistent")
    return {"run": res, "message names the program": "/nonexistent" in res.stderr,
            "from the runtime": "OCI runtime create failed" in res.stderr,
            **_left(ctrd, rt, cid)}


LIMITS_SCRIPT = ("touch /x 2>/dev/null; echo root-write=$?; touch /dev/shm/y; echo shm-write=$?; "
                 "grep -E '^Cap(Eff|Bnd)' /proc/self/status")


def limits_inside(ctrd: Containerd, rt: OciRuntime) -> Observation:
    """--read-only --memory-limit --cap-drop, as the process sees them (ctr's spec mounts
    no cgroupfs: the memory limit is only checked to be accepted)."""
    cid = "pyoci-limits"
    res = ctrd.run(rt, cid, "sh", "-c", LIMITS_SCRIPT,
                   opts=("--read-only", "--memory-limit", str(64 << 20),
                         "--cap-drop", "CAP_SYS_CHROOT"))
    return {"run": res, **_left(ctrd, rt, cid)}


NOTHING_LEFT = {"containers left": [], "runtime state left": False, "cgroups left": []}


def _assert_nothing_left(obs: Observation) -> None:
    assert {k: obs[k] for k in NOTHING_LEFT} == NOTHING_LEFT


# --- tests ---------------------------------------------------------------------------------

def test_run_rm_output_and_exit_status(containerd: Containerd, oci_runtime: OciRuntime,
                                       reference: Reference) -> None:
    obs = run_rm(containerd, oci_runtime)
    res = obs["run"]
    assert res.observed() == (3, "hi\n"), res.describe() + "\n" + containerd.log_tail()
    _assert_nothing_left(obs)
    reference.compare("ctr run --rm", oci_runtime, obs, lambda rt: run_rm(containerd, rt))


def test_task_exec(containerd: Containerd, oci_runtime: OciRuntime,
                   reference: Reference) -> None:
    obs = task_exec(containerd, oci_runtime)
    assert obs["exec"].observed() == (5, "hi\n"), obs["exec"].describe() + obs["_log"]
    other = obs["exec --cwd --user"]
    assert other.observed() == (0, "1000 /tmp\n"), other.describe() + obs["_log"]
    assert obs["exec missing"] is True
    assert obs["status"] == "RUNNING"
    reference.compare("ctr task exec", oci_runtime, obs, lambda rt: task_exec(containerd, rt))


def test_task_ps(containerd: Containerd, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = task_ps(containerd, oci_runtime)
    assert obs["ps rc"] == 0, obs["_ps"].describe() + obs["_log"]
    assert obs["process count"] == 2, obs["_ps"].describe()  # sh and its sleep
    assert obs["init listed"] and obs["same as cgroup.procs"], obs["_ps"].describe()
    reference.compare("ctr task ps", oci_runtime, obs, lambda rt: task_ps(containerd, rt))


def test_task_pause_resume(containerd: Containerd, oci_runtime: OciRuntime,
                           reference: Reference) -> None:
    obs = pause_resume(containerd, oci_runtime)
    assert obs["pause"].rc == 0, obs["pause"].describe() + obs["_log"]
    assert (obs["paused status"], obs["paused freezer"]) == ("PAUSED", "FROZEN")
    assert obs["resume"].rc == 0, obs["resume"].describe() + obs["_log"]
    assert (obs["resumed status"], obs["resumed freezer"]) == ("RUNNING", "THAWED")
    reference.compare("ctr task pause", oci_runtime, obs,
                      lambda rt: pause_resume(containerd, rt))


def test_task_kill_rm(containerd: Containerd, oci_runtime: OciRuntime,
                      reference: Reference) -> None:
    obs = kill_rm(containerd, oci_runtime)
    assert obs["kill"].rc == 0, obs["kill"].describe() + obs["_log"]
    assert obs["stopped"] is True, "SIGTERM did not stop the task"
    assert obs["task rm rc"] == 0, obs["_task rm"].describe()
    assert obs["exit status"] == 7, obs["_task rm"].describe()
    assert obs["containers rm"].rc == 0, obs["containers rm"].describe()
    _assert_nothing_left(obs)
    reference.compare("ctr task kill/rm", oci_runtime, obs, lambda rt: kill_rm(containerd, rt))


def test_failing_create_shows_runtime_error(containerd: Containerd, oci_runtime: OciRuntime,
                                            reference: Reference) -> None:
    """The shim reads the runtime's --log file to report a failed create: an error that
    is only on the runtime's stderr reaches nobody."""
    obs = failing_create(containerd, oci_runtime)
    res = obs["run"]
    assert res.rc != 0 and res.stdout == "", res.describe()
    assert obs["from the runtime"] and obs["message names the program"], res.describe()
    _assert_nothing_left(obs)
    reference.compare("ctr run (failing create)", oci_runtime, obs,
                      lambda rt: failing_create(containerd, rt))


def test_limits_seen_inside(containerd: Containerd, oci_runtime: OciRuntime,
                            reference: Reference) -> None:
    obs = limits_inside(containerd, oci_runtime)
    res = obs["run"]
    assert res.rc == 0, res.describe()
    lines = res.stdout.splitlines()
    assert "root-write=1" in lines and "shm-write=0" in lines, res.describe()
    caps = {ln.split()[0]: int(ln.split()[1], 16) for ln in lines if ln.startswith("Cap")}
    sys_chroot = 1 << 18
    assert set(caps) == {"CapEff:", "CapBnd:"} and not any(v & sys_chroot for v in caps.values()), (
        res.describe())
    _assert_nothing_left(obs)
    reference.compare("ctr run limits", oci_runtime, obs, lambda rt: limits_inside(containerd, rt))
