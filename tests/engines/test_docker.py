"""Docker 20.10 (dockerd -> containerd 1.6 -> containerd-shim-runc-v2 -> runtime) with runc
and with pyoci, driven as Docker's users drive it: each scenario runs once per runtime and
what Docker reports (exit codes, output, `docker inspect` State, logs) must be the same.
The shim calls the runtime as `--root EXEC_ROOT/runtime-runc/moby --log BUNDLE/log.json
--log-format json <command>`; during `create` the runtime's stderr is the container's
stderr, so anything the runtime prints there is shown to the user as the container's own
output (docs/engines.md, "Docker")."""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

import pytest

from tests.engines.docker_engine import DOCKER_INIT, IMAGE, Docker
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

# pid 1 ends on SIGTERM with status 7 (pid 1 has no default action for it).
SERVE = 'trap "exit 7" TERM; while :; do sleep 0.1; done'


def _start(docker: Docker, rt: OciRuntime, name: str, *opts: str) -> str:
    res = docker.run(rt, "--detach", "--name", name, *opts, IMAGE, "sh", "-c", SERVE)
    assert res.rc == 0, f"{rt.name}: docker run -d failed\n{res.describe()}\n{docker.log_tail()}"
    return res.stdout.strip()


def _remove(docker: Docker, name: str) -> None:
    docker("rm", "--force", name)


def _wait_exited(docker: Docker, name: str, timeout: float = 20) -> None:
    wait_for(lambda: docker.inspect(name, "{{.State.Status}}") in ("exited", "dead"),
             timeout, 0.1)


# --- scenarios: each returns what the user saw, keyed by step ----------------------------

def run_rm(docker: Docker, rt: OciRuntime) -> Observation:
    """The container's stdout and stderr reach the client separately; stderr must hold only
    what the container wrote (no runtime warning)."""
    res = docker.run(rt, "--rm", IMAGE, "sh", "-c", "echo hi; echo oops >&2; exit 3")
    return {"run": res, "stderr": res.stderr, "containers left": docker.ids()}


EXIT_CASES = (
    ("exit 0", ["sh", "-c", "exit 0"]),
    ("exit 1", ["sh", "-c", "exit 1"]),
    ("exit 255", ["sh", "-c", "exit 255"]),
    # pid 1 cannot be killed from inside its own pid namespace: a child is
    ("child killed by SIGKILL", ["sh", "-c", "sh -c 'kill -9 $$'; exit $?"]),
    ("absolute missing", ["/nonexistent"]),
    ("missing in PATH", ["nonexistent"]),
    ("not executable", ["/etc/passwd"]),
)


def exit_codes(docker: Docker, rt: OciRuntime) -> Observation:
    """Docker's 127/126 for a program that is missing / not executable come from the
    runtime's create error text (daemon/start.go matches runc's wording)."""
    obs: Observation = {}
    for label, argv in EXIT_CASES:
        res = docker.run(rt, "--rm", IMAGE, *argv)
        obs[f"_{label}"] = res
        obs[f"{label} rc"] = res.rc
    obs["containers left"] = docker.ids()
    return obs


def short_lived(docker: Docker, rt: OciRuntime) -> Observation:
    """Containers whose program exits at once, one after the other: the init may exec, exit
    and be reaped by the shim (a subreaper) while `start` is still returning, which must
    not turn into a failed start (Docker's 125)."""
    return {f"exit {n}": docker.run(rt, "--rm", IMAGE, "sh", "-c", f"exit {n}").rc
            for n in range(12)}


def run_tty(docker: Docker, rt: OciRuntime) -> Observation:
    """-t: the shim passes --console-socket and relays the pty."""
    return {"run -t": docker.run(rt, "--rm", "--tty", IMAGE, "sh", "-c", "tty; echo hi; exit 3")}


def run_stdin(docker: Docker, rt: OciRuntime) -> Observation:
    """-i: the client's stdin reaches the container through the shim's fifo."""
    res = docker.run(rt, "--rm", "--interactive", IMAGE, "sh", "-c", "tr a-z A-Z; exit 4",
                     stdin=b"hello stdin\nsecond line\n")
    return {"run -i": res}


def detached_exec(docker: Docker, rt: OciRuntime) -> Observation:
    name = "pyoci-docker-exec"
    _start(docker, rt, name)
    try:
        return {
            "state": docker.state(name),
            "exec": docker("exec", name, "sh", "-c", "echo hi; exit 5"),
            "exec -u": docker("exec", "--user", "1000:1000", name, "id"),
            "exec -e -w": docker("exec", "--env", "FOO=bar", "--workdir", "/tmp", name,
                                 "sh", "-c", 'echo "$FOO $(pwd)"'),
            "exec -t": docker("exec", "--tty", name, "sh", "-c", "tty; exit 4"),
            "exec -i": docker("exec", "--interactive", name, "cat", stdin=b"piped\n"),
            "exec missing rc": docker("exec", name, "/nonexistent").rc,
            "state after": docker.state(name),
        }
    finally:
        _remove(docker, name)


def pause_unpause(docker: Docker, rt: OciRuntime) -> Observation:
    name = "pyoci-docker-pause"
    cid = _start(docker, rt, name)
    try:
        pause = docker("pause", name)
        obs: Observation = {"pause": pause, "paused": docker.state(name),
                            "paused freezer": freezer_state(docker.container_cgroup(cid)),
                            "exec while paused fails": docker("exec", name, "true").rc != 0}
        unpause = docker("unpause", name)
        obs.update({"unpause": unpause, "unpaused": docker.state(name),
                    "unpaused freezer": freezer_state(docker.container_cgroup(cid)),
                    "exec after": docker("exec", name, "echo", "ok")})
        return obs
    finally:
        _remove(docker, name)


def stop_kill(docker: Docker, rt: OciRuntime) -> Observation:
    """stop = SIGTERM (trapped: exit 7) within its timeout; kill = SIGKILL (137);
    kill --signal to a trapped signal keeps the container running."""
    obs: Observation = {}
    name = "pyoci-docker-stop"
    cid = _start(docker, rt, name)
    try:
        t0 = time.monotonic()
        obs["stop"] = docker("stop", "--time", "10", name)
        obs["stopped by SIGTERM"] = time.monotonic() - t0 < 8
        obs["stopped"] = docker.state(name)
        obs["rm"] = docker("rm", name)
        obs["cgroups left"] = [str(d) for d in cgroup_dirs(docker.container_cgroup(cid))
                               if d.exists()]
        obs["runtime state left"] = (docker.runtime_root() / cid).exists()
    finally:
        _remove(docker, name)
    name = "pyoci-docker-kill"
    _start(docker, rt, name)
    try:
        obs["kill -s USR1"] = docker("kill", "--signal", "USR1", name).rc
        time.sleep(0.3)
        obs["after USR1"] = docker.state(name)["Status"]
        obs["kill"] = docker("kill", name).rc
        _wait_exited(docker, name)
        obs["killed"] = docker.state(name)
    finally:
        _remove(docker, name)
    return obs


def restart(docker: Docker, rt: OciRuntime) -> Observation:
    """`docker restart` (stop, then start in the same container) and a restart policy:
    `--restart on-failure:2` of a container that fails runs it three times."""
    obs: Observation = {}
    name = "pyoci-docker-restart"
    _start(docker, rt, name)
    try:
        pid = docker.inspect(name, "{{.State.Pid}}")
        obs["restart"] = docker("restart", "--time", "10", name).rc
        obs["restarted"] = docker.state(name)
        obs["new pid"] = docker.inspect(name, "{{.State.Pid}}") not in (pid, "0")
        obs["exec after restart"] = docker("exec", name, "echo", "again")
    finally:
        _remove(docker, name)
    name = "pyoci-docker-policy"
    res = docker.run(rt, "--detach", "--name", name, "--restart", "on-failure:2", IMAGE,
                     "sh", "-c", "echo run; exit 1")
    try:
        obs["run --restart"] = res.rc
        wait_for(lambda: docker.inspect(name, "{{.RestartCount}} {{.State.Status}}")
                 == "2 exited", 30, 0.2)
        obs["restart count, status"] = docker.inspect(name, "{{.RestartCount}} {{.State.Status}}")
        obs["logs"] = docker("logs", name)
    finally:
        _remove(docker, name)
    return obs


def update(docker: Docker, rt: OciRuntime) -> Observation:
    """`docker update` reaches the runtime as `update --resources -` (JSON on stdin)."""
    name = "pyoci-docker-update"
    cid = _start(docker, rt, name, "--memory", "64m", "--memory-swap", "64m",
                 "--pids-limit", "50")
    cg = docker.container_cgroup(cid)
    try:
        before = memory_limit(cg)
        res = docker("update", "--memory", "128m", "--memory-swap", "256m",
                     "--pids-limit", "70", "--cpu-shares", "512", name)
        return {"limit before": before, "update": res.rc, "_update": res,
                "limit after": memory_limit(cg),
                "pids after": _cg_file(cg, "pids", "pids.max"),
                "shares after": _cg_file(cg, "cpu", "cpu.shares"),
                "seen inside": docker("exec", name, "cat", "/sys/fs/cgroup/pids/pids.max"),
                "state": docker.state(name)}
    finally:
        _remove(docker, name)


def _cg_file(path: str, controller: str, name: str) -> str:
    for d in cgroup_dirs(path):
        if controller in d.relative_to("/sys/fs/cgroup").parts[0].split(","):
            try:
                return (d / name).read_text().strip()
            except OSError as exc:
                return f"unreadable: {exc.strerror}"
    return "no hierarchy"


def stats_top(docker: Docker, rt: OciRuntime) -> Observation:
    """stats: the shim reads the container's cgroup; top: the shim asks the runtime
    (`ps --format json`) for the pids and dockerd runs ps(1) on them."""
    name = "pyoci-docker-stats"
    _start(docker, rt, name, "--memory", "64m")
    try:
        stats = docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}",
                       name)
        top = docker("top", name, "-o", "pid,args")
        fields = stats.stdout.split()
        return {"stats rc": stats.rc, "_stats": stats,
                "stats name, limit": (fields[0], fields[-2]) if len(fields) >= 5 else stats.stdout,
                "stats pids > 0": len(fields) >= 5 and int(fields[-1]) > 0,
                "top rc": top.rc, "_top": top,
                "top shows pid 1": any(SERVE in ln for ln in top.stdout.splitlines())}
    finally:
        _remove(docker, name)


RESTRICTED_SCRIPT = (
    "id; touch /x 2>/dev/null; echo root-write=$?; touch /run/y; echo tmpfs-write=$?; "
    'grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status; '
    "cat /sys/fs/cgroup/pids/pids.max; "
    # the default seccomp profile refuses unshare(2) without CAP_SYS_ADMIN
    "unshare -n true 2>/dev/null; echo unshare=$?")


def restricted(docker: Docker, rt: OciRuntime) -> Observation:
    """--read-only --tmpfs --cap-drop ALL --cap-add --user --pids-limit, with Docker's
    default seccomp profile (the runtime must load it: Seccomp: 2)."""
    res = docker.run(rt, "--rm", "--read-only", "--tmpfs", "/run", "--cap-drop", "ALL",
                     "--cap-add", "NET_BIND_SERVICE", "--cap-add", "KILL",
                     "--user", "1000:1000", "--pids-limit", "50",
                     "--security-opt", "no-new-privileges", IMAGE, "sh", "-c",
                     RESTRICTED_SCRIPT)
    root = docker.run(rt, "--rm", IMAGE, "sh", "-c",
                      'grep -E "^(CapEff|Seccomp):" /proc/self/status; '
                      "unshare -n true 2>/dev/null; echo unshare=$?")
    unconfined = docker.run(rt, "--rm", "--security-opt", "seccomp=unconfined", IMAGE,
                            "sh", "-c", 'grep "^Seccomp:" /proc/self/status')
    return {"restricted": res, "default root": root, "seccomp=unconfined": unconfined}


def oom(docker: Docker, rt: OciRuntime) -> Observation:
    """A container over --memory is killed by the kernel: OOMKilled true, exit 137 (the
    shim sees the cgroup's OOM event). The shim (containerd 1.6, runc v2) starts watching
    the cgroup only after `start` has returned, by the init's pid: a program killed before
    that is reported OOMKilled false with either runtime, so it waits a little first."""
    name = "pyoci-docker-oom"
    res = docker.run(rt, "--name", name, "--memory", "16m", "--memory-swap", "16m", IMAGE,
                     "sh", "-c", "sleep 0.5; exec tail /dev/zero", timeout=120)
    try:
        _wait_exited(docker, name)
        return {"run rc": res.rc, "_run": res, "state": docker.state(name)}
    finally:
        _remove(docker, name)


def volumes(docker: Docker, rt: OciRuntime) -> Observation:
    """-v host dir (rw and ro), a named volume, --tmpfs with options."""
    with tempfile.TemporaryDirectory(dir=docker.base) as host:
        Path(host, "in").write_text("from host\n")
        script = ("cat /data/in; echo written > /data/out; "
                  "touch /ro/x 2>/dev/null; echo ro-write=$?; "
                  "echo v > /vol/f; cat /vol/f; "
                  "grep ' /scratch ' /proc/mounts | cut -d' ' -f3,4; "
                  "echo t > /scratch/t && cat /scratch/t")
        res = docker.run(rt, "--rm", "-v", f"{host}:/data", "-v", f"{host}:/ro:ro",
                         "-v", "pyoci-docker-vol:/vol",
                         "--tmpfs", "/scratch:size=1m,mode=1777", IMAGE, "sh", "-c", script)
        out = Path(host, "out")
        written = out.read_text() if out.exists() else None
        docker("volume", "rm", "--force", "pyoci-docker-vol")
        return {"run": res, "host sees": written}


def init(docker: Docker, rt: OciRuntime) -> Observation:
    """--init: docker-init (tini) is pid 1 and the command its child."""
    return {"run --init": docker.run(rt, "--rm", "--init", IMAGE, "sh", "-c",
                                     "cat /proc/1/comm; [ $$ != 1 ] && echo not-pid-1; exit 6")}


def logs(docker: Docker, rt: OciRuntime) -> Observation:
    """`docker logs` keeps the two streams apart: the runtime's own messages must not be in
    the container's stderr (runc writes warnings only to --log when it has one)."""
    name = "pyoci-docker-logs"
    # --kernel-memory: a deprecated limit both runtimes ignore, runc saying so only in its
    # --log (a runtime warning on stderr would be in the container's log)
    res = docker.run(rt, "--detach", "--name", name, "--memory", "64m", "--kernel-memory",
                     "32m", IMAGE, "sh", "-c", "echo out1; echo err1 >&2; echo out2")
    try:
        _wait_exited(docker, name)
        lg = docker("logs", name)
        return {"run -d": res.rc, "_run": res, "logs stdout": lg.stdout, "logs stderr": lg.stderr,
                "logs rc": lg.rc, "state": docker.state(name)}
    finally:
        _remove(docker, name)


KILL_0 = "kill 0; sleep 1; echo survived"


def kill_zero(docker: Docker, rt: OciRuntime) -> Observation:
    """`kill 0` inside signals the caller's process group. runc makes the init a session
    (and group) leader, so only the container's own group gets the SIGTERM (pid 1 ignores
    it); an init left in the shim's group kills the shim (issue 12, defect 2)."""
    res = docker.run(rt, "--rm", IMAGE, "sh", "-c", KILL_0, timeout=60)
    detached = "pyoci-docker-kill0"
    _start(docker, rt, detached)
    try:
        ex = docker("exec", detached, "sh", "-c", KILL_0)
        return {"run": res, "exec": ex, "still running": docker.state(detached)["Status"]}
    finally:
        _remove(docker, detached)


# --- tests ---------------------------------------------------------------------------------

def test_run_rm(docker: Docker, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = run_rm(docker, oci_runtime)
    res = obs["run"]
    assert res.observed() == (3, "hi\n"), res.describe()
    assert res.stderr == "oops\n", res.describe()
    assert obs["containers left"] == []
    reference.compare("docker run --rm", oci_runtime, obs, lambda rt: run_rm(docker, rt))


def test_exit_codes(docker: Docker, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = exit_codes(docker, oci_runtime)
    want = {"exit 0 rc": 0, "exit 1 rc": 1, "exit 255 rc": 255, "child killed by SIGKILL rc": 137,
            "absolute missing rc": 127, "missing in PATH rc": 127, "not executable rc": 126}
    details = "\n".join(v.describe() for k, v in obs.items() if k.startswith("_"))
    assert {k: obs[k] for k in want} == want, details
    assert obs["containers left"] == []
    reference.compare("docker exit codes", oci_runtime, obs, lambda rt: exit_codes(docker, rt))


def test_short_lived_containers(docker: Docker, oci_runtime: OciRuntime,
                                reference: Reference) -> None:
    obs = short_lived(docker, oci_runtime)
    assert obs == {f"exit {n}": n for n in range(12)}, obs
    reference.compare("docker short-lived", oci_runtime, obs, lambda rt: short_lived(docker, rt))


def test_run_tty(docker: Docker, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = run_tty(docker, oci_runtime)
    res = obs["run -t"]
    assert res.rc == 3, res.describe()
    assert re.fullmatch(r"/dev/pts/\d+\r\nhi\r\n", res.stdout), res.describe()
    reference.compare("docker run -t", oci_runtime, obs, lambda rt: run_tty(docker, rt))


def test_run_interactive_stdin(docker: Docker, oci_runtime: OciRuntime,
                               reference: Reference) -> None:
    obs = run_stdin(docker, oci_runtime)
    res = obs["run -i"]
    assert res.observed() == (4, "HELLO STDIN\nSECOND LINE\n"), res.describe()
    reference.compare("docker run -i", oci_runtime, obs, lambda rt: run_stdin(docker, rt))


def test_detached_exec(docker: Docker, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = detached_exec(docker, oci_runtime)
    assert obs["state"]["Status"] == "running", obs["state"]
    assert obs["exec"].observed() == (5, "hi\n"), obs["exec"].describe()
    assert obs["exec -u"].observed() == (0, "uid=1000 gid=1000 groups=1000\n"), \
        obs["exec -u"].describe()
    assert obs["exec -e -w"].observed() == (0, "bar /tmp\n"), obs["exec -e -w"].describe()
    assert obs["exec -t"].rc == 4 and re.fullmatch(r"/dev/pts/\d+\r\n", obs["exec -t"].stdout), \
        obs["exec -t"].describe()
    assert obs["exec -i"].observed() == (0, "piped\n"), obs["exec -i"].describe()
    assert obs["exec missing rc"] == 126 or obs["exec missing rc"] == 127
    assert obs["state after"] == obs["state"]
    reference.compare("docker exec", oci_runtime, obs, lambda rt: detached_exec(docker, rt))


def test_pause_unpause(docker: Docker, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = pause_unpause(docker, oci_runtime)
    assert obs["pause"].rc == 0, obs["pause"].describe()
    assert (obs["paused"]["Status"], obs["paused"]["Paused"]) == ("paused", True)
    assert obs["paused freezer"] == "FROZEN"
    assert obs["unpause"].rc == 0, obs["unpause"].describe()
    assert (obs["unpaused"]["Status"], obs["unpaused freezer"]) == ("running", "THAWED")
    assert obs["exec after"].observed() == (0, "ok\n"), obs["exec after"].describe()
    reference.compare("docker pause", oci_runtime, obs, lambda rt: pause_unpause(docker, rt))


def test_stop_kill(docker: Docker, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = stop_kill(docker, oci_runtime)
    assert obs["stop"].rc == 0, obs["stop"].describe()
    assert obs["stopped by SIGTERM"], "stop needed the SIGKILL fallback"
    assert (obs["stopped"]["Status"], obs["stopped"]["ExitCode"]) == ("exited", 7)
    assert obs["rm"].rc == 0 and obs["cgroups left"] == [] and not obs["runtime state left"]
    assert (obs["kill -s USR1"], obs["after USR1"]) == (0, "running")
    assert obs["kill"] == 0
    assert (obs["killed"]["Status"], obs["killed"]["ExitCode"]) == ("exited", 137)
    reference.compare("docker stop/kill", oci_runtime, obs, lambda rt: stop_kill(docker, rt))


def test_restart(docker: Docker, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = restart(docker, oci_runtime)
    assert obs["restart"] == 0
    assert obs["restarted"]["Status"] == "running" and obs["new pid"] is True
    assert obs["exec after restart"].observed() == (0, "again\n")
    assert obs["restart count, status"] == "2 exited"
    assert obs["logs"].stdout == "run\nrun\nrun\n", obs["logs"].describe()
    reference.compare("docker restart", oci_runtime, obs, lambda rt: restart(docker, rt))


def test_update(docker: Docker, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = update(docker, oci_runtime)
    assert obs["update"] == 0, obs["_update"].describe()
    assert (obs["limit before"], obs["limit after"]) == (str(64 << 20), str(128 << 20))
    assert (obs["pids after"], obs["shares after"]) == ("70", "512")
    assert obs["seen inside"].observed() == (0, "70\n")
    assert obs["state"]["Status"] == "running"
    reference.compare("docker update", oci_runtime, obs, lambda rt: update(docker, rt))


def test_stats_top(docker: Docker, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = stats_top(docker, oci_runtime)
    assert obs["stats rc"] == 0, obs["_stats"].describe()
    assert obs["stats name, limit"] == ("pyoci-docker-stats", "64MiB"), obs["_stats"].describe()
    assert obs["stats pids > 0"] is True, obs["_stats"].describe()
    assert obs["top rc"] == 0 and obs["top shows pid 1"], obs["_top"].describe()
    reference.compare("docker stats/top", oci_runtime, obs, lambda rt: stats_top(docker, rt))


def test_restricted_and_seccomp(docker: Docker, oci_runtime: OciRuntime,
                                reference: Reference) -> None:
    obs = restricted(docker, oci_runtime)
    res = obs["restricted"]
    assert res.rc == 0, res.describe()
    lines = res.stdout.splitlines()
    assert lines[0].startswith("uid=1000 gid=1000"), res.describe()
    assert "root-write=1" in lines and "tmpfs-write=0" in lines, res.describe()
    # NET_BIND_SERVICE (10) and KILL (5) only
    assert "CapEff:\t0000000000000000" in lines, res.describe()  # non-root: none effective
    assert "CapBnd:\t0000000000000420" in lines, res.describe()
    assert "NoNewPrivs:\t1" in lines and "Seccomp:\t2" in lines, res.describe()
    assert "50" in lines and "unshare=1" in lines, res.describe()
    root = obs["default root"]
    assert "Seccomp:\t2" in root.stdout and "unshare=1" in root.stdout, root.describe()
    assert obs["seccomp=unconfined"].observed() == (0, "Seccomp:\t0\n"), \
        obs["seccomp=unconfined"].describe()
    for res in obs.values():
        assert res.stderr == "", res.describe()
    reference.compare("docker restricted", oci_runtime, obs, lambda rt: restricted(docker, rt))


def test_memory_oom(docker: Docker, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = oom(docker, oci_runtime)
    assert obs["run rc"] == 137, obs["_run"].describe()
    state = obs["state"]
    assert (state["Status"], state["ExitCode"], state["OOMKilled"]) == ("exited", 137, True), state
    reference.compare("docker OOM", oci_runtime, obs, lambda rt: oom(docker, rt))


def test_volumes_and_tmpfs(docker: Docker, oci_runtime: OciRuntime,
                           reference: Reference) -> None:
    obs = volumes(docker, oci_runtime)
    res = obs["run"]
    assert res.rc == 0, res.describe()
    assert res.stdout.splitlines()[:3] == ["from host", "ro-write=1", "v"], res.describe()
    assert "tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k" in res.stdout, res.describe()
    assert res.stdout.endswith("t\n") and obs["host sees"] == "written\n", res.describe()
    reference.compare("docker volumes", oci_runtime, obs, lambda rt: volumes(docker, rt))


def test_init(docker: Docker, oci_runtime: OciRuntime, reference: Reference) -> None:
    if not os.access(DOCKER_INIT, os.X_OK):
        pytest.skip(f"{DOCKER_INIT} is missing (Debian's docker.io ships it, from tini)")
    obs = init(docker, oci_runtime)
    res = obs["run --init"]
    lines = res.stdout.splitlines()
    assert res.rc == 6 and lines == ["docker-init", "not-pid-1"], res.describe()
    reference.compare("docker --init", oci_runtime, obs, lambda rt: init(docker, rt))


def test_logs(docker: Docker, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = logs(docker, oci_runtime)
    assert obs["run -d"] == 0 and obs["logs rc"] == 0
    assert obs["logs stdout"] == "out1\nout2\n"
    assert obs["logs stderr"] == "err1\n", f"container stderr: {obs['logs stderr']!r}"
    assert (obs["state"]["Status"], obs["state"]["ExitCode"]) == ("exited", 0)
    reference.compare("docker logs", oci_runtime, obs, lambda rt: logs(docker, rt))


def test_kill_zero_inside(docker: Docker, oci_runtime: OciRuntime,
                          reference: Reference) -> None:
    obs = kill_zero(docker, oci_runtime)
    assert obs["run"].observed() == (0, "survived\n"), obs["run"].describe()
    assert obs["still running"] == "running", obs
    reference.compare("docker kill 0", oci_runtime, obs, lambda rt: kill_zero(docker, rt))
