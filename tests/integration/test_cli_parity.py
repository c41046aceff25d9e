"""runc's command-line behaviours pyoci lacked (issue 13, "runc behaviours users and tools
rely on"): `run --keep`, `run --no-subreaper`, `exec --ignore-paused`, `exec --cgroup`,
`help [COMMAND]`, the global `--criu` flag and the `checkpoint`/`restore` commands (accepted
and explained: pyoci has no CRIU support). Where runc (Debian's 1.1.5, /usr/sbin/runc with
its own --root in a temp dir) is installed, the same call is made with runc and compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import (
    Bundle,
    Runtime,
    assert_nothing_left,
    base_config,
    cgroup_dirs,
)

pytestmark = pytest.mark.integration

RUNC = "/usr/sbin/runc"


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Runc:
    """Debian's runc with a private --root, output through files (see helpers.Runtime)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = subprocess.run([RUNC, "--root", str(self.root), *args], stdout=out,
                                  stderr=err, stdin=subprocess.DEVNULL, text=True,
                                  timeout=timeout)
            out.seek(0)
            err.seek(0)
            proc.stdout, proc.stderr = out.read(), err.read()
        return proc


@pytest.fixture
def runc(tmp_path: Path):
    if not os.access(RUNC, os.X_OK):
        pytest.skip(f"{RUNC} is not installed (apt-get install runc): no comparison")
    rc = Runc(tmp_path / "runc-state")
    yield rc
    if rc.root.exists():
        for cid in os.listdir(rc.root):
            rc("delete", "--force", cid)


def _sh(bundle: Bundle, script: str, **linux: object) -> dict:
    cfg = base_config(args=["sh", "-c", script])
    cfg["linux"].update(linux)
    bundle.write(cfg)
    return cfg


# --- run --keep ---------------------------------------------------------------------------

def test_run_keep_leaves_the_stopped_container(runtime: Runtime, bundle: Bundle,
                                               runc: Runc) -> None:
    """runc `run --keep`: the container is not deleted after its process exits; it stays
    `stopped` (pid 0) until `delete`. Without the flag pyoci deleted it (before: "No such
    option: --keep")."""
    _sh(bundle, "exit 3", cgroupsPath=_uid("pyoci-keep"))
    for rt in (runtime, runc):
        cid = _uid("keep")
        res = rt("run", "--keep", "--bundle", str(bundle.path), cid)
        assert res.returncode == 3, res.stderr
        st = rt("state", cid)
        assert st.returncode == 0, st.stderr
        doc = json.loads(st.stdout)
        assert doc["status"] == "stopped" and doc["pid"] == 0, doc
        assert rt("delete", cid).returncode == 0
        assert rt("state", cid).returncode != 0
    assert_nothing_left(runtime, "keep-none", bundle)


def test_run_without_keep_still_deletes(runtime: Runtime, bundle: Bundle) -> None:
    _sh(bundle, "exit 0")
    cid = _uid("nokeep")
    assert runtime("run", "--bundle", str(bundle.path), cid).returncode == 0
    assert_nothing_left(runtime, cid, bundle)


# --- run --no-subreaper -------------------------------------------------------------------

ORPHAN = ("sh -c 'sleep 2 >/dev/null 2>&1 & echo $! > /tmp/orphan'; sleep 0.5; "
          "grep PPid /proc/$(cat /tmp/orphan)/status | tr -dc 0-9")


def _orphan_parent(rt: Runtime | Runc, bundle: Bundle, *flags: str) -> tuple[int, int]:
    """(pid of the runtime's `run`, parent of a process orphaned in the container)."""
    cid = _uid("reap")
    argv = ([*rt.cmd, "--root", str(rt.root)] if isinstance(rt, Runtime)
            else [RUNC, "--root", str(rt.root)])
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([*argv, "run", *flags, "--bundle", str(bundle.path), cid],
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL, text=True)
        assert proc.wait(timeout=60) == 0
        out.seek(0)
        err.seek(0)
        text, errors = out.read(), err.read()
    assert text.strip().isdigit(), (text, errors)
    return proc.pid, int(text)


def test_run_no_subreaper_leaves_orphans_to_the_callers_reaper(
        runtime: Runtime, bundle: Bundle, runc: Runc) -> None:
    """runc makes `run` a child subreaper unless --no-subreaper: in a container sharing
    the caller's pid namespace, a process orphaned inside goes to `run` by default, and
    to the caller's reaper (here: not `run`) with the flag. pyoci needs the subreaper while
    create forks its init, and drops it once the init is its child."""
    _sh(bundle, ORPHAN, namespaces=[{"type": t} for t in ("network", "ipc", "uts", "mount")])
    for rt in (runtime, runc):
        run_pid, parent = _orphan_parent(rt, bundle)
        assert parent == run_pid, (rt, run_pid, parent)
        run_pid, parent = _orphan_parent(rt, bundle, "--no-subreaper")
        assert parent != run_pid, (rt, run_pid, parent)
    # The exit status still comes through without the subreaper.
    _sh(bundle, "exit 5", namespaces=[{"type": t} for t in ("pid", "ipc", "uts", "mount")])
    cid = _uid("noreap")
    assert runtime("run", "--no-subreaper", "--bundle", str(bundle.path), cid).returncode == 5
    assert_nothing_left(runtime, cid, bundle)


# --- exec --ignore-paused -----------------------------------------------------------------

def _running(rt: Runtime | Runc, bundle: Bundle, cid: str) -> None:
    assert rt("create", "--bundle", str(bundle.path), cid).returncode == 0
    assert rt("start", cid).returncode == 0


def test_exec_in_paused_container_needs_ignore_paused(runtime: Runtime, bundle: Bundle,
                                                      runc: Runc) -> None:
    """runc refuses exec into a paused container with "cannot exec in a paused container
    (use --ignore-paused to override)"; with --ignore-paused the process joins the frozen
    cgroup, is frozen with it, and runs once the container is resumed."""
    cgpath = _uid("pyoci-paused")
    _sh(bundle, "sleep 60", cgroupsPath=cgpath)
    for rt in (runtime, runc):
        cid = _uid("paused")
        _running(rt, bundle, cid)
        assert rt("pause", cid).returncode == 0
        res = rt("exec", cid, "true")
        assert res.returncode != 0
        assert "cannot exec in a paused container" in res.stderr, res.stderr
        assert "(use --ignore-paused to override)" in res.stderr, res.stderr
        argv = ([*rt.cmd, "--root", str(rt.root)] if isinstance(rt, Runtime)
                else [RUNC, "--root", str(rt.root)])
        with tempfile.TemporaryFile("w+") as out:
            proc = subprocess.Popen([*argv, "exec", "--ignore-paused", cid, "echo", "ran"],
                                    stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, text=True)
            try:
                time.sleep(1)
                assert proc.poll() is None, "exec finished inside a frozen container"
                assert rt("resume", cid).returncode == 0
                assert proc.wait(timeout=30) == 0
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            out.seek(0)
            assert out.read().strip() == "ran"
        assert rt("delete", "--force", cid).returncode == 0
    assert_nothing_left(runtime, "paused-none", bundle)
    assert_no_cgroup_left(cgpath)


def assert_no_cgroup_left(path: str) -> None:
    assert [d for d in cgroup_dirs(path) if d.exists()] == []


# --- exec --cgroup ------------------------------------------------------------------------

def _make_sub(dirs: list[Path], name: str) -> list[Path]:
    made = []
    for d in dirs:
        sub = d / name
        sub.mkdir()
        made.append(sub)
        if (d / "cpuset.cpus").exists():  # v1 cpuset: an empty child refuses tasks
            for f in ("cpuset.cpus", "cpuset.mems"):
                (sub / f).write_text((d / f).read_text())
    return made


def _cgroup_lines(text: str, cgpath: str) -> dict[str, str]:
    """controllers -> path, for the lines of /proc/self/cgroup inside the container."""
    out = {}
    for line in text.splitlines():
        _, ctrls, path = line.split(":", 2)
        if cgpath in path:
            out[ctrls] = path
    return out


def test_exec_cgroup_runs_the_process_in_a_sub_cgroup(runtime: Runtime, bundle: Bundle,
                                                      runc: Runc) -> None:
    """runc `exec --cgroup PATH` puts the process in the existing sub-cgroup PATH of the
    container's cgroup in every hierarchy; `--cgroup CONTROLLER:PATH` only in that
    controller's (cgroup v1). pyoci and runc agree on where the process lands."""
    results = {}
    for rt in (runtime, runc):
        cgpath = _uid("pyoci-sub")
        _sh(bundle, "sleep 60", cgroupsPath=cgpath)
        cid = _uid("sub")
        _running(rt, bundle, cid)
        dirs = [d for d in cgroup_dirs(cgpath) if d.is_dir()]
        subs = _make_sub(dirs, "sub")
        try:
            res = rt("exec", "--cgroup", "sub", cid, "cat", "/proc/self/cgroup")
            assert res.returncode == 0, res.stderr
            every = _cgroup_lines(res.stdout, cgpath)
            assert every and all(p.endswith(f"/{cgpath}/sub") for p in every.values()), every
            res = rt("exec", "--cgroup", "memory:sub", cid, "cat", "/proc/self/cgroup")
            assert res.returncode == 0, res.stderr
            one = _cgroup_lines(res.stdout, cgpath)
            assert one["memory"].endswith(f"/{cgpath}/sub"), one
            assert one["pids"].endswith(f"/{cgpath}"), one
            results[rt is runtime] = (sorted(every), sorted(k for k, v in one.items()
                                                           if v.endswith("/sub")))
        finally:
            for s in subs:  # empty again: the exec'd processes have exited
                if s.exists():
                    s.rmdir()
            rt("delete", "--force", cid)
        assert_no_cgroup_left(cgpath)
    if len(results) == 2:
        assert results[True] == results[False]


@pytest.mark.parametrize(("args", "expected"), [
    (["--cgroup", "../escape"], "not a sub-cgroup of the container's cgroup"),
    (["--cgroup", "nosuch"], "does not exist"),
    (["--cgroup", "a", "--cgroup", "b"], "invalid --cgroup argument: a (missing <controller>: "
                                         "prefix)"),
    (["--cgroup", ":x"], "(empty <controller> prefix)"),
    (["--cgroup", "memory:x", "--cgroup", "memory:y"], "controller memory specified "
                                                       "multiple times"),
    (["--cgroup", "bogus:sub"], "unknown controller bogus"),
])
def test_exec_cgroup_errors(runtime: Runtime, bundle: Bundle, args: list[str],
                            expected: str) -> None:
    """runc's parse errors (exec.go getSubCgroupPaths) and pyoci's checks: a path leaving
    the container's cgroup or not existing is refused before anything runs."""
    cgpath = _uid("pyoci-suberr")
    _sh(bundle, "sleep 60", cgroupsPath=cgpath)
    cid = _uid("suberr")
    _running(runtime, bundle, cid)
    dirs = [d for d in cgroup_dirs(cgpath) if d.is_dir()]
    subs = _make_sub(dirs, "sub")
    try:
        res = runtime("exec", *args, cid, "sh", "-c", "echo ran")
        assert res.returncode == 1, res
        assert expected in res.stderr, res.stderr
        assert "Traceback" not in res.stderr
        assert "ran" not in res.stdout
        procs = runtime("ps", "--format", "json", cid)
        assert len(json.loads(procs.stdout)) == 1, procs.stdout  # only the init
    finally:
        for s in subs:
            if s.exists():
                s.rmdir()
        runtime("delete", "--force", cid)
    assert_nothing_left(runtime, cid, bundle)


# --- help, --criu, checkpoint/restore -----------------------------------------------------

def test_help_command_like_runc(runtime: Runtime, runc: Runc) -> None:
    """runc `help` lists the commands, `help CMD` shows one command's help, an unknown
    topic is an error naming it ("No help topic for 'x'")."""
    res = runtime("help")
    assert res.returncode == 0, res.stderr
    for cmd in ("create", "run", "exec", "checkpoint", "restore"):
        assert cmd in res.stdout
    res = runtime("help", "run")
    assert res.returncode == 0 and "--keep" in res.stdout and "--no-subreaper" in res.stdout
    res = runtime("help", "exec")
    assert "--ignore-paused" in res.stdout and "--cgroup" in res.stdout
    for rt in (runtime, runc):
        res = rt("help", "nosuch")
        assert res.returncode != 0
        assert "No help topic for 'nosuch'" in res.stderr, res.stderr
    assert "Traceback" not in runtime("help", "nosuch").stderr


def test_criu_flag_accepted_and_checkpoint_explained(runtime: Runtime, bundle: Bundle,
                                                     runc: Runc) -> None:
    """runc's global --criu PATH is accepted (as runc does); `checkpoint` and `restore`
    exist and say why they fail -- pyoci has no CRIU support -- instead of "No such
    command"; nothing is created or touched."""
    for rt in (runtime, runc):
        res = rt("--criu", "/nonexistent/criu", "list")
        assert res.returncode == 0, res.stderr
    _sh(bundle, "sleep 60")
    cid = _uid("criu")
    _running(runtime, bundle, cid)
    try:
        for argv in (["checkpoint", cid], ["checkpoint", "--image-path", "/tmp/x", cid],
                     ["--criu", "/usr/sbin/criu", "restore", "-b", str(bundle.path), cid]):
            res = runtime(*argv)
            assert res.returncode == 1, res
            assert "does not implement checkpoint/restore" in res.stderr, res.stderr
            assert "No such command" not in res.stderr and "Traceback" not in res.stderr
        assert runtime.state(cid)["status"] == "running"
    finally:
        runtime("delete", "--force", cid)
    assert_nothing_left(runtime, cid, bundle)


# --- a failing poststart hook (runtime.md v1.3.0) -----------------------------------------

def test_failing_poststart_hook_is_an_error_and_stops_the_container(
        runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """runtime.md v1.3.0 "Lifecycle" step 9: "If any poststart hook fails, the runtime MUST
    generate an error, stop the container, and continue the lifecycle at step 12" (12:
    destroyed as create is undone; 13: poststop hooks). `start` exits 1 naming the hook;
    the process is killed, later poststart hooks do not run, poststop hooks do, and
    nothing is left. (pyoci followed v1.0: a warning, and the container kept running.)"""
    marks = tmp_path / "marks"
    marks.mkdir()
    cfg = base_config(args=["sleep", "300"])
    cfg["linux"]["cgroupsPath"] = _uid("pyoci-poststart")
    cfg["hooks"] = {
        "poststart": [{"path": "/bin/sh", "args": ["sh", "-c", "cat >/dev/null; exit 7"]},
                      {"path": "/bin/sh", "args": ["sh", "-c", f"touch {marks}/second"]}],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", f"touch {marks}/poststop"]}],
    }
    bundle.write(cfg)
    cid = _uid("poststart")
    assert runtime("create", "--bundle", str(bundle.path), cid).returncode == 0
    pid = runtime.state(cid)["pid"]
    res = runtime("start", cid)
    assert res.returncode == 1, res
    assert "poststart hook #0 (/bin/sh): exit status 7" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert not (marks / "second").exists(), "poststart hooks went on after a failure"
    assert (marks / "poststop").exists(), "poststop hooks were not run (step 13)"
    assert_nothing_left(runtime, cid, bundle)
    # run: the same error, its status 1, nothing left.
    cid = _uid("poststart-run")
    res = runtime("run", "--bundle", str(bundle.path), cid)
    assert res.returncode == 1 and "poststart hook #0" in res.stderr, res
    assert_nothing_left(runtime, cid, bundle)
