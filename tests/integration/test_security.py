"""Seccomp, LSM labels, Intel RDT and user namespaces through real containers
(config-linux.md "Seccomp", "User namespace mappings"; config.md apparmorProfile,
selinuxLabel; config-linux.md mountLabel, intelRdt)."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REFERENCE_CONFIGS, Bundle, Runtime, assert_nothing_left, base_config

pytestmark = pytest.mark.integration


def _sh(script: str, **linux: Any) -> dict[str, Any]:
    cfg = base_config(args=["sh", "-c", script])
    cfg["linux"].update(linux)
    return cfg


def _run(runtime: Runtime, bundle: Bundle, cid: str, cfg: dict[str, Any]) -> str:
    bundle.write(cfg)
    res = runtime("run", "-b", str(bundle.path), cid)
    assert res.returncode == 0, res.stdout + res.stderr
    assert_nothing_left(runtime, cid, bundle)
    return res.stdout


# ----------------------------------------------------------------------------- seccomp

@pytest.mark.parametrize("nnp", [False, True])
def test_seccomp_errno_is_what_the_process_sees(runtime: Runtime, bundle: Bundle,
                                                nnp: bool) -> None:
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": 38}]}
    cfg = _sh("mkdir /tmp/x; echo rc=$?; grep ^Seccomp: /proc/self/status", seccomp=seccomp)
    cfg["process"]["noNewPrivileges"] = nnp
    bundle.write(cfg)
    res = runtime("run", "-b", str(bundle.path), f"sc-errno-{nnp}")
    assert res.returncode == 0, res.stderr
    assert "Function not implemented" in res.stderr  # errno 38 = ENOSYS
    assert "rc=1" in res.stdout and "Seccomp:\t2" in res.stdout


def test_seccomp_default_errno_with_allow_list(runtime: Runtime, bundle: Bundle) -> None:
    profile = json.loads((REFERENCE_CONFIGS / "podman-run-default.json").read_text()) \
        if REFERENCE_CONFIGS.exists() else None
    if profile is None:
        pytest.skip("../shared/reference/configs is not next to this checkout")
    cfg = _sh("echo ok; swapoff /x; echo swapoff=$?",
              seccomp=profile["linux"]["seccomp"])
    out = _run(runtime, bundle, "sc-podman", cfg)
    # podman's profile answers swapoff with EPERM (errnoRet 1) and allows echo's write.
    assert out.splitlines() == ["ok", "swapoff=1"], out


def test_seccomp_kill_process(runtime: Runtime, bundle: Bundle) -> None:
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]}
    bundle.write(_sh("echo before; exec mkdir /tmp/k", seccomp=seccomp))
    res = runtime("run", "-b", str(bundle.path), "sc-kill")
    assert res.stdout == "before\n"
    assert res.returncode == 128 + 31, (res.returncode, res.stderr)  # SIGSYS
    assert_nothing_left(runtime, "sc-kill", bundle)


def test_unknown_syscall_name_is_skipped_with_a_clear_warning(runtime: Runtime,
                                                             bundle: Bundle) -> None:
    """runc skips names libseccomp does not know (issue 12, defect 4: Docker's and podman's
    current profiles name mseal); pyoci warns, naming the call and its JSON path, and
    still applies the rest of the rule."""
    cfg = _sh("mkdir /tmp/d; echo rc=$?", seccomp={
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat", "no_such_call"],
                      "action": "SCMP_ACT_ERRNO"}]})
    bundle.write(cfg)
    res = runtime("run", "-b", str(bundle.path), "sc-unknown")
    assert res.returncode == 0, res.stderr
    assert res.stdout.endswith("rc=1\n")
    assert "warning: linux.seccomp: ignoring system calls" in res.stderr
    assert "no_such_call (linux.seccomp.syscalls[0].names[2])" in res.stderr
    assert_nothing_left(runtime, "sc-unknown", bundle)


def test_seccomp_notify_goes_to_the_listener(runtime: Runtime, bundle: Bundle,
                                             tmp_path: Path) -> None:
    """config-linux.md "Seccomp": with SCMP_ACT_NOTIFY the runtime sends the container
    process state with the notify fd to listenerPath. The listener here closes the fd,
    after which the kernel fails the notified syscall with ENOSYS."""
    path = str(tmp_path / "agent.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    server.settimeout(30)
    got: dict[str, Any] = {}

    def agent() -> None:
        conn, _ = server.accept()
        with conn:
            msg, fds, _flags, _addr = socket.recv_fds(conn, 65536, 4)
            got["msg"] = json.loads(msg)
            got["nfds"] = len(fds)
            for fd in fds:
                os.close(fd)

    thread = threading.Thread(target=agent)
    thread.start()
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path,
               "listenerMetadata": "hello-agent",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}
    bundle.write(_sh("mkdir /tmp/n; echo rc=$?", seccomp=seccomp))
    res = runtime("run", "-b", str(bundle.path), "sc-notify", timeout=60)
    thread.join(30)
    server.close()
    assert res.returncode == 0, res.stderr
    assert "rc=1" in res.stdout
    msg = got["msg"]
    assert got["nfds"] == 1 and msg["fds"] == ["seccompFd"]
    assert msg["metadata"] == "hello-agent" and msg["pid"] > 0
    assert msg["state"]["id"] == "sc-notify" and msg["state"]["pid"] == msg["pid"]
    assert_nothing_left(runtime, "sc-notify", bundle)


# ------------------------------------------------------------------------ LSM and RDT

@pytest.mark.parametrize(("where", "field", "value", "needle"), [
    ("process", "apparmorProfile", "docker-default", "AppArmor is not enabled"),
    ("process", "selinuxLabel", "system_u:system_r:container_t:s0", "SELinux is not enabled"),
    ("linux", "mountLabel", "system_u:object_r:container_file_t:s0", "SELinux is not enabled"),
    ("linux", "intelRdt", {"closID": "x", "l3CacheSchema": "L3:0=f"}, "linux.intelRdt"),
])
def test_lsm_or_rdt_the_host_lacks_is_an_error(runtime: Runtime, bundle: Bundle, where: str,
                                               field: str, value: Any, needle: str) -> None:
    if field == "apparmorProfile" and Path("/sys/kernel/security/apparmor").exists():
        pytest.skip("this host runs AppArmor")
    if field != "apparmorProfile" and field != "intelRdt" and Path("/sys/fs/selinux/enforce") \
            .exists():
        pytest.skip("this host runs SELinux")
    if field == "intelRdt" and Path("/sys/fs/resctrl/info").exists():
        pytest.skip("this host has resctrl")
    cfg = base_config()
    cfg[where][field] = value
    bundle.write(cfg)
    res = runtime("create", "-b", str(bundle.path), "lsm")
    assert res.returncode == 1
    assert needle in res.stderr and f"{where}.{field}" in res.stderr, res.stderr
    assert_nothing_left(runtime, "lsm", bundle)


# ---------------------------------------------------------------------- user namespace

def test_user_namespace_dev_owned_by_mapped_root(runtime: Runtime, open_bundle: Bundle) -> None:
    """In a new user namespace /dev and what the runtime mounts there belong to the
    container's root (host uid 200000); devices mknod cannot make are bound from the host
    and work; setgroups stays allowed for a runtime run by root, so additionalGids apply."""
    bundle = open_bundle
    cfg = _sh("stat -c '%u %g %n' /dev /dev/shm; echo x > /dev/null && echo null-ok; "
              "cat /proc/self/setgroups; id -G")
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    cfg["process"]["user"] = {"uid": 0, "gid": 0, "additionalGids": [5, 7]}
    out = _run(runtime, bundle, "userns-dev", cfg).splitlines()
    assert out == ["0 0 /dev", "0 0 /dev/shm", "null-ok", "allow", "0 5 7"], out
