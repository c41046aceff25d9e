"""podman 4.3 (through conmon) with runc and with pyoci: each scenario runs once per runtime
and pyoci's exit codes and output must equal runc's. podman calls the runtime with no
global flags: create (--console-socket with -t), start, exec (--tty), pause, resume,
update --resources FILE, kill, delete --force (docs/testing.md)."""

from __future__ import annotations

import re
import time

import pytest

from tests.engines.podman_engine import IMAGE, Podman
from tests.engines.support import Observation, OciRuntime, Reference
from tests.helpers import cgroup_dir, cgroup_dirs

pytestmark = [pytest.mark.integration, pytest.mark.engines]

# A pid 1 that ends on SIGTERM (pid 1 has no default action for it): `podman stop`
# then finishes without its 10 s SIGKILL fallback.
SERVE = 'trap "exit 0" TERM; while :; do sleep 0.1; done'


def _start(podman: Podman, rt: OciRuntime, name: str, *opts: str) -> str:
    res = podman.run(rt, "--detach", "--name", name, *opts, IMAGE, "sh", "-c", SERVE)
    assert res.rc == 0, f"{rt.name}: detached run failed\n{res.describe()}"
    return res.stdout.strip()


def _remove(podman: Podman, rt: OciRuntime, name: str) -> None:
    podman("rm", "--force", "--ignore", "--time", "0", name, runtime=rt)


def _cgroup_file(podman: Podman, cid: str, controller: str, name: str) -> str:
    try:
        return (cgroup_dir(podman.container_cgroup(cid), controller) / name).read_text().strip()
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


# --- scenarios: each returns what the user saw, keyed by step ----------------------------

def run_rm(podman: Podman, rt: OciRuntime) -> Observation:
    res = podman.run(rt, "--rm", IMAGE, "sh", "-c", "echo hi; exit 3")
    return {"run": res, "containers left": podman.ids()}


def run_tty(podman: Podman, rt: OciRuntime) -> Observation:
    """-t: conmon passes --console-socket and expects the pty master on it."""
    res = podman.run(rt, "--rm", "--tty", IMAGE, "sh", "-c", "tty; echo hi; exit 3")
    return {"run -t": res}


def exec_(podman: Podman, rt: OciRuntime) -> Observation:
    """exec --process FILE --detach: status, user, env and cwd from the process file."""
    name = "pyoci-engines-exec"
    _start(podman, rt, name)
    try:
        return {
            "exec": podman("exec", name, "sh", "-c", "echo hi; exit 5", runtime=rt),
            "exec --user": podman("exec", "--user", "1000:1000", name, "id", "-u", runtime=rt),
            "exec -e -w": podman("exec", "--env", "FOO=bar", "--workdir", "/tmp", name,
                                 "sh", "-c", 'echo "$FOO $(pwd)"', runtime=rt),
            "exec missing": podman("exec", name, "/nonexistent", runtime=rt).rc != 0,
            "still running": podman.status(name, rt),
        }
    finally:
        _remove(podman, rt, name)


def exec_tty(podman: Podman, rt: OciRuntime) -> Observation:
    name = "pyoci-engines-exec-tty"
    _start(podman, rt, name)
    try:
        return {"exec -t": podman("exec", "--tty", name, "sh", "-c", "tty; exit 4", runtime=rt)}
    finally:
        _remove(podman, rt, name)


def pause_unpause(podman: Podman, rt: OciRuntime) -> Observation:
    name = "pyoci-engines-pause"
    cid = _start(podman, rt, name)
    try:
        pause = podman("pause", name, runtime=rt)
        obs: Observation = {"_pause": pause, "pause rc": pause.rc,
                            "paused status": podman.status(name, rt),
                            "paused freezer": _cgroup_file(podman, cid, "freezer",
                                                           "freezer.state")}
        unpause = podman("unpause", name, runtime=rt)
        obs.update({"_unpause": unpause, "unpause rc": unpause.rc,
                    "unpaused status": podman.status(name, rt),
                    "unpaused freezer": _cgroup_file(podman, cid, "freezer", "freezer.state")})
        return obs
    finally:
        _remove(podman, rt, name)


def update_memory(podman: Podman, rt: OciRuntime) -> Observation:
    """update --resources FILE (a LinuxResources JSON document podman writes)."""
    name = "pyoci-engines-update"
    cid = _start(podman, rt, name, "--memory", "64m")
    try:
        before = _cgroup_file(podman, cid, "memory", "memory.limit_in_bytes")
        res = podman("update", "--memory", "128m", name, runtime=rt)
        return {"limit before": before, "_update": res, "update rc": res.rc,
                "limit after": _cgroup_file(podman, cid, "memory", "memory.limit_in_bytes"),
                "status": podman.status(name, rt)}
    finally:
        _remove(podman, rt, name)


def stop_rm(podman: Podman, rt: OciRuntime) -> Observation:
    """stop = kill ID 15 (then 9 after --time), then rm = delete --force."""
    name = "pyoci-engines-stop"
    cid = _start(podman, rt, name)
    state_dir = rt.default_root / cid
    try:
        t0 = time.monotonic()
        stop = podman("stop", "--time", "10", name, runtime=rt)
        took = time.monotonic() - t0
        obs: Observation = {"stop": stop, "stopped by SIGTERM": took < 8,
                            "status": podman.status(name, rt)}
        obs["rm"] = podman("rm", name, runtime=rt)
        obs["containers left"] = podman.ids()
        obs["cgroups left"] = [str(d) for d in cgroup_dirs(podman.container_cgroup(cid))
                               if d.exists()]
        obs["runtime state left"] = state_dir.exists()
        return obs
    finally:
        _remove(podman, rt, name)


RESTRICTED_SCRIPT = (
    "id; touch /x 2>/dev/null; echo root-write=$?; touch /tmp/y; echo tmp-write=$?; "
    'grep -E "^(Cap|NoNewPrivs)" /proc/self/status; '
    "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; "
    "ulimit -n; ulimit -u")


def restricted(podman: Podman, rt: OciRuntime) -> Observation:
    res = podman.run(rt, "--rm", "--read-only", "--cap-drop", "ALL", "--user", "1000:1000",
                     "--memory", "64m", "--pids-limit", "50", IMAGE, "sh", "-c",
                     RESTRICTED_SCRIPT)
    return {"run": res}


# --- tests ---------------------------------------------------------------------------------

def test_run_rm_output_and_exit_status(podman: Podman, oci_runtime: OciRuntime,
                                       reference: Reference) -> None:
    obs = run_rm(podman, oci_runtime)
    res = obs["run"]
    assert res.observed() == (3, "hi\n"), res.describe()
    assert obs["containers left"] == []
    reference.compare("podman run --rm", oci_runtime, obs, lambda rt: run_rm(podman, rt))


def test_run_tty(podman: Podman, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = run_tty(podman, oci_runtime)
    res = obs["run -t"]
    assert res.rc == 3, res.describe()
    assert re.fullmatch(r"/dev/pts/\d+\r\nhi\r\n", res.stdout), res.describe()
    reference.compare("podman run -t", oci_runtime, obs, lambda rt: run_tty(podman, rt))


def test_exec(podman: Podman, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = exec_(podman, oci_runtime)
    assert obs["exec"].observed() == (5, "hi\n"), obs["exec"].describe()
    assert obs["exec --user"].observed() == (0, "1000\n"), obs["exec --user"].describe()
    assert obs["exec -e -w"].observed() == (0, "bar /tmp\n"), obs["exec -e -w"].describe()
    assert obs["exec missing"] is True
    assert obs["still running"] == "running 0"
    reference.compare("podman exec", oci_runtime, obs, lambda rt: exec_(podman, rt))


def test_exec_tty(podman: Podman, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = exec_tty(podman, oci_runtime)
    res = obs["exec -t"]
    assert res.rc == 4, res.describe()
    assert re.fullmatch(r"/dev/pts/\d+\r\n", res.stdout), res.describe()
    reference.compare("podman exec -t", oci_runtime, obs, lambda rt: exec_tty(podman, rt))


def test_pause_unpause(podman: Podman, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = pause_unpause(podman, oci_runtime)
    assert obs["pause rc"] == 0, obs["_pause"].describe()
    assert (obs["paused status"], obs["paused freezer"]) == ("paused 0", "FROZEN")
    assert obs["unpause rc"] == 0, obs["_unpause"].describe()
    assert (obs["unpaused status"], obs["unpaused freezer"]) == ("running 0", "THAWED")
    reference.compare("podman pause", oci_runtime, obs, lambda rt: pause_unpause(podman, rt))


def test_update_memory(podman: Podman, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = update_memory(podman, oci_runtime)
    assert obs["update rc"] == 0, obs["_update"].describe()
    assert (obs["limit before"], obs["limit after"]) == (str(64 << 20), str(128 << 20))
    assert obs["status"] == "running 0"
    reference.compare("podman update", oci_runtime, obs, lambda rt: update_memory(podman, rt))


def test_stop_rm(podman: Podman, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = stop_rm(podman, oci_runtime)
    assert obs["stop"].rc == 0, obs["stop"].describe()
    assert obs["stopped by SIGTERM"], "stop needed the SIGKILL fallback"
    assert obs["status"] == "exited 0"
    assert obs["rm"].rc == 0, obs["rm"].describe()
    assert obs["containers left"] == [] and obs["cgroups left"] == []
    assert obs["runtime state left"] is False
    reference.compare("podman stop/rm", oci_runtime, obs, lambda rt: stop_rm(podman, rt))


def test_restricted_container(podman: Podman, oci_runtime: OciRuntime,
                              reference: Reference) -> None:
    """--read-only --cap-drop ALL --user 1000:1000 --memory 64m --pids-limit 50: what the
    process sees from inside (ids, a read-only root with a writable /tmp, no capabilities,
    its own cgroup's limits through the /sys/fs/cgroup mount, podman's rlimits)."""
    obs = restricted(podman, oci_runtime)
    res = obs["run"]
    assert res.rc == 0, res.describe()
    lines = res.stdout.splitlines()
    assert lines[0].startswith("uid=1000") and "gid=1000" in lines[0], res.describe()
    assert "root-write=1" in lines and "tmp-write=0" in lines, res.describe()
    caps = [ln.split()[1] for ln in lines if ln.startswith("Cap")]
    assert caps == ["0000000000000000"] * 5, res.describe()
    assert str(64 << 20) in lines and "50" in lines, res.describe()
    reference.compare("podman restricted", oci_runtime, obs, lambda rt: restricted(podman, rt))
