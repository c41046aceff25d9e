"""podman 4.3 (through conmon) with runc and with pyoci: each scenario runs once per runtime
and pyoci's exit codes and output must equal runc's. podman calls the runtime with no
global flags: create (--console-socket with -t), start, exec (--tty), pause, resume,
update --resources FILE, kill, delete --force (docs/testing.md)."""

from __future__ import annotations

import re
import time

import pytest

from tests.engines.podman_engine import IMAGE, Podman
from tests.engines.support import (
    Observation,
    OciRuntime,
    Reference,
    freezer_state,
    memory_limit,
)
from tests.helpers import cgroup_dirs

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
                            "paused freezer": freezer_state(podman.container_cgroup(cid))}
        unpause = podman("unpause", name, runtime=rt)
        obs.update({"_unpause": unpause, "unpause rc": unpause.rc,
                    "unpaused status": podman.status(name, rt),
                    "unpaused freezer": freezer_state(podman.container_cgroup(cid))})
        return obs
    finally:
        _remove(podman, rt, name)


def update_memory(podman: Podman, rt: OciRuntime) -> Observation:
    """update --resources FILE (a LinuxResources JSON document podman writes)."""
    name = "pyoci-engines-update"
    cid = _start(podman, rt, name, "--memory", "64m")
    try:
        before = memory_limit(podman.container_cgroup(cid))
        res = podman("update", "--memory", "128m", name, runtime=rt)
        return {"limit before": before, "_update": res, "update rc": res.rc,
                "limit after": memory_limit(podman.container_cgroup(cid)),
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
    # v1 files first (this machine kind is hybrid), else cgroup2's
    "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; "
    "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; "
    "ulimit -n; ulimit -u")


def restricted(podman: Podman, rt: OciRuntime) -> Observation:
    res = podman.run(rt, "--rm", "--read-only", "--cap-drop", "ALL", "--user", "1000:1000",
                     "--memory", "64m", "--pids-limit", "50", IMAGE, "sh", "-c",
                     RESTRICTED_SCRIPT)
    return {"run": res}


def _error_class(stderr: str) -> str:
    """Which of its OCI error kinds podman recognised in the runtime's message."""
    if "attempted to invoke a command that was not found" in stderr:
        return "not found"
    if "OCI permission denied" in stderr:
        return "permission denied"
    return "generic"


def failing_create(podman: Podman, rt: OciRuntime) -> Observation:
    """podman turns the runtime's create error into its exit status by the message's
    wording, as runc words it: "no such file or directory" / "executable file not found
    in $PATH" -> 127, "permission denied" -> 126. After a failed create it cleans up with
    `delete --force`, which must not fail for a container the runtime never made."""
    obs: Observation = {}
    for label, program in (("absolute missing", "/nonexistent"),
                           ("missing in PATH", "nonexistent"),
                           ("not executable", "/etc/passwd")):
        res = podman.run(rt, "--rm", IMAGE, program)
        obs[f"_{label}"] = res
        obs[f"{label} rc"] = res.rc
        obs[f"{label} names the program"] = program in res.stderr
        obs[f"{label} podman's class"] = _error_class(res.stderr)
        obs[f"{label} cleanup complained"] = "after creation failed" in res.stderr
    obs["containers left"] = podman.ids()
    return obs


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


def test_failing_create_exit_status(podman: Podman, oci_runtime: OciRuntime,
                                    reference: Reference) -> None:
    obs = failing_create(podman, oci_runtime)
    details = "\n".join(v.describe() for k, v in obs.items() if k.startswith("_"))
    want: dict[str, object] = {}
    for label, rc, kind in (("absolute missing", 127, "not found"),
                            ("missing in PATH", 127, "not found"),
                            ("not executable", 126, "permission denied")):
        want.update({f"{label} rc": rc, f"{label} names the program": True,
                     f"{label} podman's class": kind, f"{label} cleanup complained": False})
    assert {k: obs[k] for k in want} == want, details
    assert obs["containers left"] == []
    reference.compare("podman failing create", oci_runtime, obs,
                      lambda rt: failing_create(podman, rt))
