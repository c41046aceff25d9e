"""podman 4.3 (through conmon) with runc and with pyoci: each scenario runs once per runtime
and pyoci's exit codes and output must equal runc's. podman calls the runtime with no
global flags: create (--console-socket with -t), start, exec (--tty), pause, resume,
update --resources FILE, kill, delete --force (docs/testing.md)."""

from __future__ import annotations

import os
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
    wait_for,
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


# --- pods, play kube, user namespaces, the process group (issue 12) -----------------------

NAMESPACES = ("pid", "ipc", "uts", "net")
SHOW_NS = "; ".join(f"readlink /proc/self/ns/{ns}" for ns in NAMESPACES)


def pod(podman: Podman, rt: OciRuntime) -> Observation:
    """A pod: the infra container (catatonit) owns the pid, ipc, uts and net namespaces;
    the pod's containers join them by path (config.json namespaces[].path =
    /proc/INFRA_PID/ns/...), so they see each other's processes and one hostname."""
    name = "pyoci-pod"
    res = podman("pod", "create", "--name", name, "--network", "none",
                 "--share", ",".join(NAMESPACES), "--cgroup-parent", podman.cgroup_parent,
                 runtime=rt)
    assert res.rc == 0, res.describe()
    obs: Observation = {}
    try:
        obs["pod start"] = podman("pod", "start", name, runtime=rt).rc
        infra = podman.pid(f"{res.stdout.strip()[:12]}-infra")
        host_ns = [os.readlink(f"/proc/{infra}/ns/{ns}") for ns in NAMESPACES] if infra else []
        obs["run -d in pod"] = podman("run", "--detach", "--pod", name, "--name",
                                      "pyoci-pod-a", "--pull", "never", IMAGE, "sh", "-c",
                                      SERVE, runtime=rt).rc
        seen = podman("run", "--rm", "--pod", name, "--pull", "never", IMAGE, "sh", "-c",
                      f"ps -o comm | sort -u | tr '\\n' ' '; echo; hostname; {SHOW_NS}",
                      runtime=rt)
        lines = seen.stdout.splitlines()
        obs["_run in pod"] = seen
        obs["run in pod rc"] = seen.rc
        # the infra's catatonit and the other container's sleep loop (which of the
        # pipeline's own processes ps catches varies)
        obs["sees infra and neighbour"] = bool(lines) and {"catatonit", "sleep"} <= set(
            lines[0].split())
        obs["hostname"] = lines[1] if len(lines) > 1 else ""
        obs["same namespaces as infra"] = bool(host_ns) and lines[2:] == host_ns
        obs["exec in pod"] = podman("exec", "pyoci-pod-a", "sh", "-c",
                                    "cat /proc/1/comm; hostname", runtime=rt)
        obs["pod stop"] = podman("pod", "stop", "--time", "10", name, runtime=rt).rc
        obs["container after stop"] = podman.status("pyoci-pod-a", rt)
    finally:
        obs["pod rm"] = podman("pod", "rm", "--force", name, runtime=rt).rc
        # not compared: runc leaves the intermediate dirs it made, pyoci may remove them
        obs["_pod cgroup left in"] = _drop_pod_cgroup(podman, res.stdout.strip())
    obs["pods left"] = podman.pods()
    obs["containers left"] = podman.ids()
    return obs


KUBE_YAML = f"""apiVersion: v1
kind: Pod
metadata:
  name: pyoci-kube
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: {IMAGE}
    command:
    - /bin/sh
    - -c
    - 'echo kube-hi $GREETING $(pwd); {SERVE}'
    workingDir: /tmp
    env:
    - name: PATH
      value: /bin
    - name: GREETING
      value: hello-env
  - name: side
    image: {IMAGE}
    command:
    - /bin/sh
    - -c
    - 'echo side $(hostname); exit 0'
    env:
    - name: PATH
      value: /bin
"""


def _drop_pod_cgroup(podman: Podman, pod_id: str) -> list[str]:
    """podman 4.3 (cgroupfs) removes a pod's cgroup, <cgroup-parent>/<pod id>, only from
    the v1 controller hierarchies. In the named systemd and the unified hierarchy the
    directory was made by the runtime, as an ancestor of a container's cgroup: runc leaves
    it, pyoci removes it when it deletes the container that made it and it is empty (so it
    depends on the order podman deletes the pod's containers). Whatever is left is removed
    here and returned for messages only."""
    left = []
    for d in cgroup_dirs(f"{podman.cgroup_parent}/{pod_id}") if pod_id else []:
        if d.is_dir():
            left.append(d.relative_to("/sys/fs/cgroup").parts[0])
            try:
                d.rmdir()
            except OSError:
                pass  # not empty: the fixture reports it
    return sorted(left)


def play_kube(podman: Podman, rt: OciRuntime) -> Observation:
    yaml = podman.base / "kube.yaml"
    yaml.write_text(KUBE_YAML)
    obs: Observation = {}
    pod_id = ""
    try:
        play = podman.play_kube(rt, yaml)
        pod_id = podman("pod", "inspect", "--format", "{{.ID}}", "pyoci-kube", runtime=rt
                        ).stdout.strip()
        obs["_play"] = play
        obs["play rc"] = play.rc
        wait_for(lambda: podman.status("pyoci-kube-side", rt).startswith("exited"), 10, 0.1)
        wait_for(lambda: "kube-hi" in podman("logs", "pyoci-kube-main", runtime=rt).stdout,
                 10, 0.1)
        obs["main logs"] = podman("logs", "pyoci-kube-main", runtime=rt)
        obs["side logs"] = podman("logs", "pyoci-kube-side", runtime=rt)
        obs["main status"] = podman.status("pyoci-kube-main", rt)
        obs["side status"] = podman.status("pyoci-kube-side", rt)
        obs["pod status"] = podman("pod", "ps", "--format", "{{.Name}} {{.Status}}",
                                   runtime=rt)
    finally:
        down = podman.play_kube(rt, yaml, down=True)
        obs["_pod cgroup left in"] = _drop_pod_cgroup(podman, pod_id)
    obs["down rc"] = down.rc
    obs["pods left"] = podman.pods()
    obs["containers left"] = podman.ids()
    return obs


UIDMAP_SCRIPT = ("cat /proc/self/uid_map /proc/self/gid_map; id; stat -c '%u:%g %n' / /bin/sh; "
                 "touch /tmp/f && stat -c '%u:%g' /tmp/f")


def uidmap(podman: Podman, rt: OciRuntime) -> Observation:
    """--uidmap/--gidmap: a user namespace whose root is host uid 100000; the image is
    chowned into the mapped range (vfs copies it), so the container sees files it owns."""
    name = "pyoci-uidmap"
    res = podman.run(rt, "--name", name, "--uidmap", "0:100000:65536", "--gidmap",
                     "0:100000:65536", "--detach", IMAGE, "sh", "-c", SERVE)
    obs: Observation = {"run -d rc": res.rc, "_run": res}
    try:
        pid = podman.pid(name)
        obs["host uid of pid 1"] = _status_field(pid, "Uid")
        obs["inside"] = podman("exec", name, "sh", "-c", UIDMAP_SCRIPT, runtime=rt)
        obs["exec --user"] = podman("exec", "--user", "1000", name, "id", "-u", runtime=rt)
    finally:
        _remove(podman, rt, name)
    obs["run --rm"] = podman.run(rt, "--rm", "--uidmap", "0:100000:65536", "--gidmap",
                                 "0:100000:65536", IMAGE, "sh", "-c", "id -u; exit 2")
    return obs


def _status_field(pid: int, field: str) -> str:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return line.split()[1]
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    return "absent"


KILL_0 = "kill 0; kill -9 0; sleep 1; echo survived"


def kill_zero(podman: Podman, rt: OciRuntime) -> Observation:
    """`kill 0` / `kill -9 0` inside signal the caller's process group. runc makes every
    container process a session (and group) leader; a process left in conmon's group
    kills conmon, and podman then shows the container Up forever (issue 12, defect 2)."""
    res = podman.run(rt, "--rm", IMAGE, "sh", "-c", KILL_0, timeout=60)
    name = "pyoci-kill0"
    _start(podman, rt, name)
    try:
        ex = podman("exec", name, "sh", "-c", KILL_0, runtime=rt, timeout=60)
        return {"run": res, "exec": ex, "still running": podman.status(name, rt),
                "containers": len(podman.ids())}
    finally:
        _remove(podman, rt, name)


def test_pod_shares_namespaces(podman: Podman, oci_runtime: OciRuntime,
                               reference: Reference) -> None:
    obs = pod(podman, oci_runtime)
    assert (obs["pod start"], obs["run -d in pod"], obs["run in pod rc"]) == (0, 0, 0), \
        obs["_run in pod"].describe()
    assert obs["sees infra and neighbour"] is True, obs["_run in pod"].describe()
    assert obs["hostname"] == "pyoci-pod" and obs["same namespaces as infra"] is True, obs
    assert obs["exec in pod"].observed() == (0, "catatonit\npyoci-pod\n"), \
        obs["exec in pod"].describe()
    assert obs["pod stop"] == 0 and obs["container after stop"].startswith("exited"), obs
    assert (obs["pod rm"], obs["pods left"], obs["containers left"]) == (0, [], [])
    reference.compare("podman pod", oci_runtime, obs, lambda rt: pod(podman, rt))


def test_play_kube(podman: Podman, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = play_kube(podman, oci_runtime)
    assert obs["play rc"] == 0, obs["_play"].describe()
    assert obs["main logs"].stdout == "kube-hi hello-env /tmp\n", obs["main logs"].describe()
    assert obs["side logs"].stdout == "side pyoci-kube\n", obs["side logs"].describe()
    assert obs["main status"] == "running 0" and obs["side status"] == "exited 0", obs
    assert obs["pod status"].observed() == (0, "pyoci-kube Degraded\n"), obs["pod status"]
    assert (obs["down rc"], obs["pods left"], obs["containers left"]) == (0, [], [])
    reference.compare("podman play kube", oci_runtime, obs, lambda rt: play_kube(podman, rt))


def test_uidmap(podman: Podman, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = uidmap(podman, oci_runtime)
    assert obs["run -d rc"] == 0, obs["_run"].describe()
    assert obs["host uid of pid 1"] == "100000", obs
    inside = obs["inside"]
    assert inside.rc == 0, inside.describe()
    assert inside.stdout.split("\n")[:2] == ["         0     100000      65536"] * 2, \
        inside.describe()
    assert "uid=0(root) gid=0(root)" in inside.stdout and "0:0 /bin/sh" in inside.stdout, \
        inside.describe()
    assert inside.stdout.endswith("0:0\n"), inside.describe()
    assert obs["exec --user"].observed() == (0, "1000\n"), obs["exec --user"].describe()
    assert obs["run --rm"].observed() == (2, "0\n"), obs["run --rm"].describe()
    reference.compare("podman --uidmap", oci_runtime, obs, lambda rt: uidmap(podman, rt))


def test_kill_zero_inside(podman: Podman, oci_runtime: OciRuntime,
                          reference: Reference) -> None:
    obs = kill_zero(podman, oci_runtime)
    assert obs["run"].observed() == (0, "survived\n"), obs["run"].describe()
    assert obs["still running"] == "running 0", obs
    reference.compare("podman kill 0", oci_runtime, obs, lambda rt: kill_zero(podman, rt))
