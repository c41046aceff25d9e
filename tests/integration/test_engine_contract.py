"""The runc contract engines depend on beyond flags: exit statuses and error texts (issue 12).

Each test is one row of docs/engines.md, "What engines read from pyoci", and runs against
pyoci and, side by side, against runc (/usr/sbin/runc with its own --root in the test's
temp dir): what containerd's shim, go-runc, conmon, podman and Docker read must be the same
for both. Every container's cgroup is a one-level relative cgroupsPath (both runtimes
remove only the leaf of a nested one), so beneath this process's own cgroup for both.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    Bundle,
    Runtime,
    assert_no_cgroup,
    base_config,
    cgroup_dir,
    mounts_under,
    processes_rooted_in,
)

pytestmark = pytest.mark.integration

RUNC = "/usr/sbin/runc"


class RuncRuntime(Runtime):
    """runc with the same call shape as tests.helpers.Runtime."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.cmd = [RUNC]


@pytest.fixture(params=["pyoci", "runc"])
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    if request.param == "runc":
        if not os.access(RUNC, os.X_OK):
            pytest.skip(f"runc is not installed at {RUNC} (apt-get install runc)")
        side: Runtime = RuncRuntime(tmp_path / "runc-state")
    else:
        side = Runtime(tmp_path / "pyoci-state")
    yield side
    if side.root.exists():
        for cid in os.listdir(side.root):
            side("delete", "--force", cid)


@pytest.fixture
def cid() -> str:
    return f"contract-{uuid.uuid4().hex[:10]}"


def make_bundle(bundle: Bundle, cid: str, args: list[str],
                **linux: Any) -> Bundle:
    cfg = base_config(args=args)
    cfg["linux"]["cgroupsPath"] = f"pyoci-contract-{cid}"
    cfg["linux"].update(linux)
    return bundle.write(cfg)


def wait_status(rt: Runtime, cid: str, want: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        res = rt("state", cid)
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout)
        if doc["status"] == want or time.monotonic() > deadline:
            assert doc["status"] == want, doc
            return doc
        time.sleep(0.05)


def started(rt: Runtime, bundle: Bundle, cid: str, args: list[str], **linux: Any) -> None:
    make_bundle(bundle, cid, args, **linux)
    rt("create", "-b", str(bundle.path), cid, check=True)
    rt("start", cid, check=True)


def stopped(rt: Runtime, bundle: Bundle, cid: str) -> None:
    """A container whose init exited on its own (containerd's shim sees the exit)."""
    started(rt, bundle, cid, ["/bin/true"])
    wait_status(rt, cid, "stopped")


def gone(rt: Runtime, bundle: Bundle, cid: str) -> None:
    assert rt("delete", "--force", cid).returncode == 0
    assert not (rt.root / cid).exists()
    assert mounts_under(bundle.path) == []
    assert processes_rooted_in(bundle.path) == []
    assert_no_cgroup(f"pyoci-contract-{cid}")


def message(res: Any) -> str:
    """What go-runc hands the shim: the runtime's combined stdout and stderr."""
    return res.stdout + res.stderr


# --- kill -------------------------------------------------------------------------------

def test_kill_all_of_stopped_container_succeeds(rt: Runtime, bundle: Bundle, cid: str) -> None:
    """containerd's shim: `kill --all ID 9` after the init exited (KillAll); an error there
    and the CRI plugin never handles the exit (issue 12, defect 1)."""
    stopped(rt, bundle, cid)
    res = rt("kill", "--all", cid, "9")
    assert res.returncode == 0, message(res)
    assert rt("kill", "--all", cid, "KILL").returncode == 0
    gone(rt, bundle, cid)


def test_kill_of_stopped_container_says_container_not_running(
        rt: Runtime, bundle: Bundle, cid: str) -> None:
    """containerd's shim (checkKillError) maps "container not running" to "process already
    finished"; Docker's daemon/kill.go then waits for the exit instead of failing."""
    stopped(rt, bundle, cid)
    for sig in ("9", "SIGTERM", "0"):
        res = rt("kill", cid, sig)
        assert res.returncode == 1
        assert "container not running" in message(res)
    gone(rt, bundle, cid)


def test_kill_all_reaches_what_outlives_the_init(rt: Runtime, bundle: Bundle,
                                                 cid: str) -> None:
    """Why the shim runs `kill --all` at all: without a pid namespace of its own (a
    Kubernetes container in its pod's pid namespace) the init's children outlive it."""
    make_bundle(bundle, cid, ["/bin/sh", "-c", "sleep 600 & exit 0"],
                namespaces=[{"type": t} for t in ("network", "ipc", "uts", "mount")])
    rt("create", "-b", str(bundle.path), cid, check=True)
    rt("start", cid, check=True)
    wait_status(rt, cid, "stopped")
    procs = cgroup_dir(f"pyoci-contract-{cid}", "pids") / "cgroup.procs"
    left = procs.read_text().split()
    assert len(left) == 1, f"the background sleep is not alone in the cgroup: {left}"
    assert rt("kill", "--all", cid, "9").returncode == 0
    deadline = time.monotonic() + 5
    while procs.read_text().split() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert procs.read_text().split() == []
    gone(rt, bundle, cid)


def test_kill_signal_zero_probes_a_live_container(rt: Runtime, bundle: Bundle,
                                                  cid: str) -> None:
    """runc passes any number to kill(2); 0 only checks the init exists."""
    started(rt, bundle, cid, ["/bin/sleep", "600"])
    assert rt("kill", cid, "0").returncode == 0
    assert rt("state", cid, check=True).returncode == 0
    wait_status(rt, cid, "running")
    gone(rt, bundle, cid)


def test_sigkill_of_paused_container_stops_it(rt: Runtime, bundle: Bundle, cid: str) -> None:
    """runc thaws after SIGKILL (v1 freezer: a frozen task dies only once thawed):
    `docker kill`/`podman kill` of a paused container must end it."""
    started(rt, bundle, cid, ["/bin/sleep", "600"])
    rt("pause", cid, check=True)
    wait_status(rt, cid, "paused")
    assert rt("kill", cid, "9").returncode == 0
    wait_status(rt, cid, "stopped")
    gone(rt, bundle, cid)


# --- a container that does not exist ----------------------------------------------------

@pytest.mark.parametrize("args", [
    ("kill", "{id}", "9"), ("kill", "--all", "{id}", "9"), ("state", "{id}"),
    ("delete", "{id}"), ("start", "{id}"), ("pause", "{id}"), ("resume", "{id}"),
    ("ps", "--format", "json", "{id}"), ("update", "--pids-limit", "10", "{id}"),
    ("events", "--stats", "{id}"), ("exec", "{id}", "/bin/true"),
], ids=lambda a: " ".join(a[:-1] if a[-1] == "{id}" else a).replace("{id}", "ID"))
def test_missing_container_does_not_exist(rt: Runtime, cid: str, args: tuple[str, ...]) -> None:
    """containerd's shim: "does not exist" is "no such container" on kill (checkKillError)
    and no error at all on delete (Init.delete); podman's updateContainerStatus marks the
    container exited on it. runc's text: "container does not exist"; runc's exec exits 255
    for it, every other command 1."""
    res = rt(*(a.replace("{id}", cid) for a in args))
    assert res.returncode == (255 if args[0] == "exec" and isinstance(rt, RuncRuntime) else 1)
    assert "does not exist" in message(res)
    assert not (rt.root / cid).exists()


def test_force_delete_of_missing_container_succeeds(rt: Runtime, cid: str) -> None:
    """podman's cleanup runs `delete --force ID` after a create that left nothing."""
    res = rt("delete", "--force", cid)
    assert res.returncode == 0, message(res)


# --- state and ps of a stopped container ------------------------------------------------

def test_stopped_container_state_and_ps(rt: Runtime, bundle: Bundle, cid: str) -> None:
    """containerd's shim and podman read `state` (status "stopped", pid 0) until delete;
    the shim's Pids parses `ps --format json` (runc prints null, pyoci [])."""
    stopped(rt, bundle, cid)
    doc = wait_status(rt, cid, "stopped")
    assert doc["pid"] == 0 and doc["id"] == cid
    res = rt("ps", "--format", "json", cid)
    assert res.returncode == 0, message(res)
    assert json.loads(res.stdout) in (None, [])
    gone(rt, bundle, cid)


# --- operations the lifecycle forbids: exit 1 with a message ----------------------------

def test_forbidden_operations_fail(rt: Runtime, bundle: Bundle, cid: str) -> None:
    """Exit status 1 and the reason on stderr (go-runc returns it, podman prints it)."""
    started(rt, bundle, cid, ["/bin/sleep", "600"])
    for args in (("start", cid), ("resume", cid), ("delete", cid)):
        res = rt(*args)
        assert res.returncode == 1 and res.stderr.strip(), (args, message(res))
    wait_status(rt, cid, "running")  # the failed delete did nothing
    rt("pause", cid, check=True)
    res = rt("pause", cid)
    assert res.returncode == 1 and "container not running" in message(res) \
        if isinstance(rt, RuncRuntime) else res.returncode == 1
    rt("resume", cid, check=True)
    rt("kill", cid, "9", check=True)
    wait_status(rt, cid, "stopped")
    for args in (("start", cid), ("pause", cid), ("resume", cid),
                 ("update", "--pids-limit", "10", cid)):
        res = rt(*args)
        assert res.returncode == 1 and res.stderr.strip(), (args, message(res))
    gone(rt, bundle, cid)


# --- where messages go -------------------------------------------------------------------

def test_error_goes_to_stderr_and_log(rt: Runtime, bundle: Bundle, cid: str,
                                      tmp_path: Path) -> None:
    """containerd's shim passes `--log FILE --log-format json`: its runtimeError reads the
    last level=error line of FILE (getLastRuntimeError) and go-runc's error carries stderr,
    which is what checkKillError matches. Both must hold the fatal error."""
    stopped(rt, bundle, cid)
    log = tmp_path / f"{rt.cmd[-1].replace('/', '_')}-log.json"
    res = rt("kill", cid, "9", global_args=("--log", str(log), "--log-format", "json"))
    assert res.returncode == 1
    assert "container not running" in res.stderr
    errors = [json.loads(line) for line in log.read_text().splitlines()]
    errors = [e for e in errors if e["level"] == "error"]
    assert errors and "container not running" in errors[-1]["msg"]
    assert {"level", "msg", "time"} <= set(errors[-1])
    gone(rt, bundle, cid)


# --- the runtime's messages stay off the container's stdio (issue 12, defect 3) ---------
#
# During `create` the runtime's stderr is the container's own stderr under Docker
# (containerd's shim) and podman (conmon): with --log, warnings go only there.

def warning_config(bundle: Bundle, cid: str, pyoci_only: bool) -> Bundle:
    """A config that triggers each create-time warning pyoci has: an unknown capability,
    an ambient capability the kernel cannot raise (a debug line), a relative mount
    destination, a seccomp call libseccomp does not know, kernel memory (pyoci only:
    runc 1.1 fails on a kernel without kmem files)."""
    make_bundle(bundle, cid, ["/bin/true"])
    cfg = bundle.config
    cfg["process"]["capabilities"] = {
        "bounding": ["CAP_KILL", "CAP_MADE_UP"], "effective": ["CAP_KILL"],
        "permitted": ["CAP_KILL"], "ambient": ["CAP_KILL"]}
    cfg["mounts"].append({"destination": "relative-tmp", "type": "tmpfs", "source": "tmpfs"})
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mseal_made_up", "mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    if pyoci_only:
        cfg["linux"]["resources"] = {"memory": {"kernel": 64 << 20}}
    return bundle.write()


def log_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] \
        if path.exists() else []


def test_create_with_log_keeps_warnings_off_stderr(rt: Runtime, bundle: Bundle, cid: str,
                                                   tmp_path: Path) -> None:
    pyoci = not isinstance(rt, RuncRuntime)
    warning_config(bundle, cid, pyoci)
    log = tmp_path / "create-log.json"
    res = rt("create", "-b", str(bundle.path), cid,
             global_args=("--log", str(log), "--log-format", "json"))
    assert res.returncode == 0, message(res)
    assert res.stderr == "" and res.stdout == ""
    if pyoci:
        warnings = " | ".join(e["msg"] for e in log_lines(log) if e["level"] == "warning")
        for word in ("CAP_MADE_UP", "relative-tmp", "mseal_made_up", "kernel"):
            assert word in warnings, warnings
        assert "ambient" not in warnings  # a debug line only
    gone(rt, bundle, cid)


def test_warnings_go_to_stderr_without_log(bundle: Bundle, cid: str, tmp_path: Path) -> None:
    runtime = Runtime(tmp_path / "state")
    warning_config(bundle, cid, True)
    res = runtime("create", "-b", str(bundle.path), cid)
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    for word in ("CAP_MADE_UP", "relative-tmp", "mseal_made_up", "kernel"):
        assert any("warning: " in ln and word in ln for ln in lines), res.stderr
    assert "ambient" not in res.stderr
    gone(runtime, bundle, cid)


def test_debug_lines_go_to_the_log_only(bundle: Bundle, cid: str, tmp_path: Path) -> None:
    runtime = Runtime(tmp_path / "state")
    warning_config(bundle, cid, True)
    log = tmp_path / "debug-log.json"
    res = runtime("create", "-b", str(bundle.path), cid,
                  global_args=("--debug", "--log", str(log), "--log-format", "json"))
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    debug = [e["msg"] for e in log_lines(log) if e["level"] == "debug"]
    assert any("process.capabilities.ambient: CAP_KILL" in m for m in debug), debug
    gone(runtime, bundle, cid)


# --- newer engines' profiles (issue 12, defect 4) -----------------------------------------

#: Calls in Docker's and podman's current default profiles that are newer than many hosts'
#: libseccomp (2.5.4 knows none of them).
NEWER_CALLS = ("mseal", "listmount", "statmount", "lsm_get_self_attr", "lsm_list_modules",
               "lsm_set_self_attr")


def known_syscalls() -> list[str]:
    """Every name this host's libseccomp resolves for the native architecture."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("seccomp")
    if name is None:
        pytest.skip("libseccomp is not installed")
    lib = ctypes.CDLL(name)
    resolve = lib.seccomp_syscall_resolve_num_arch
    resolve.argtypes = [ctypes.c_uint32, ctypes.c_int]
    resolve.restype = ctypes.c_char_p  # leaks a few KiB once: fine in a test
    lib.seccomp_arch_native.restype = ctypes.c_uint32
    arch = lib.seccomp_arch_native()
    return sorted({n.decode() for n in map(lambda i: resolve(arch, i), range(1024)) if n})


def docker_shaped_profile() -> dict[str, Any]:
    """The shape Docker sends (moby profiles/seccomp/default.json, rendered for the OCI
    config): default ERRNO(EPERM), one long allow list that names calls newer than this
    libseccomp, personality allowed for one argument value only."""
    names = [n for n in known_syscalls() if n != "personality"]
    profile: dict[str, Any] = {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "syscalls": [
            {"names": [*names, *NEWER_CALLS], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
        ]}
    if os.uname().machine == "x86_64":
        profile["architectures"] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    return profile


def test_docker_default_profile_shape_with_mseal_runs(rt: Runtime, bundle: Bundle, cid: str,
                                                      tmp_path: Path) -> None:
    """Docker exited 125 and podman 126 on pyoci's refusal; runc skips such names."""
    known = set(known_syscalls())
    make_bundle(bundle, cid, ["/bin/sh", "-c", "echo ran; mkdir /made && echo made"],
                seccomp=docker_shaped_profile())
    log = tmp_path / "seccomp-log.json"
    res = rt("run", "-b", str(bundle.path), cid,
             global_args=("--log", str(log), "--log-format", "json"))
    assert res.returncode == 0, message(res)
    assert res.stdout.split() == ["ran", "made"]
    assert res.stderr == ""
    if not isinstance(rt, RuncRuntime):
        warned = " ".join(e["msg"] for e in log_lines(log) if e["level"] == "warning")
        for name in NEWER_CALLS:
            assert (name in warned) == (name not in known), warned
    gone(rt, bundle, cid)


def test_validate_lists_skipped_names_as_warnings(bundle: Bundle, tmp_path: Path) -> None:
    runtime = Runtime(tmp_path / "state")
    cfg = base_config()
    cfg["process"]["capabilities"] = {"bounding": ["CAP_KILL", "CAP_MADE_UP"]}
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mseal_made_up"], "action": "SCMP_ACT_ERRNO"}]}
    bundle.write(cfg)
    res = runtime("validate", "--bundle", str(bundle.path))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[-1].endswith("config.json is valid")
    assert any("warning: process.capabilities.bounding[1]: CAP_MADE_UP" in ln
               for ln in lines), lines
    assert any("warning: linux.seccomp.syscalls[0].names[1]: mseal_made_up" in ln
               for ln in lines), lines
    assert res.stderr == ""
    cfg["linux"]["seccomp"]["syscalls"][0]["action"] = "SCMP_ACT_MADE_UP"
    bundle.write(cfg)
    res = runtime("validate", "--bundle", str(bundle.path))
    assert res.returncode == 1
    assert "linux.seccomp.syscalls[0].action" in res.stderr
