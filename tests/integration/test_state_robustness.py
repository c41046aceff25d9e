"""Reliability of the records under --root and of what delete kills (issue 11, items 7-12).

Each test mounts the failure the issue describes (a damaged, symlinked or lying state.json,
a missing lock, a create SIGKILLed between two cgroup mkdirs, host-namespace sysctls,
hostile config files) against real containers, and checks that nothing is left behind:
no state directory, cgroup, mount or process.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import (
    REPO,
    Bundle,
    Runtime,
    assert_no_cgroup,
    assert_nothing_left,
    base_config,
    cgroup_dirs,
)

pytestmark = pytest.mark.integration


def _sleeper(bundle: Bundle, **extra: object) -> Bundle:
    cfg = base_config(args=["sleep", "300"])
    cfg.update(extra)
    return bundle.write(cfg)


def _create(runtime: Runtime, bundle: Bundle, cid: str) -> int:
    runtime("create", "-b", str(bundle.path), cid, check=True)
    return int(runtime.state(cid)["pid"])


def _alive(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return False
    return data[data.rindex(b")") + 2:].split()[0] not in (b"Z", b"X")


def _start_time(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    return int(data[data.rindex(b")") + 2:].split()[19])


def _kill_leftovers(cid: str) -> None:
    """Last resort after a failing assertion: kill what is in the container's cgroup."""
    for d in cgroup_dirs(cid):
        procs = d / "cgroup.procs"
        if procs.exists():
            for pid in procs.read_text().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass


@pytest.fixture
def helper_process() -> object:
    """A process of the test's own (not the container's) to plant as a wrong pid."""
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    proc.kill()
    proc.wait()


# --------------------------------------------------------------------------- item 7


def _joined(bundle: Bundle, nstype: str, path: str, sysctl: dict[str, str]) -> Bundle:
    cfg = base_config()
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != nstype]
    cfg["linux"]["namespaces"].append({"type": nstype, "path": path})
    cfg["linux"]["sysctl"] = sysctl
    if nstype == "uts":
        cfg.pop("hostname", None)
    return bundle.write(cfg)


def _host_value(name: str) -> str:
    """The host's current value: even if the check failed, writing it changes nothing."""
    return Path("/proc/sys", *name.split(".")).read_text().strip()


@pytest.mark.parametrize(("nstype", "ns_file", "sysctl"), [
    ("network", "net", "net.ipv4.ip_forward"),
    ("ipc", "ipc", "kernel.shmmni"),
    ("uts", "uts", "kernel.domainname"),
])
def test_sysctl_refused_in_joined_host_namespace(runtime: Runtime, bundle: Bundle,
                                                 nstype: str, ns_file: str,
                                                 sysctl: str) -> None:
    """Joining the runtime's own namespace by path and setting one of its sysctls would
    write the host's value (runc: "sysctl ... not allowed in host network namespace")."""
    _joined(bundle, nstype, f"/proc/{os.getpid()}/ns/{ns_file}",
            {sysctl: _host_value(sysctl)})
    for cmd in (["validate", "--bundle", str(bundle.path)],
                ["create", "-b", str(bundle.path), "hostns"]):
        res = runtime(*cmd)
        assert res.returncode == 1, (cmd, res.stdout, res.stderr)
        assert f"linux.sysctl.{sysctl}: not allowed in the host's {nstype} namespace" \
            in res.stderr, res.stderr
        assert "Traceback" not in res.stderr
    assert_nothing_left(runtime, "hostns", bundle)


def test_sysctl_accepted_in_joined_other_namespace(runtime: Runtime, bundle: Bundle) -> None:
    """A joined network namespace that is not the host's is the container's: allowed."""
    holder = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        path = f"/proc/{holder.pid}/ns/net"
        deadline = time.monotonic() + 5
        while os.readlink(path) == os.readlink("/proc/self/ns/net"):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        _joined(bundle, "network", path, {"net.ipv4.ip_forward": "0"})
        res = runtime("validate", "--bundle", str(bundle.path))
        assert res.returncode == 0, res.stderr
    finally:
        holder.kill()
        holder.wait()


# --------------------------------------------------------------------------- item 8


def _damage(path: Path, how: str, other: Path | None = None) -> None:
    text = path.read_text()
    path.unlink()
    if how == "empty":
        path.write_text("")
    elif how == "half":
        path.write_text(text[:len(text) // 2])
    elif how == "garbage":
        path.write_bytes(b"\xff\x00garbage")
    elif how == "symlink":
        os.symlink(other or "/etc/hostname", path)
    elif how == "badpid":
        doc = json.loads(text)
        doc["pid"] = "abc"
        path.write_text(json.dumps(doc))


@pytest.mark.parametrize("how", ["empty", "half", "garbage", "symlink", "badpid"])
def test_force_delete_of_unreadable_state_kills_the_container(runtime: Runtime, bundle: Bundle,
                                                              how: str) -> None:
    """It used to remove the record and exit 0 while the init and its cgroup lived on."""
    init = _create(runtime, _sleeper(bundle), "dmg")
    _damage(runtime.root / "dmg" / "state.json", how)
    try:
        res = runtime("state", "dmg")
        assert res.returncode == 1 and "unreadable" in res.stderr, res.stderr
        res = runtime("delete", "--force", "dmg")
        assert res.returncode == 0, res.stderr
        assert "Traceback" not in res.stderr
        assert not _alive(init), "the init survived delete --force"
        assert_nothing_left(runtime, "dmg", bundle)
    finally:
        _kill_leftovers("dmg")


def test_symlinked_state_is_never_followed(runtime: Runtime, bundle: Bundle) -> None:
    """A state.json symlinked to another container's record must not make delete --force
    kill that other container."""
    victim = _create(runtime, _sleeper(bundle), "victim")
    liar = _create(runtime, bundle, "liar")
    _damage(runtime.root / "liar" / "state.json", "symlink",
            other=runtime.root / "victim" / "state.json")
    try:
        assert runtime("delete", "--force", "liar").returncode == 0
        assert _alive(victim), "delete --force followed the symlink and killed another"
        assert runtime.state("victim")["status"] == "created"
        assert not _alive(liar)
        assert_no_cgroup("liar")
    finally:
        _kill_leftovers("liar")
    runtime("delete", "--force", "victim", check=True)
    assert_nothing_left(runtime, "victim", bundle)


def test_force_delete_with_both_records_damaged_finds_the_cgroup(runtime: Runtime,
                                                                 bundle: Bundle) -> None:
    init = _create(runtime, _sleeper(bundle), "both")
    try:
        for name in ("state.json", "recovery.json"):
            _damage(runtime.root / "both" / name, "garbage")
        res = runtime("delete", "--force", "both")
        assert res.returncode == 0, res.stderr
        assert not _alive(init)
        assert_nothing_left(runtime, "both", bundle)
    finally:
        _kill_leftovers("both")


def test_force_delete_keeps_the_record_when_nothing_can_be_found(runtime: Runtime) -> None:
    """Neither record readable and no cgroup where the id says: processes could still run
    somewhere, so the record stays and the error says why (no silent success)."""
    cdir = runtime.root / "lost"
    cdir.mkdir(parents=True)
    (cdir / "state.json").write_text("{half")
    (cdir / "recovery.json").write_text("{half")
    res = runtime("delete", "--force", "lost")
    assert res.returncode == 1
    assert "recovery record" in res.stderr and "is kept" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert cdir.exists()
    # Once the operator has looked, removing the damaged recovery record lets it go.
    (cdir / "recovery.json").unlink()
    assert runtime("delete", "--force", "lost").returncode == 0
    assert not cdir.exists()


def test_symlinked_container_directory_is_not_emptied(runtime: Runtime, tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.mkdir()
    (target / "keep").write_text("x")
    runtime.root.mkdir(parents=True, exist_ok=True)
    os.symlink(target, runtime.root / "link")
    runtime("delete", "--force", "link", check=True)
    assert (target / "keep").exists()
    assert not os.path.lexists(runtime.root / "link")


# --------------------------------------------------------------------------- item 9


@pytest.mark.parametrize("lie", ["gone", "reused", "forged"])
def test_delete_with_wrong_pid_kills_the_cgroup_fast(runtime: Runtime, bundle: Bundle,
                                                     helper_process: subprocess.Popen,
                                                     lie: str) -> None:
    """The recorded pid is gone, belongs to another process, or even carries that
    process's start time: delete still kills the real init (through the cgroup), leaves
    the other process alone, and takes well under a second (it took 30.6 s)."""
    init = _create(runtime, _sleeper(bundle), "liar")
    path = runtime.root / "liar" / "state.json"
    doc = json.loads(path.read_text())
    other = helper_process.pid
    doc["pid"] = {"gone": 4194000, "reused": other, "forged": other}[lie]
    if lie == "forged":
        doc["pyoci"]["initStartTime"] = _start_time(other)
    path.write_text(json.dumps(doc))
    try:
        t0 = time.monotonic()
        res = runtime("delete", "--force", "liar")
        elapsed = time.monotonic() - t0
        assert res.returncode == 0, res.stderr
        assert not _alive(init), "the real init survived"
        assert _alive(other), "delete killed a process that is not the container's"
        assert elapsed < 1.5, f"delete took {elapsed:.1f} s"
        assert_nothing_left(runtime, "liar", bundle)
    finally:
        _kill_leftovers("liar")


def test_kill_does_not_signal_a_forged_pid_outside_the_cgroup(
        runtime: Runtime, bundle: Bundle, helper_process: subprocess.Popen) -> None:
    """A record naming another process with its very start time: `kill` refuses to
    signal it (it is not in the container's cgroup) instead of killing a host process."""
    init = _create(runtime, _sleeper(bundle), "forged")
    path = runtime.root / "forged" / "state.json"
    doc = json.loads(path.read_text())
    doc["pid"] = helper_process.pid
    doc["pyoci"]["initStartTime"] = _start_time(helper_process.pid)
    path.write_text(json.dumps(doc))
    try:
        res = runtime("kill", "forged", "KILL")
        assert res.returncode == 1 and "not in the container's cgroup" in res.stderr, \
            res.stderr
        assert _alive(helper_process.pid), "kill signalled a process not the container's"
        assert runtime("kill", "--all", "forged", "KILL").returncode == 0
        assert _alive(helper_process.pid)
        deadline = time.monotonic() + 10
        while _alive(init):
            assert time.monotonic() < deadline, "kill --all did not reach the real init"
            time.sleep(0.02)
        runtime("delete", "--force", "forged", check=True)
        assert_nothing_left(runtime, "forged", bundle)
    finally:
        _kill_leftovers("forged")


def test_plain_delete_of_stopped_looking_container_kills_its_init(runtime: Runtime,
                                                                  bundle: Bundle) -> None:
    init = _create(runtime, _sleeper(bundle), "ghost")
    path = runtime.root / "ghost" / "state.json"
    doc = json.loads(path.read_text())
    doc["pid"] = 4194000
    path.write_text(json.dumps(doc))
    try:
        assert runtime.state("ghost")["status"] == "stopped"
        res = runtime("delete", "ghost")
        assert res.returncode == 0, res.stderr
        assert not _alive(init)
        assert_nothing_left(runtime, "ghost", bundle)
    finally:
        _kill_leftovers("ghost")


# --------------------------------------------------------------------------- item 10


def test_list_skips_one_bad_entry_and_lists_the_rest(runtime: Runtime, bundle: Bundle) -> None:
    _create(runtime, _sleeper(bundle), "good")
    _create(runtime, bundle, "bad")
    _damage(runtime.root / "bad" / "state.json", "badpid")
    try:
        res = runtime("list", "-q")
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == ["good"]
        assert "load container bad" in res.stderr and "Traceback" not in res.stderr
        for fmt in ("table", "json"):
            res = runtime("list", "--format", fmt)
            assert res.returncode == 0 and "good" in res.stdout, res.stderr
        assert json.loads(runtime("list", "--format", "json").stdout)[0]["id"] == "good"
    finally:
        runtime("delete", "--force", "bad")
        _kill_leftovers("bad")
    assert_no_cgroup("bad")


@pytest.mark.parametrize("force", [True, False])
def test_missing_lock_does_not_make_a_container_undeletable(runtime: Runtime, bundle: Bundle,
                                                            force: bool) -> None:
    init = _create(runtime, _sleeper(bundle), "nolock")
    (runtime.root / "nolock" / ".lock").unlink()
    try:
        if not force:
            runtime("kill", "nolock", "KILL", check=True)
            deadline = time.monotonic() + 10
            while runtime.state("nolock")["status"] != "stopped":
                assert time.monotonic() < deadline
                time.sleep(0.02)
        res = runtime("delete", *(["--force"] if force else []), "nolock")
        assert res.returncode == 0, res.stderr
        assert not _alive(init)
        assert_nothing_left(runtime, "nolock", bundle)
    finally:
        _kill_leftovers("nolock")


# --------------------------------------------------------------------------- item 11


def _nested(depth: int) -> object:
    value: object = []
    for _ in range(depth):
        value = {"a": [value]}
    return value


@pytest.mark.parametrize("depth", [40, 1000, 100000])
def test_deeply_nested_config_is_an_error_not_a_traceback(runtime: Runtime, bundle: Bundle,
                                                          depth: int) -> None:
    cfg = base_config()
    cfg["x-extension"] = _nested(depth // 2)  # {"a": [...]} is two levels per step
    text = json.dumps(cfg) if depth < 100 else \
        json.dumps(base_config())[:-1] + ', "x": ' + '{"a": [' * (depth // 2) + \
        "]}" * (depth // 2) + "}"
    (bundle.path / "config.json").write_text(text)
    for cmd in (["validate", "--bundle", str(bundle.path)],
                ["create", "-b", str(bundle.path), "deep"]):
        res = runtime(*cmd)
        assert "Traceback" not in res.stderr, res.stderr[-2000:]
        if depth <= 64:
            assert res.returncode == 0, res.stderr
        else:
            assert res.returncode == 1
            assert "nested more than 64 levels deep" in res.stderr, res.stderr
    runtime("delete", "--force", "deep")
    assert_nothing_left(runtime, "deep", bundle)


@pytest.mark.parametrize(("where", "value"), [
    (("process", "user", "uid"), 0.0),
    (("process", "user", "uid"), -0.0),
    (("process", "rlimits"), [{"type": "RLIMIT_NOFILE", "soft": 1024.0, "hard": 1024}]),
    (("linux", "seccomp"), {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1.0,
         "args": [{"index": 0, "value": 1.0, "op": "SCMP_CMP_EQ"}]}]}),
])
def test_integral_floats_refused_where_the_spec_says_integer(runtime: Runtime, bundle: Bundle,
                                                             where: tuple[str, ...],
                                                             value: object) -> None:
    """runc decodes config.json with Go's encoding/json, which refuses 1.0 for an integer
    field; 1.0 once passed validation and crashed the seccomp compilation."""
    cfg = base_config()
    node = cfg
    for key in where[:-1]:
        node = node.setdefault(key, {})
    node[where[-1]] = value
    bundle.write(cfg)
    for cmd in (["validate", "--bundle", str(bundle.path)],
                ["create", "-b", str(bundle.path), "flt"]):
        res = runtime(*cmd)
        assert res.returncode == 1, (cmd, res.stderr)
        assert "expected integer, found" in res.stderr and "Traceback" not in res.stderr, \
            res.stderr
    assert_nothing_left(runtime, "flt", bundle)


@pytest.mark.parametrize("kind", ["sparse-1G", "dev-zero"])
def test_huge_config_is_refused_with_bounded_memory(runtime: Runtime, bundle: Bundle,
                                                    kind: str) -> None:
    config = bundle.path / "config.json"
    config.unlink()
    if kind == "dev-zero":
        os.symlink("/dev/zero", config)
    else:
        with open(config, "wb") as f:
            f.truncate(1 << 30)
    # A 512 MiB address-space cap: reading the whole file (or /dev/zero) would fail.
    res = runtime("validate", "--bundle", str(bundle.path), timeout=30,
                  preexec_fn=lambda: __import__("resource").setrlimit(
                      __import__("resource").RLIMIT_AS, (512 << 20, 512 << 20)))
    assert res.returncode == 1
    assert "larger than 16 MiB" in res.stderr and "Traceback" not in res.stderr, res.stderr
    res = runtime("create", "-b", str(bundle.path), "huge", timeout=30)
    assert res.returncode == 1 and "larger than 16 MiB" in res.stderr, res.stderr
    assert_nothing_left(runtime, "huge", bundle)


def test_large_annotation_goes_through_create_in_bounded_time(runtime: Runtime,
                                                              bundle: Bundle) -> None:
    """The parent/child channel carries the state (annotations included) to the init: it
    is linear now (a 200 MB annotation took 188 s). 12 MiB, under the 16 MiB cap."""
    cfg = base_config(args=["sleep", "300"])
    cfg["annotations"] = {"big": "x" * (12 << 20)}
    bundle.write(cfg)
    t0 = time.monotonic()
    runtime("create", "-b", str(bundle.path), "big", check=True, timeout=60)
    assert time.monotonic() - t0 < 20
    runtime("delete", "--force", "big", check=True)
    assert_nothing_left(runtime, "big", bundle)


def test_huge_process_json_is_refused(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    _create(runtime, _sleeper(bundle), "px")
    runtime("start", "px", check=True)
    proc = tmp_path / "process.json"
    with open(proc, "wb") as f:
        f.truncate(1 << 30)
    try:
        res = runtime("exec", "--process", str(proc), "px")
        assert res.returncode == 1 and "larger than 16 MiB" in res.stderr, res.stderr
        res = runtime("update", "--resources", "-", "px", input="[" * 100000)
        assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    finally:
        runtime("delete", "--force", "px", check=True)
    assert_nothing_left(runtime, "px", bundle)


# --------------------------------------------------------------------------- item 12

_KILL_AT_MKDIR = """
import os, signal, sys
real, seen, limit = os.mkdir, [0], int(sys.argv[1])
def mkdir(path, *args, **kw):
    if str(path).startswith("/sys/fs/cgroup/"):
        if seen[0] >= limit:
            os.kill(os.getpid(), signal.SIGKILL)
        seen[0] += 1
    return real(path, *args, **kw)
os.mkdir = mkdir
sys.argv = ["pyoci", *sys.argv[2:]]
from pyoci.__main__ import main
main()
"""


def test_create_killed_between_cgroup_mkdirs_leaves_nothing(runtime: Runtime,
                                                            bundle: Bundle) -> None:
    """A create SIGKILLed after k of its cgroup mkdirs (every k): delete --force removes
    what it made. The record said "created: false", so the directories made so far (an
    empty name=systemd one, 4 of 125 trials) were left."""
    count = len(cgroup_dirs("mk"))
    for k in range(1, count):
        proc = subprocess.run([sys.executable, "-c", _KILL_AT_MKDIR, str(k), "--root",
                               str(runtime.root), "create", "-b", str(bundle.path), "mk"],
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              timeout=60)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        res = runtime("delete", "--force", "mk")
        assert res.returncode == 0, res.stderr
        assert_nothing_left(runtime, "mk", bundle)


# --------------------------------------------------------------------------- kept as is


def test_sigkill_at_random_points_then_force_delete_leaves_nothing(runtime: Runtime,
                                                                   bundle: Bundle) -> None:
    """create/start/delete killed at seeded random moments; delete --force cleans up."""
    rng = random.Random(11)
    _sleeper(bundle)
    cmd = [sys.executable, "-m", "pyoci", "--root", str(runtime.root)]
    for i in range(12):
        cid = f"rk{i}"
        for step in (["create", "-b", str(bundle.path), cid], ["start", cid],
                     ["delete", "--force", cid]):
            proc = subprocess.Popen([*cmd, *step], cwd=REPO, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            try:
                proc.wait(timeout=rng.uniform(0.0, 0.15))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                break
        res = runtime("delete", "--force", cid)
        assert res.returncode == 0, res.stderr
        assert_nothing_left(runtime, cid, bundle)


def test_parallel_creates_of_one_id_have_one_winner(runtime: Runtime, bundle: Bundle) -> None:
    _sleeper(bundle)
    for _round in range(2):
        results: list[int] = []

        def one(results: list[int] = results) -> None:
            results.append(runtime("create", "-b", str(bundle.path), "same").returncode)

        threads = [threading.Thread(target=one) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [0] + [1] * 19, results
        runtime("delete", "--force", "same", check=True)
        assert_nothing_left(runtime, "same", bundle)
