"""The features document against the real kernel: what it offers works here, and the one
host-dependent cgroup entry (rdma) matches what pyoci does with a container.

cgroup.v1/v2 are not checked against the host: features-linux.md defines them as what
the runtime supports, "irrelevant to the cgroup version of the host", and pyoci's manager
drives v1, v2 and hybrid layouts alike (tests/integration/test_cgroup_layouts.py runs
containers on all three), so both are true on every host.

Forked children do the namespace and seccomp work: nothing here changes the test
process, and each wait is bounded.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pyoci import libseccomp as lib
from pyoci import syscalls as sc
from pyoci.config.loader import load_seccomp
from pyoci.executors import seccomp as sec
from pyoci.operations import features
from tests.helpers import Bundle, Runtime, assert_nothing_left, base_config

pytestmark = pytest.mark.integration

TIMEOUT = 10.0

#: config-linux.md namespace type -> CLONE_NEW* (<linux/sched.h>), written out here so the
#: test does not take pyoci's own table on trust.
CLONE_FLAGS = {"mount": 0x00020000, "cgroup": 0x02000000, "uts": 0x04000000,
               "ipc": 0x08000000, "user": 0x10000000, "pid": 0x20000000,
               "network": 0x40000000, "time": 0x00000080}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return features.features_document()


def in_child(body: Callable[[], object]) -> str:
    """Run ``body`` in a forked child; "" when it returned, else what it raised."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 1
        try:
            os.close(r)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            body()
            code = 0
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            os.write(w, f"{type(exc).__name__}: {exc}".encode())
        finally:
            os._exit(code)
    os.close(w)
    deadline = time.monotonic() + TIMEOUT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the child did not finish in time")
        time.sleep(0.01)
    with os.fdopen(r, "rb") as f:
        message = f.read().decode()
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return message if os.WEXITSTATUS(status) else ""


# --- namespaces -------------------------------------------------------------------------

def test_every_listed_namespace_can_be_created(doc: dict[str, Any]) -> None:
    assert doc["linux"]["namespaces"], "no namespace listed"
    for nstype in doc["linux"]["namespaces"]:
        assert in_child(lambda t=nstype: sc.unshare(CLONE_FLAGS[t])) == "", nstype


# --- seccomp ----------------------------------------------------------------------------

needs_libseccomp = pytest.mark.skipif(not lib.available(), reason="libseccomp is not installed")


def _load_in_child(profile: dict[str, Any]) -> str:
    spec = load_seccomp(profile)
    assert spec is not None
    flt = sec.compile_filter(spec)
    try:
        return in_child(flt.load)
    finally:
        flt.release()


@needs_libseccomp
def test_every_supported_flag_loads_on_this_kernel(doc: dict[str, Any]) -> None:
    for flag in doc["linux"]["seccomp"]["supportedFlags"]:
        assert _load_in_child({"defaultAction": "SCMP_ACT_ALLOW", "flags": [flag]}) == "", flag


@needs_libseccomp
def test_every_listed_action_and_arch_loads_on_this_kernel(doc: dict[str, Any]) -> None:
    s = doc["linux"]["seccomp"]
    # acct(2) is never called by the child: the rules are installed, not triggered.
    rules = [{"names": ["acct"], "action": a} for a in s["actions"] if a != "SCMP_ACT_ALLOW"]
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": s["archs"],
               "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}]}
    assert _load_in_child(profile) == "", s["archs"]
    for rule in rules:
        profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}
        if rule["action"] == "SCMP_ACT_NOTIFY":
            profile["listenerPath"] = "/nonexistent/agent.sock"
        assert _load_in_child(profile) == "", rule["action"]


# --- cgroup rdma ------------------------------------------------------------------------

def _host_has_rdma() -> bool:
    """Read independently of pyoci's detection: a v1 cgroup mount carrying rdma, or a
    cgroup2 mount whose root offers it."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fstype, _src, superopts = post.split()[:3]
            point = pre.split()[4]
            if fstype == "cgroup" and "rdma" in superopts.split(","):
                return True
            if fstype == "cgroup2":
                try:
                    ctrls = Path(point, "cgroup.controllers").read_text().split()
                except OSError:
                    continue
                if "rdma" in ctrls:
                    return True
    return False


def test_rdma_matches_the_host(doc: dict[str, Any]) -> None:
    assert doc["linux"]["cgroup"]["rdma"] is _host_has_rdma()


def test_rdma_off_means_pyoci_refuses_rdma_limits(doc: dict[str, Any], runtime: Runtime,
                                                  bundle: Bundle) -> None:
    if doc["linux"]["cgroup"]["rdma"]:
        pytest.skip("this host has the rdma controller (a limit needs a real RDMA device)")
    cfg = base_config(args=["true"])
    cfg["linux"]["resources"] = {"rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 1000}}}
    bundle.write(cfg)
    res = runtime("create", "-b", str(bundle.path), "feat-rdma")
    assert res.returncode == 1
    assert "linux.resources.rdma" in res.stderr and "rdma" in res.stderr, res.stderr
    assert_nothing_left(runtime, "feat-rdma", bundle)


# --- the command ------------------------------------------------------------------------

def test_cli_prints_the_document(runtime: Runtime) -> None:
    res = runtime("features")
    if res.returncode != 0 and "No such command" in res.stderr:
        pytest.skip("this build's CLI has no `features` command yet")
    assert res.returncode == 0, res.stderr
    assert res.stdout == features.features_json() + "\n"
    assert json.loads(res.stdout) == features.features_document()
