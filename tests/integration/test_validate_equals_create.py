"""`validate` and `create` give the same verdict and the same message on every config
problem (issue 14 item 1): both run pyoci/config/check.py. Before it, validate passed a
config with linux.intelRdt, linux.memoryPolicy, an id-mapped mount, a label for an LSM the
host does not run, a bad netDevices or bridge request and a profile libseccomp refuses,
all of which create refused. The table walks each refusal of the checker's stages (and a
sample of the schema's and semantic rules'); create must also leave nothing behind."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Bundle, Runtime, assert_nothing_left, base_config

pytestmark = pytest.mark.integration

_APPARMOR = Path("/sys/kernel/security/apparmor").exists()
_SELINUX = Path("/sys/fs/selinux/enforce").exists()


def _ns(kind: str) -> Callable[[dict[str, Any]], None]:
    def drop(cfg: dict[str, Any]) -> None:
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"]
                                      if n["type"] != kind]
    return drop


def _seccomp(**rule: Any) -> Callable[[dict[str, Any]], None]:
    def add(cfg: dict[str, Any]) -> None:
        cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", **rule}]}
    return add


def _idmapped(cfg: dict[str, Any]) -> None:
    cfg["mounts"].append({"destination": "/m", "type": "bind", "source": "/tmp",
                          "options": ["rbind"],
                          "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}],
                          "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]})


#: id -> (mutation of base_config(), text both must print, skip reason or "")
CASES: dict[str, tuple[Callable[[dict[str, Any]], None], str, str]] = {
    # stage 1: the schema, the semantic rules, what this build does not implement
    "schema": (lambda c: c["process"]["user"].update(uid=-1),
               "process.user.uid: expected a number >= 0", ""),
    "semantic": (lambda c: c["linux"]["namespaces"].append({"type": "pid"}),
                 "namespace 'pid' is listed more than once", ""),
    "no-mount-namespace": (_ns("mount"), "mounts: there is no mount namespace", ""),
    "rlimit": (lambda c: c["process"].update(rlimits=[
        {"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]), "unknown rlimit 'RLIMIT_BOGUS'", ""),
    "intelRdt": (lambda c: c["linux"].update(intelRdt={"closID": "x"}), "linux.intelRdt: ",
                 ""),
    "memoryPolicy": (lambda c: c["linux"].update(memoryPolicy={"mode": "MPOL_BIND",
                                                               "nodes": "0"}),
                     "linux.memoryPolicy: NUMA memory policies are not applied", ""),
    "id-mapped-mount": (_idmapped, "mounts[5]: id-mapped mounts", ""),
    # stage 2: what this host must provide
    "apparmor": (lambda c: c["process"].update(apparmorProfile="docker-default"),
                 "process.apparmorProfile: AppArmor is not enabled",
                 "this host runs AppArmor" if _APPARMOR else ""),
    "selinux": (lambda c: c["linux"].update(mountLabel="system_u:object_r:x_t:s0"),
                "linux.mountLabel: SELinux is not enabled",
                "this host runs SELinux" if _SELINUX else ""),
    "netDevices": (lambda c: (_ns("network")(c), c["linux"].update(
        netDevices={"dummy0": {}})), "linux.netDevices: the container has no network", ""),
    "bridge-name": (lambda c: c.update(annotations={"org.pyoci.network": "a/b"}),
                    "annotations.org.pyoci.network: ", ""),
    "seccomp": (_seccomp(errnoRet=1, action="SCMP_ACT_ALLOW"),
                "linux.seccomp.syscalls[0].errnoRet: SCMP_ACT_ALLOW does not return", ""),
}


def _verdicts(runtime: Runtime, bundle: Bundle, cid: str) -> tuple[Any, Any]:
    validate = runtime("validate", "--bundle", str(bundle.path))
    create = runtime("create", "--bundle", str(bundle.path), cid)
    return validate, create


@pytest.mark.parametrize("case", list(CASES))
def test_validate_and_create_agree(runtime: Runtime, bundle: Bundle, case: str) -> None:
    mutate, needle, skip = CASES[case]
    if skip:
        pytest.skip(skip)
    cfg = base_config()
    mutate(cfg)
    bundle.write(cfg)
    cid = f"ove-{case}-{uuid.uuid4().hex[:8]}"
    validate, create = _verdicts(runtime, bundle, cid)
    assert validate.returncode == create.returncode == 1, (validate, create)
    assert needle in create.stderr, create.stderr
    assert validate.stderr == create.stderr
    assert "Traceback" not in create.stderr
    assert_nothing_left(runtime, cid, bundle)


def test_every_problem_at_once_in_both(runtime: Runtime, bundle: Bundle) -> None:
    """One run lists the document's and the host's problems together, in both commands."""
    cfg = base_config()
    for case in ("semantic", "intelRdt", "memoryPolicy", "bridge-name", "seccomp"):
        CASES[case][0](cfg)
    bundle.write(cfg)
    cid = f"ove-all-{uuid.uuid4().hex[:8]}"
    validate, create = _verdicts(runtime, bundle, cid)
    assert validate.returncode == create.returncode == 1
    assert validate.stderr == create.stderr
    for case in ("semantic", "intelRdt", "memoryPolicy", "seccomp"):
        assert CASES[case][1] in create.stderr, (case, create.stderr)
    assert_nothing_left(runtime, cid, bundle)


def test_warnings_are_not_errors_in_either(runtime: Runtime, bundle: Bundle) -> None:
    """What create skips with a warning, validate lists as a warning: both succeed."""
    cfg = base_config()
    cfg["process"]["capabilities"] = {"bounding": ["CAP_KILL", "CAP_MADE_UP"]}
    bundle.write(cfg)
    cid = f"ove-warn-{uuid.uuid4().hex[:8]}"
    validate, create = _verdicts(runtime, bundle, cid)
    assert validate.returncode == 0 and create.returncode == 0, (validate, create)
    assert "warning: process.capabilities.bounding[1]: CAP_MADE_UP" in validate.stdout
    assert "CAP_MADE_UP" in create.stderr
    runtime("delete", "--force", cid, check=True)
    assert_nothing_left(runtime, cid, bundle)
