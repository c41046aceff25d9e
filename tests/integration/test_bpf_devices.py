"""The cgroup v2 device program on the real kernel: a process in a cgroup with the program
attached can open exactly the devices the rules allow, and installing again replaces the
program (one attached, the new rules in force)."""

from __future__ import annotations

import errno
import json
import os
import secrets
import struct
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from pyoci import syscalls as sc
from pyoci.cgroups import CgroupError
from pyoci.cgroups.bpf_devices import attached_count, install
from pyoci.config.model import DeviceRule

pytestmark = pytest.mark.integration

# Opens each [path, flags] it is sent and answers "ok" or the errno name, one JSON line per
# request line; exits at EOF. It is moved into the cgroup only after it started.
CHILD = """
import json, os, sys, errno
for line in sys.stdin:
    out = []
    for path, flags in json.loads(line):
        try:
            os.close(os.open(path, flags))
            out.append("ok")
        except OSError as exc:
            out.append(errno.errorcode[exc.errno])
    print(json.dumps(out), flush=True)
"""


def _cgroup2_mount() -> str | None:
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if fields[2] == "cgroup2":
                return fields[1]
    return None


def _own_cgroup2() -> str:
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    raise AssertionError("no cgroup2 line in /proc/self/cgroup")


@pytest.fixture
def cgroup() -> Iterator[str]:
    mount = _cgroup2_mount()
    if mount is None:
        pytest.skip("cgroup2 is not mounted")
    path = os.path.join(mount, _own_cgroup2().lstrip("/"),
                        f"pyoci-bpf-{os.getpid()}-{secrets.token_hex(3)}")
    os.mkdir(path)
    try:
        yield path
    finally:
        for _ in range(50):  # the last member may take a moment to leave after its exit
            try:
                os.rmdir(path)
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                time.sleep(0.1)
        assert not os.path.exists(path)


class Prober:
    """A child process in ``cgroup`` that reports what it may open."""

    def __init__(self, cgroup: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as procs:
            procs.write(str(self.proc.pid))

    def open(self, *requests: tuple[str, int]) -> list[str]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(requests) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def prober(cgroup: str) -> Iterator[Prober]:
    p = Prober(cgroup)
    try:
        yield p
    finally:
        p.close()


def rule(allow: bool, t: str = "a", major: int | None = None, minor: int | None = None,
         access: str = "rwm") -> DeviceRule:
    return DeviceRule(allow, t, major, minor, access)


NULL_RW = ("/dev/null", os.O_RDWR)
NULL_RO = ("/dev/null", os.O_RDONLY)
NULL_WO = ("/dev/null", os.O_WRONLY)
ZERO_RO = ("/dev/zero", os.O_RDONLY)
ZERO_RW = ("/dev/zero", os.O_RDWR)


def test_rules_decide_and_install_replaces(cgroup: str, prober: Prober) -> None:
    install(cgroup, [rule(False), rule(True, "c", 1, 3, "rw")])
    assert attached_count(cgroup) == 1
    assert prober.open(NULL_RW, ZERO_RO) == ["ok", "EPERM"]

    install(cgroup, [rule(False), rule(True, "c", 1, 5, "r")])
    assert attached_count(cgroup) == 1
    # /dev/zero now, read only: an O_RDWR open asks for rw at once and is refused.
    assert prober.open(NULL_RW, NULL_RO, ZERO_RO, ZERO_RW) == ["EPERM", "EPERM", "ok", "EPERM"]

    # Allow-all with a write denied: as on v1, any denied bit of the request refuses it.
    install(cgroup, [rule(True), rule(False, "c", 1, 3, "w")])
    assert attached_count(cgroup) == 1
    assert prober.open(NULL_RO, NULL_WO, NULL_RW, ZERO_RW) == ["ok", "EPERM", "EPERM", "ok"]


def test_empty_list_denies_every_device(cgroup: str, prober: Prober) -> None:
    assert prober.open(NULL_RW, ZERO_RO) == ["ok", "ok"]  # nothing attached yet
    install(cgroup, [])
    assert prober.open(NULL_RW, NULL_RO, ZERO_RO) == ["EPERM", "EPERM", "EPERM"]


def test_replaces_a_program_attached_without_allow_multi(cgroup: str, prober: Prober) -> None:
    deny_all = struct.pack("=BBhi", 0xB4, 0, 0, 0) + struct.pack("=BBhi", 0x95, 0, 0, 0)
    prog = sc.bpf_prog_load(sc.BPF_PROG_TYPE_CGROUP_DEVICE, deny_all, "GPL", "foreign")
    dirfd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
    try:
        sc.bpf_prog_attach(dirfd, prog, sc.BPF_CGROUP_DEVICE, 0)
    finally:
        os.close(prog)
        os.close(dirfd)
    assert prober.open(NULL_RW) == ["EPERM"]
    install(cgroup, [rule(False), rule(True, "c", 1, 3, "rw")])
    assert attached_count(cgroup) == 1
    assert prober.open(NULL_RW, ZERO_RO) == ["ok", "EPERM"]


def test_verifier_log_explains_a_refused_program() -> None:
    exit_only = struct.pack("=BBhi", 0x95, 0, 0, 0)  # returns R0 without setting it
    with pytest.raises(OSError) as info:
        sc.bpf_prog_load(sc.BPF_PROG_TYPE_CGROUP_DEVICE, exit_only, "Apache-2.0")
    assert info.value.errno == errno.EACCES
    assert "R0 !read_ok" in info.value.strerror


def test_not_a_cgroup2_directory(tmp_path: object) -> None:
    with pytest.raises(CgroupError, match="not a cgroup v2 directory"):
        install(str(tmp_path), [])
