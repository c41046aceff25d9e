"""linux.seccomp compilation: error paths, action/arch/operator mapping, what this system
supports, and the listener message. Needs libseccomp (not the kernel's filter: nothing
here loads one; tests/integration/test_seccomp_filter.py does)."""

from __future__ import annotations

import json
import os
import socket
import struct
from pathlib import Path
from typing import Any

import pytest

from pyoci import OCI_VERSION
from pyoci import libseccomp as lib
from pyoci.config.loader import load_seccomp
from pyoci.config.model import Seccomp
from pyoci.errors import ConfigError, PyociError
from pyoci.executors import seccomp
from tests.helpers import REFERENCE_CONFIGS as REFERENCE

pytestmark = pytest.mark.skipif(not lib.available(), reason="libseccomp is not installed")

BPF_RET_K = 0x06  # BPF_RET | BPF_K
BPF_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K


def compile_doc(doc: dict[str, Any], **kw: Any) -> seccomp.SeccompFilter:
    profile = load_seccomp(doc)
    assert profile is not None
    return seccomp.compile_filter(profile, **kw)


def problems(doc: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        compile_doc(doc)
    return dict(info.value.problems)


def bpf_insns(flt: seccomp.SeccompFilter) -> list[tuple[int, int, int, int]]:
    """(code, jt, jf, k) of each struct sock_filter."""
    return list(struct.iter_unpack("=HBBI", flt.bpf()))


def returns(flt: seccomp.SeccompFilter) -> set[int]:
    return {k for code, _jt, _jf, k in bpf_insns(flt) if code == BPF_RET_K}


def rule(names: list[str], action: str, **extra: Any) -> dict[str, Any]:
    return {"names": names, "action": action, **extra}


# --- real profiles --------------------------------------------------------------------------

REFERENCE_CONFIGS = ["podman-run-default.json", "podman-run-restricted.json",
                     "containerd-ctr-run-default.json", "runc-spec-default.json"]


@pytest.mark.parametrize("name", REFERENCE_CONFIGS)
def test_engine_profiles_compile_with_every_name_known(name: str) -> None:
    path = REFERENCE / name
    if not path.exists():
        pytest.skip("../shared/reference is not present")
    doc = json.loads(path.read_text())
    profile = doc.get("linux", {}).get("seccomp")
    if profile is None:
        pytest.skip(f"{name} has no linux.seccomp (that engine sent none)")
    flt = compile_doc(profile, strict_names=True)  # any unknown name raises
    try:
        assert flt.skipped_names == ()
        assert 0 < flt.instructions <= seccomp.BPF_MAXINSNS
        # The profile's default (errno 38 for podman) is what unlisted calls get.
        expected = lib.act_errno(profile.get("defaultErrnoRet", seccomp.EPERM))
        assert expected in returns(flt)
    finally:
        flt.release()


def test_podman_profile_is_among_the_references() -> None:
    """Guard for the test above: at least one reference profile really is compiled."""
    path = REFERENCE / "podman-run-default.json"
    if not path.exists():
        pytest.skip("../shared/reference is not present")
    assert json.loads(path.read_text())["linux"]["seccomp"]["syscalls"]


# --- config errors, each with its JSON path --------------------------------------------------

def test_unknown_syscall_name_names_its_path_when_strict() -> None:
    with pytest.raises(ConfigError) as info:
        compile_doc({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            rule(["mkdir"], "SCMP_ACT_ERRNO"),
            rule(["rmdir", "no_such_call"], "SCMP_ACT_ERRNO"),
        ]}, strict_names=True)
    found = dict(info.value.problems)
    assert list(found) == ["linux.seccomp.syscalls[1].names[1]"]
    assert found["linux.seccomp.syscalls[1].names[1]"] == (
        f'"no_such_call" is not a system call libseccomp {lib.version_string()} knows')


def test_unknown_names_are_skipped_and_listed_by_default() -> None:
    """runc's rule (libcontainer/seccomp: "unknown seccomp syscall %q ignored")."""
    flt = compile_doc({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        rule(["mkdir", "no_such_call"], "SCMP_ACT_ERRNO")]})
    assert flt.skipped_names == (("linux.seccomp.syscalls[0].names[1]", "no_such_call"),)
    assert lib.act_errno(seccomp.EPERM) in returns(flt)  # mkdir's rule is still there
    flt.release()


def test_every_problem_is_reported_at_once() -> None:
    found = problems({
        "defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 5,
        "architectures": ["x86_64"],
        "flags": ["SECCOMP_FILTER_FLAG_NOPE"],
        "syscalls": [
            rule(["mkdir"], "SCMP_ACT_KILL", errnoRet=1),
            rule(["rmdir"], "SCMP_ACT_ERRNO", errnoRet=4095),
            rule(["ptrace"], "SCMP_ACT_TRACE", errnoRet=70000),
            rule(["umask"], "SCMP_ACT_ERRNO",
                 args=[{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"},
                       {"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]),
            rule(["chdir"], "SCMP_ACT_NOPE"),
            rule([], "SCMP_ACT_ERRNO"),
        ]})
    assert set(found) == {
        "linux.seccomp.defaultErrnoRet", "linux.seccomp.architectures[0]",
        "linux.seccomp.flags[0]", "linux.seccomp.syscalls[0].errnoRet",
        "linux.seccomp.syscalls[1].errnoRet", "linux.seccomp.syscalls[2].errnoRet",
        "linux.seccomp.syscalls[3].args[0].index", "linux.seccomp.syscalls[3].args[1].op",
        "linux.seccomp.syscalls[4].action", "linux.seccomp.syscalls[5].names"}
    assert "SCMP_ACT_ALLOW does not return an errno" in found["linux.seccomp.defaultErrnoRet"]
    assert "SCMP_ACT_KILL does not return an errno" in found[
        "linux.seccomp.syscalls[0].errnoRet"]
    assert "0 to 4094" in found["linux.seccomp.syscalls[1].errnoRet"]
    assert "0 to 65535" in found["linux.seccomp.syscalls[2].errnoRet"]
    assert "0 to 5" in found["linux.seccomp.syscalls[3].args[0].index"]


def test_config_error_message_carries_path_and_source() -> None:
    with pytest.raises(ConfigError) as info:
        compile_doc({"defaultAction": "SCMP_ACT_ALLOW",
                     "syscalls": [rule(["no_such_call"], "SCMP_ACT_ERRNO")]},
                    strict_names=True)
    assert str(info.value).startswith(
        "invalid configuration: config.json: linux.seccomp.syscalls[0].names[0]: "
        '"no_such_call" is not')


def test_notify_needs_a_listener_and_not_as_default() -> None:
    found = problems({"defaultAction": "SCMP_ACT_NOTIFY",
                      "syscalls": [rule(["mkdir"], "SCMP_ACT_NOTIFY")]})
    assert "listenerPath" in found["linux.seccomp.syscalls[0].action"]
    assert "cannot be the default action" in found["linux.seccomp.defaultAction"]


@pytest.mark.parametrize("name", seccomp.NOTIFY_HANDOFF_SYSCALLS)
def test_notify_refused_on_the_fd_handoff_syscalls(name: str) -> None:
    found = problems({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
                      "syscalls": [rule(["mkdir", name], "SCMP_ACT_NOTIFY")]})
    assert list(found) == ["linux.seccomp.syscalls[0].names[1]"]
    assert f"cannot be used for {name}" in found["linux.seccomp.syscalls[0].names[1]"]


def test_notify_with_listener_compiles() -> None:
    flt = compile_doc({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
                       "syscalls": [rule(["mkdir"], "SCMP_ACT_NOTIFY")]})
    assert flt.has_notify
    assert lib.ACT_NOTIFY in returns(flt)
    flt.release()


# --- mapping to libseccomp and the kernel ---------------------------------------------------

def test_actions_and_errno_values_reach_the_bpf_program() -> None:
    flt = compile_doc({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        rule(["mkdir"], "SCMP_ACT_ERRNO", errnoRet=38),
        rule(["rmdir"], "SCMP_ACT_TRACE", errnoRet=7),
        rule(["ptrace"], "SCMP_ACT_TRACE"),
        rule(["chdir"], "SCMP_ACT_KILL_PROCESS"),
        rule(["getcwd"], "SCMP_ACT_LOG"),
        rule(["fchdir"], "SCMP_ACT_TRAP"),
        rule(["getpid"], "SCMP_ACT_ALLOW"),
    ]})
    # Kernel SECCOMP_RET_* values: ERRNO 0x0005xxxx, TRACE 0x7ff0xxxx, KILL_PROCESS
    # 0x80000000, LOG 0x7ffc0000, TRAP 0x00030000, ALLOW 0x7fff0000.
    assert {0x00050001, 0x00050026, 0x7FF00007, 0x7FF00001, 0x80000000, 0x7FFC0000,
            0x00030000, 0x7FFF0000} <= returns(flt)
    flt.release()


def test_default_errno_ret_is_used() -> None:
    flt = compile_doc({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                       "syscalls": [rule(["getpid"], "SCMP_ACT_ALLOW")]})
    assert 0x00050026 in returns(flt)
    assert 0x00050001 not in returns(flt)
    flt.release()


@pytest.mark.parametrize(("default", "same"), [
    ({"defaultAction": "SCMP_ACT_ERRNO"}, rule(["mkdir"], "SCMP_ACT_ERRNO")),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1},
     rule(["mkdir"], "SCMP_ACT_ERRNO", errnoRet=1)),
    ({"defaultAction": "SCMP_ACT_KILL_THREAD"}, rule(["mkdir"], "SCMP_ACT_KILL")),
    ({"defaultAction": "SCMP_ACT_KILL"}, rule(["mkdir"], "SCMP_ACT_KILL_THREAD")),
    ({"defaultAction": "SCMP_ACT_ALLOW"}, rule(["mkdir"], "SCMP_ACT_ALLOW")),
])
def test_rule_with_the_default_action_is_skipped(default: dict, same: dict) -> None:
    flt = compile_doc({**default, "syscalls": [same, rule(["getpid"], "SCMP_ACT_LOG")]})
    # libseccomp itself refuses such a rule: the skip is what lets the profile compile.
    with lib.Filter(flt.default_action) as raw, pytest.raises(lib.LibseccompError) as info:
        raw.rule_add(flt.default_action, lib.syscall_resolve("mkdir") or 0)
    assert info.value.errno == 13
    flt.release()


def test_kill_is_kill_thread() -> None:
    assert seccomp.ACTIONS["SCMP_ACT_KILL"] == seccomp.ACTIONS["SCMP_ACT_KILL_THREAD"] == 0


def test_same_argument_twice_becomes_separate_rules() -> None:
    args = [{"index": 0, "value": 0o111, "op": "SCMP_CMP_EQ"},
            {"index": 0, "value": 0o222, "op": "SCMP_CMP_EQ"}]
    # libseccomp cannot AND two tests of one argument ...
    with lib.Filter(lib.ACT_ALLOW) as raw, pytest.raises(lib.LibseccompError):
        raw.rule_add(lib.act_errno(22), lib.syscall_resolve("umask") or 0,
                     [(0, lib.CMP_EQ, 0o111, 0), (0, lib.CMP_EQ, 0o222, 0)])
    # ... so both become rules of their own, and both values are compared.
    flt = compile_doc({"defaultAction": "SCMP_ACT_ALLOW",
                       "syscalls": [rule(["umask"], "SCMP_ACT_ERRNO", args=args)]})
    compared = {k for code, _t, _f, k in bpf_insns(flt) if code == BPF_JEQ_K}
    assert {0o111, 0o222} <= compared
    flt.release()


def test_architectures_resolve_to_audit_tokens() -> None:
    # AUDIT_ARCH_* values of <linux/audit.h>: EM number | 64-bit | little-endian bits.
    assert lib.arch_resolve("x86_64") == 0xC000003E
    assert lib.arch_resolve("x86") == 0x40000003
    assert lib.arch_resolve("aarch64") == 0xC00000B7
    assert lib.arch_resolve("no-such-arch") is None
    native = lib.arch_native()
    if native != 0xC000003E:
        pytest.skip("the BPF check below is written for an x86_64 host")
    flt = compile_doc({"defaultAction": "SCMP_ACT_ALLOW",
                       "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                       # _llseek exists on x86 only: fine, libseccomp leaves it out elsewhere
                       "syscalls": [rule(["mkdir", "_llseek"], "SCMP_ACT_ERRNO")]})
    compared = {k for code, _t, _f, k in bpf_insns(flt) if code == BPF_JEQ_K}
    assert {0xC000003E, 0x40000003} <= compared  # the program checks both arches
    flt.release()


def test_native_architecture_kept_when_not_listed() -> None:
    if lib.arch_native() != 0xC000003E:
        pytest.skip("written for an x86_64 host")
    flt = compile_doc({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
                       "syscalls": [rule(["mkdir"], "SCMP_ACT_ERRNO")]})
    compared = {k for code, _t, _f, k in bpf_insns(flt) if code == BPF_JEQ_K}
    assert 0xC000003E in compared
    flt.release()


def test_too_long_a_program_is_refused_at_compile_time() -> None:
    rules = [rule(["personality"], "SCMP_ACT_ALLOW",
                  args=[{"index": 0, "value": i, "op": "SCMP_CMP_EQ"},
                        {"index": 1, "value": i, "op": "SCMP_CMP_EQ"}])
             for i in range(1100)]
    with pytest.raises(PyociError, match=r"compiles to \d+ BPF instructions; the kernel "
                                         r"accepts at most 4096"):
        compile_doc({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules})


# --- what this system supports ---------------------------------------------------------------

def test_version_and_api_level() -> None:
    version = seccomp.libseccomp_version()
    assert version is not None
    assert tuple(int(p) for p in version.split(".")) == lib.version()
    assert lib.version() >= (2, 0, 0)
    assert lib.api_level() >= 1


def test_supported_lists_match_what_compiles() -> None:
    for flag in seccomp.FLAGS:
        doc = {"defaultAction": "SCMP_ACT_ALLOW", "flags": [flag],
               "listenerPath": "/run/agent.sock",
               "syscalls": [rule(["mkdir"], "SCMP_ACT_NOTIFY")]}
        if flag in seccomp.supported_flags():
            compile_doc(doc).release()
        else:
            with pytest.raises(PyociError, match=f"flags\\[0\\]: {flag} needs"):
                compile_doc(doc)
    for arch in seccomp.ARCHES:
        doc = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": [arch]}
        if arch in seccomp.supported_archs():
            compile_doc(doc).release()
        else:
            with pytest.raises(PyociError, match=rf"architectures\[0\]: {arch} (is not an "
                                                 "architecture libseccomp|cannot share a filter)"):
                compile_doc(doc)
    assert {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_TRAP",
            "SCMP_ACT_TRACE"} <= set(seccomp.supported_actions())
    assert seccomp.supported_operators() == list(seccomp.OPERATORS)
    native = lib.arch_native()
    assert native in {lib.arch_resolve(a[len("SCMP_ARCH_"):].lower())
                      for a in seccomp.supported_archs()}


def test_absent_flags_default_to_spec_allow_where_supported() -> None:
    if "SECCOMP_FILTER_FLAG_SPEC_ALLOW" not in seccomp.supported_flags():
        pytest.skip("SPEC_ALLOW is not supported here")
    absent = seccomp.compile_filter(Seccomp("SCMP_ACT_ALLOW", flags=None))  # type: ignore
    empty = seccomp.compile_filter(Seccomp("SCMP_ACT_ALLOW", flags=()))
    assert absent._filter.attr_get(lib.ATTR_CTL_SSB) == 1
    assert empty._filter.attr_get(lib.ATTR_CTL_SSB) == 0
    absent.release()
    empty.release()


def test_action_beyond_the_kernel_names_what_is_needed(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    monkeypatch.setattr(lib, "api_level", lambda: 4)  # a kernel older than 5.0
    assert "SCMP_ACT_NOTIFY" not in seccomp.supported_actions()
    with pytest.raises(PyociError) as info:
        compile_doc({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/a.sock",
                     "syscalls": [rule(["mkdir"], "SCMP_ACT_NOTIFY")]})
    assert not isinstance(info.value, ConfigError)
    assert str(info.value).startswith(
        "linux.seccomp cannot be applied on this system: linux.seccomp.syscalls[0].action: "
        "SCMP_ACT_NOTIFY needs Linux >= 5.0")


def test_flag_beyond_the_library_names_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lib, "version", lambda: (2, 4, 3))
    monkeypatch.setattr(lib, "api_level", lambda: 3)
    with pytest.raises(PyociError, match=r"flags\[1\]: SECCOMP_FILTER_FLAG_SPEC_ALLOW needs "
                                         r"libseccomp >= 2\.5\.0, this is 2\.4\.3"):
        compile_doc({"defaultAction": "SCMP_ACT_ALLOW",
                     "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]})


def test_without_libseccomp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lib, "SONAME", "libseccomp-absent.so.99")
    monkeypatch.setattr(lib, "_lib", None)
    monkeypatch.setattr(lib, "_load_error", None)
    assert seccomp.libseccomp_version() is None
    with pytest.raises(PyociError, match=r"^linux\.seccomp: libseccomp is not installed"):
        compile_doc({"defaultAction": "SCMP_ACT_ALLOW"})
    for query in (seccomp.supported_actions, seccomp.supported_operators,
                  seccomp.supported_archs, seccomp.supported_flags):
        with pytest.raises(lib.LibseccompMissing, match="libseccomp is not installed"):
            query()


# --- the listener message ----------------------------------------------------------------------

def test_send_to_listener_sends_state_and_fd(tmp_path: Path) -> None:
    path = str(tmp_path / "agent.sock")
    state = {"ociVersion": OCI_VERSION, "id": "c1", "status": "creating", "pid": 4242,
             "bundle": "/b", "annotations": {"k": "v"}}
    read_end, write_end = os.pipe()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        server.settimeout(5)
        seccomp.send_to_listener(path, read_end, 4242, state, "MKNOD=/dev/null")
        conn, _ = server.accept()
        with conn:
            conn.settimeout(5)
            data, fds, _flags, _addr = socket.recv_fds(conn, 65536, 4)
            while chunk := conn.recv(65536):  # the runtime closes after one message
                data += chunk
    os.close(read_end)
    msg = json.loads(data)
    assert msg == {"ociVersion": OCI_VERSION, "fds": ["seccompFd"], "pid": 4242,
                   "metadata": "MKNOD=/dev/null", "state": state}
    assert len(fds) == 1
    os.write(write_end, b"through the passed fd")  # the fd really is our pipe
    assert os.read(fds[0], 100) == b"through the passed fd"
    os.close(fds[0])
    os.close(write_end)


def test_metadata_left_out_when_unset() -> None:
    msg = seccomp.container_process_state(7, {"id": "c"}, None)
    assert "metadata" not in msg
    assert msg["fds"] == ["seccompFd"] and msg["pid"] == 7


def test_send_to_listener_without_listener_is_oserror(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(OSError):
            seccomp.send_to_listener(str(tmp_path / "nobody.sock"), read_end, 1, {}, None)
    finally:
        os.close(read_end)
        os.close(write_end)
