"""The lifecycle through every command (runtime.md "Lifecycle", "Operations"), with
runc's flags and exit codes, and the forbidden transitions as errors with no effect."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.helpers import Bundle, Runtime, assert_nothing_left, base_config

pytestmark = pytest.mark.integration


def _sleeper(bundle: Bundle, host_dir: Path | None = None, args: list[str] | None = None
             ) -> Bundle:
    cfg = base_config(args=args or ["sleep", "300"])
    if host_dir is not None:
        cfg["mounts"].append({"destination": "/shared", "type": "bind",
                              "source": str(host_dir), "options": ["rbind"]})
    return bundle.write(cfg)


def _wait_status(runtime: Runtime, cid: str, status: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runtime.state(cid)["status"] == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"{cid} never became {status}: {runtime.state(cid)}")


def test_create_start_kill_delete(runtime: Runtime, bundle: Bundle, host_dir: Path) -> None:
    _sleeper(bundle, host_dir, ["sh", "-c", "touch /shared/started; exec sleep 300"])
    pid_file = bundle.path / "init.pid"
    runtime("create", "--bundle", str(bundle.path), "--pid-file", str(pid_file), "c1",
            check=True)
    st = runtime.state("c1")
    assert st["status"] == "created"
    assert st["id"] == "c1" and st["bundle"] == str(bundle.path)
    assert st["ociVersion"] == "1.3.0"
    assert int(pid_file.read_text()) == st["pid"] > 0
    # runtime.md: create MUST NOT run the user-specified program.
    time.sleep(0.2)
    assert not (host_dir / "started").exists()

    runtime("start", "c1", check=True)
    assert (host_dir / "started").exists(), "start returned before the program ran"
    assert runtime.state("c1")["status"] == "running"

    runtime("kill", "c1", "KILL", check=True)
    _wait_status(runtime, "c1", "stopped")
    assert runtime.state("c1")["pid"] == 0
    runtime("delete", "c1", check=True)
    assert_nothing_left(runtime, "c1", bundle)


def test_start_returns_after_exec(runtime: Runtime, bundle: Bundle, host_dir: Path) -> None:
    """start returns once the program is exec'd: its /proc/<pid>/exe is busybox, not
    python."""
    _sleeper(bundle)
    runtime("create", "-b", str(bundle.path), "c1", check=True)
    pid = runtime.state("c1")["pid"]
    assert "python" in os.readlink(f"/proc/{pid}/exe")
    runtime("start", "c1", check=True)
    assert os.readlink(f"/proc/{pid}/exe").endswith("/busybox")


def test_forbidden_transitions_have_no_effect(runtime: Runtime, bundle: Bundle) -> None:
    _sleeper(bundle)
    runtime("create", "-b", str(bundle.path), "c1", check=True)
    pid = runtime.state("c1")["pid"]

    # delete of a created (not stopped) container: an error, container untouched.
    res = runtime("delete", "c1")
    assert res.returncode == 1 and "not stopped" in res.stderr
    assert runtime.state("c1")["status"] == "created"

    runtime("start", "c1", check=True)
    res = runtime("start", "c1")
    assert res.returncode == 1 and "running" in res.stderr
    res = runtime("delete", "c1")
    assert res.returncode == 1
    assert runtime.state("c1") == runtime.state("c1") | {"status": "running", "pid": pid}

    runtime("kill", "c1", "9", check=True)
    _wait_status(runtime, "c1", "stopped")
    res = runtime("kill", "c1", "TERM")
    assert res.returncode == 1 and "stopped" in res.stderr
    res = runtime("start", "c1")
    assert res.returncode == 1
    runtime("delete", "c1", check=True)
    res = runtime("state", "c1")
    assert res.returncode == 1 and "does not exist" in res.stderr


def test_duplicate_id_refused(runtime: Runtime, bundle: Bundle) -> None:
    _sleeper(bundle)
    runtime("create", "-b", str(bundle.path), "dup", check=True)
    before = runtime.state("dup")
    res = runtime("create", "-b", str(bundle.path), "dup")
    assert res.returncode == 1 and "already exists" in res.stderr
    assert runtime.state("dup") == before


@pytest.mark.parametrize("cid", ["../escape", "a/b", "..", ".", "bad id", "x;y"])
def test_invalid_ids_refused(runtime: Runtime, bundle: Bundle, cid: str) -> None:
    res = runtime("create", "-b", str(bundle.path), cid)
    assert res.returncode == 1 and "invalid container id" in res.stderr
    assert not runtime.root.exists() or os.listdir(runtime.root) == []


@pytest.mark.parametrize("signame", ["SIGUSR1", "USR1", "10", "usr1"])
def test_kill_signal_forms(runtime: Runtime, bundle: Bundle, host_dir: Path,
                           signame: str) -> None:
    script = "trap 'echo got > /shared/usr1; exit 0' USR1; while :; do sleep 0.05; done"
    _sleeper(bundle, host_dir, ["sh", "-c", script])
    # A shell that is PID 1 only gets signals it traps; it is, here.
    runtime("run", "-d", "-b", str(bundle.path), "k1", check=True)
    time.sleep(0.3)
    runtime("kill", "k1", signame, check=True)
    _wait_status(runtime, "k1", "stopped")
    assert (host_dir / "usr1").read_text() == "got\n"


def test_kill_default_is_sigterm(runtime: Runtime, bundle: Bundle, host_dir: Path) -> None:
    script = "trap 'echo term > /shared/sig; exit 0' TERM; while :; do sleep 0.05; done"
    _sleeper(bundle, host_dir, ["sh", "-c", script])
    runtime("run", "-d", "-b", str(bundle.path), "k2", check=True)
    time.sleep(0.3)
    runtime("kill", "k2", check=True)
    _wait_status(runtime, "k2", "stopped")
    assert (host_dir / "sig").read_text() == "term\n"


def test_kill_invalid_signal(runtime: Runtime, bundle: Bundle) -> None:
    _sleeper(bundle)
    runtime("create", "-b", str(bundle.path), "k3", check=True)
    res = runtime("kill", "k3", "NOTASIGNAL")
    assert res.returncode == 1 and "invalid signal" in res.stderr
    assert runtime.state("k3")["status"] == "created"


def test_kill_all_reaches_every_process(runtime: Runtime, bundle: Bundle) -> None:
    _sleeper(bundle, args=["sh", "-c", "sleep 300 & sleep 300 & wait"])
    runtime("run", "-d", "-b", str(bundle.path), "k4", check=True)
    time.sleep(0.3)
    runtime("kill", "--all", "k4", "KILL", check=True)
    _wait_status(runtime, "k4", "stopped")
    runtime("delete", "k4", check=True)
    assert_nothing_left(runtime, "k4", bundle)


def test_delete_force_running(runtime: Runtime, bundle: Bundle) -> None:
    _sleeper(bundle)
    runtime("run", "--detach", "-b", str(bundle.path), "f1", check=True)
    assert runtime.state("f1")["status"] == "running"
    runtime("delete", "--force", "f1", check=True)
    assert_nothing_left(runtime, "f1", bundle)


def test_delete_force_created(runtime: Runtime, bundle: Bundle) -> None:
    _sleeper(bundle)
    runtime("create", "-b", str(bundle.path), "f2", check=True)
    runtime("delete", "-f", "f2", check=True)
    assert_nothing_left(runtime, "f2", bundle)


@pytest.mark.parametrize(("script", "expected"), [
    ("exit 0", 0), ("exit 3", 3), ("kill -9 $$", 137), ("kill -TERM $$; sleep 1", 143),
])
def test_run_exit_status(runtime: Runtime, bundle: Bundle, script: str, expected: int) -> None:
    # PID 1 ignores signals it has no handler for, so signal tests run in a host pid ns
    # child: the shell runs as a child of a PID-1 `sh -c` wrapper.
    bundle.write(base_config(args=["sh", "-c", f"sh -c '{script}'; exit $?"]))
    res = runtime("run", "-b", str(bundle.path), "r1")
    assert res.returncode == expected, res.stderr
    assert_nothing_left(runtime, "r1", bundle)


def test_run_passes_stdio(runtime: Runtime, bundle: Bundle) -> None:
    bundle.write(base_config(args=["sh", "-c", "read line; echo got:$line; echo err >&2"]))
    res = runtime("run", "-b", str(bundle.path), "r2", input="hello\n")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "got:hello\n"
    assert res.stderr == "err\n"


def test_run_killed_by_signal_from_outside(runtime: Runtime, bundle: Bundle) -> None:
    bundle.write(base_config(args=["sleep", "300"]))
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "pyoci", "--root", str(runtime.root),
                             "run", "-b", str(bundle.path), "r3"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (not (runtime.root / "r3").exists()
                                           or runtime.state("r3")["status"] != "running"):
        time.sleep(0.05)
    runtime("kill", "r3", "KILL", check=True)
    assert proc.wait(timeout=20) == 137
    assert_nothing_left(runtime, "r3", bundle)


def test_list_formats(runtime: Runtime, bundle: Bundle) -> None:
    _sleeper(bundle)
    runtime("create", "-b", str(bundle.path), "l1", check=True)
    assert runtime.ids() == ["l1"]
    table = runtime("list", check=True).stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert table[1].split()[:3] == ["l1", str(runtime.state("l1")["pid"]), "created"]
    doc = json.loads(runtime("list", "--format", "json", check=True).stdout)
    assert [(d["id"], d["status"]) for d in doc] == [("l1", "created")]


def test_state_annotations_round_trip(runtime: Runtime, bundle: Bundle) -> None:
    cfg = base_config(args=["sleep", "300"])
    cfg["annotations"] = {"org.example.key": "value"}
    bundle.write(cfg)
    runtime("create", "-b", str(bundle.path), "a1", check=True)
    assert runtime.state("a1")["annotations"] == {"org.example.key": "value"}


def test_status_stopped_when_pid_reused(runtime: Runtime, bundle: Bundle) -> None:
    """A recorded pid now used by another process must not read as running: the start
    time in /proc/<pid>/stat is compared."""
    _sleeper(bundle)
    runtime("run", "-d", "-b", str(bundle.path), "p1", check=True)
    state_file = runtime.root / "p1" / "state.json"
    doc = json.loads(state_file.read_text())
    runtime("kill", "p1", "KILL", check=True)
    _wait_status(runtime, "p1", "stopped")
    doc["pid"] = os.getpid()  # alive, but not the container's init
    state_file.write_text(json.dumps(doc))
    assert runtime.state("p1")["status"] == "stopped"


def test_spec_writes_valid_config(runtime: Runtime, tmp_path: Path) -> None:
    for flags, name in (((), "default"), (("--rootless",), "rootless")):
        out = tmp_path / name
        out.mkdir()
        (out / "rootfs").mkdir()
        runtime("spec", "--bundle", str(out), *flags, check=True)
        runtime("validate", "--bundle", str(out), check=True)
        res = runtime("spec", "--bundle", str(out))
        assert res.returncode == 1 and "already exists" in res.stderr


def test_log_file_json_lines(runtime: Runtime, tmp_path: Path) -> None:
    log = tmp_path / "log.json"
    res = runtime("state", "missing", global_args=("--log", str(log), "--log-format", "json"))
    assert res.returncode == 1
    assert 'container "missing" does not exist' in res.stderr
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and "does not exist" in entry["msg"]
    assert entry["time"].endswith("Z")


def test_usage_error_exits_1(runtime: Runtime) -> None:
    res = runtime("kill")
    assert res.returncode == 1
    res = runtime("no-such-command")
    assert res.returncode == 1


def test_create_that_died_reads_stopped_and_force_delete_is_safe(runtime: Runtime,
                                                                  bundle: Bundle) -> None:
    """A create killed half-way leaves "creating" with pid 0 and a free lock: it reads as
    stopped, and `delete --force` removes it without signalling pid 0 (our own process
    group — this test would die with it)."""
    cdir = runtime.root / "half"
    cdir.mkdir(parents=True)
    (cdir / ".lock").write_text("")
    (cdir / "state.json").write_text(json.dumps({
        "ociVersion": "1.3.0", "id": "half", "status": "creating", "pid": 0,
        "bundle": str(bundle.path), "pyoci": {"initStartTime": 0}}))
    assert runtime.state("half")["status"] == "stopped"
    runtime("delete", "--force", "half", check=True)
    assert not cdir.exists()


def test_state_during_create_is_creating(runtime: Runtime, bundle: Bundle,
                                         tmp_path: Path) -> None:
    """While create runs (here: held in a createRuntime hook), state says "creating"."""
    gate = tmp_path / "gate"
    cfg = base_config(args=["sleep", "300"])
    cfg["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": [
        "sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done"]}]}
    bundle.write(cfg)
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "pyoci", "--root", str(runtime.root),
                             "create", "-b", str(bundle.path), "slow"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (runtime.root / "slow" / "state.json").exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert runtime.state("slow")["status"] == "creating"
    finally:
        gate.write_text("")
        assert proc.wait(timeout=30) == 0
    assert runtime.state("slow")["status"] == "created"


def test_plain_delete_after_create_died(runtime: Runtime, bundle: Bundle,
                                       tmp_path: Path) -> None:
    """A create killed half-way leaves a "stopped" container (its lock is free): a plain
    delete removes it, init and cgroup included (it once said "it is creating")."""
    import signal
    import subprocess
    import sys

    cfg = base_config(args=["sleep", "300"])
    # The hook ends with the create that ran it: a hook is the runtime's process, not the
    # container's, and no record names it (a plain "sleep 30" outlived the SIGKILL with
    # its cwd in the bundle whenever it had started before the kill).
    cfg["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": [
        "sh", "-c", "while kill -0 $PPID 2>/dev/null; do sleep 0.05; done"]}]}
    bundle.write(cfg)
    proc = subprocess.Popen([sys.executable, "-m", "pyoci", "--root", str(runtime.root),
                             "create", "-b", str(bundle.path), "died"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not (runtime.root / "died" / "state.json").exists() or \
            not runtime.state("died")["pid"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert runtime.state("died")["status"] == "stopped"
    res = runtime("delete", "died")
    assert res.returncode == 0, res.stderr
    assert_nothing_left(runtime, "died", bundle)


def test_process_starts_with_default_signal_dispositions(runtime: Runtime,
                                                         bundle: Bundle) -> None:
    """Python ignores SIGPIPE/SIGXFSZ; that must not leak into the container (runc: none)."""
    bundle.write(base_config(args=["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"]))
    res = runtime("run", "-b", str(bundle.path), "sig")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["SigBlk:", "0" * 16, "SigIgn:", "0" * 16]


def test_rshared_propagation_accepted(runtime: Runtime, bundle: Bundle) -> None:
    """containerd's CRI plugin writes runc's r* forms."""
    cfg = base_config()
    cfg["linux"]["rootfsPropagation"] = "rslave"
    runtime("run", "-b", str(bundle.write(cfg).path), "rs", check=True)


@pytest.mark.parametrize("propagation", ["private", "slave", "shared", None])
def test_shared_rootfs_mount_does_not_leak(runtime: Runtime, bundle: Bundle,
                                           rootfs_template: Path, tmp_path: Path,
                                           propagation: str | None) -> None:
    """An engine's rootfs is often a shared mount point. The container's mounts must not
    propagate back to the runtime's namespace. Run inside a private mount namespace of
    the test's own, so the host is never touched."""
    import subprocess
    import sys

    rootfs = tmp_path / "sharedroot"
    rootfs.mkdir()
    cfg = base_config(args=["/bin/true"])
    cfg["root"]["path"] = str(rootfs)
    if propagation:
        cfg["linux"]["rootfsPropagation"] = propagation
    bundle.write(cfg)
    script = f"""set -e
mount -t tmpfs tmpfs {rootfs}
mount --make-shared {rootfs}
cp -a {rootfs_template}/. {rootfs}/
{sys.executable} -m pyoci --root {runtime.root} run -b {bundle.path} shr
echo "mounts:$(awk '$5 ~ "^{rootfs}"' /proc/self/mountinfo | wc -l)"
"""
    res = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                          script], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith("mounts:1"), res.stdout
