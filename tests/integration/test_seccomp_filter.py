"""Compiled seccomp filters on the real kernel: a forked child loads one, makes some
system calls and reports what they returned through a pipe (no container needed).

Every wait is bounded: a child that hangs is killed and the test fails.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import resource
import select
import signal
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pyoci import OCI_VERSION
from pyoci import libseccomp as lib
from pyoci.config.loader import load_seccomp
from pyoci.errors import PyociError
from pyoci.executors import seccomp

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not lib.available(), reason="libseccomp is not installed")]

TIMEOUT = 10.0


def compile_doc(doc: dict[str, Any]) -> seccomp.SeccompFilter:
    profile = load_seccomp(doc)
    assert profile is not None
    return seccomp.compile_filter(profile)


def _wait(pid: int, deadline: float) -> int:
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the filtered child did not finish in time")


def _read_all(fd: int, deadline: float) -> bytes:
    data = b""
    while True:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return data
        chunk = os.read(fd, 65536)
        if not chunk:
            return data
        data += chunk


def run_filtered(flt: seccomp.SeccompFilter, body: Callable[[], dict[str, Any]]
                 ) -> tuple[int, dict[str, Any] | None]:
    """Fork; the child loads ``flt``, runs ``body`` and writes its result as JSON.

    Returns (wait status, result or None when the child wrote nothing)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 1
        try:
            os.close(r)
            # A SIGSYS death must not leave a core file behind.
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            flt.load()
            out = json.dumps(body()).encode()
            os.write(w, out)
            code = 0
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            os.write(w, json.dumps({"exception": f"{type(exc).__name__}: {exc}"}).encode())
        finally:
            os._exit(code)
    os.close(w)
    deadline = time.monotonic() + TIMEOUT
    try:
        data = _read_all(r, deadline)
    finally:
        os.close(r)
    status = _wait(pid, deadline)
    flt.release()
    return status, (json.loads(data) if data else None)


def errno_of(call: Callable[[], object]) -> int:
    """0 when ``call`` succeeds, else its errno."""
    try:
        call()
    except OSError as exc:
        return exc.errno or -1
    return 0


def status_field(name: str) -> str:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    return ""


# --- errno rules and the default action -----------------------------------------------------

def test_rule_errno_ret_reaches_the_caller(tmp_path: Path) -> None:
    target = tmp_path / "blocked"
    made = tmp_path / "made"
    made.mkdir()
    flt = compile_doc({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]})

    def body() -> dict[str, Any]:
        return {"mkdir": errno_of(lambda: os.mkdir(target)),
                "rmdir": errno_of(lambda: os.rmdir(made))}

    status, out = run_filtered(flt, body)
    assert out == {"mkdir": errno.ENOSYS, "rmdir": 0}, out
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert not target.exists() and not made.exists()


#: What the child's Python needs after load (memory, signals, writing the result, exit).
PYTHON_NEEDS = ["brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "futex",
                "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "write", "read", "close",
                "getpid", "exit", "exit_group", "fstat", "newfstatat", "lseek", "ioctl",
                "getrandom", "clock_gettime", "gettid"]


@pytest.mark.parametrize(("default_errno", "expected"), [(None, errno.EPERM),
                                                          (38, errno.ENOSYS)])
def test_default_errno_with_an_allow_list(default_errno: int | None, expected: int) -> None:
    doc: dict[str, Any] = {"defaultAction": "SCMP_ACT_ERRNO",
                           "syscalls": [{"names": PYTHON_NEEDS, "action": "SCMP_ACT_ALLOW"}]}
    if default_errno is not None:
        doc["defaultErrnoRet"] = default_errno
    flt = compile_doc(doc)
    parent = os.getpid()

    def body() -> dict[str, Any]:
        return {"pid_differs": os.getpid() != parent,        # allowed: the real pid
                "chdir": errno_of(lambda: os.chdir("/")),    # not listed: the default
                "uname": errno_of(lambda: os.uname())}

    status, out = run_filtered(flt, body)
    assert out == {"pid_differs": True, "chdir": expected, "uname": expected}, out
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_argument_conditions(tmp_path: Path) -> None:
    eq = "SCMP_CMP_EQ"
    urg, winch, chld = int(signal.SIGURG), int(signal.SIGWINCH), int(signal.SIGCHLD)
    flt = compile_doc({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 1, "value": urg, "op": eq}]},
        # one argument compared twice: either value matches (separate rules)
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EINVAL,
         "args": [{"index": 1, "value": winch, "op": eq},
                  {"index": 1, "value": chld, "op": eq}]},
        # two arguments: both must match
        {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES,
         "args": [{"index": 1, "value": 5, "op": eq},
                  {"index": 2, "value": os.SEEK_SET, "op": eq}]},
        # a 64-bit comparison
        {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EFBIG,
         "args": [{"index": 1, "value": 1 << 40, "op": "SCMP_CMP_GT"}]},
        # (whence & 3) == 3: SEEK_DATA (3) matches, SEEK_HOLE (4) does not
        {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV,
         "args": [{"index": 2, "value": 3, "valueTwo": 3, "op": "SCMP_CMP_MASKED_EQ"}]},
    ]})
    fd = os.open(tmp_path / "f", os.O_CREAT | os.O_RDWR, 0o600)
    os.write(fd, b"data")

    def body() -> dict[str, Any]:
        me = os.getpid()
        out = {f"kill {sig}": errno_of(lambda s=sig: os.kill(me, s))
               for sig in (urg, winch, chld, 0)}
        for offset, whence in ((5, os.SEEK_SET), (5, os.SEEK_CUR), (6, os.SEEK_SET),
                               (1 << 41, os.SEEK_SET), (1 << 39, os.SEEK_SET),
                               (0, os.SEEK_DATA), (0, os.SEEK_HOLE)):
            out[f"lseek {offset} {whence}"] = errno_of(
                lambda o=offset, w=whence: os.lseek(fd, o, w))
        return out

    try:
        _status, out = run_filtered(flt, body)
    finally:
        os.close(fd)
    assert out == {
        f"kill {urg}": errno.EPERM, f"kill {winch}": errno.EINVAL,
        f"kill {chld}": errno.EINVAL, "kill 0": 0,
        "lseek 5 0": errno.EACCES, "lseek 5 1": 0, "lseek 6 0": 0,
        f"lseek {1 << 41} 0": errno.EFBIG, f"lseek {1 << 39} 0": 0,
        f"lseek 0 {os.SEEK_DATA}": errno.EXDEV, f"lseek 0 {os.SEEK_HOLE}": 0,
    }, out


def test_trace_without_a_tracer_is_enosys(tmp_path: Path) -> None:
    # seccomp(2): with no tracer attached, SECCOMP_RET_TRACE fails the call with ENOSYS.
    flt = compile_doc({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_TRACE", "errnoRet": 7}]})
    _status, out = run_filtered(flt, lambda: {"mkdir": errno_of(
        lambda: os.mkdir(tmp_path / "d"))})
    assert out == {"mkdir": errno.ENOSYS}


# --- actions that end the process ----------------------------------------------------------------

@pytest.mark.parametrize("action", ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL",
                                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"])
def test_killing_actions_end_the_child_with_sigsys(action: str, tmp_path: Path) -> None:
    flt = compile_doc({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": action}]})
    status, out = run_filtered(flt, lambda: {"mkdir": errno_of(
        lambda: os.mkdir(tmp_path / "d"))})
    assert out is None  # it never got to report
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS
    assert not (tmp_path / "d").exists()


def test_default_kill_process_with_allow_list() -> None:
    flt = compile_doc({"defaultAction": "SCMP_ACT_KILL_PROCESS",
                       "syscalls": [{"names": PYTHON_NEEDS, "action": "SCMP_ACT_ALLOW"}]})
    status, out = run_filtered(flt, lambda: {"chdir": errno_of(lambda: os.chdir("/"))})
    assert out is None
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


# --- flags and no_new_privs ----------------------------------------------------------------------

@pytest.mark.parametrize("flag", list(seccomp.FLAGS))
def test_supported_flags_load(flag: str, tmp_path: Path) -> None:
    if flag not in seccomp.supported_flags():
        pytest.skip(f"{flag} is not supported by this libseccomp/kernel")
    flt = compile_doc({"defaultAction": "SCMP_ACT_ALLOW", "flags": [flag], "syscalls": [
        {"names": ["getcwd"], "action": "SCMP_ACT_LOG"},
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]})

    def body() -> dict[str, Any]:
        return {"mode": status_field("Seccomp"), "nnp": status_field("NoNewPrivs"),
                "getcwd": os.getcwd(), "mkdir": errno_of(lambda: os.mkdir(tmp_path / "d"))}

    status, out = run_filtered(flt, body)
    assert out == {"mode": "2", "nnp": "0", "getcwd": os.getcwd(), "mkdir": errno.EPERM}, out
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_load_without_cap_sys_admin_or_nnp_is_explained() -> None:
    flt = compile_doc({"defaultAction": "SCMP_ACT_ALLOW",
                       "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)  # drops every capability; no_new_privs unset
            try:
                flt.load()
                os.write(w, b"loaded")
            except PyociError as exc:
                os.write(w, str(exc).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    deadline = time.monotonic() + TIMEOUT
    data = _read_all(r, deadline).decode()
    os.close(r)
    status = _wait(pid, deadline)
    flt.release()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert data == ("the kernel refused the seccomp filter: permission denied (without "
                    "no_new_privs only a process with CAP_SYS_ADMIN may install one)")


# --- SCMP_ACT_NOTIFY: listener fd to an agent, and the agent answers ---------------------------

SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif): 80 bytes
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp): 24 bytes
NOTIF = struct.Struct("=QII" + "iIQ6Q")  # id, pid, flags, seccomp_data{nr, arch, ip, args}
NOTIF_RESP = struct.Struct("=QqiI")      # id, val, error, flags


@pytest.mark.parametrize("flags", [[], ["SECCOMP_FILTER_FLAG_TSYNC"]])
def test_notify_fd_reaches_the_listener_and_the_agent_answers(flags: list[str],
                                                              tmp_path: Path) -> None:
    if "SCMP_ACT_NOTIFY" not in seccomp.supported_actions():
        pytest.skip("SCMP_ACT_NOTIFY is not supported here")
    listener = str(tmp_path / "agent.sock")
    target = tmp_path / "notified"
    flt = compile_doc({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": listener,
                       "flags": flags,
                       "listenerMetadata": "hello-agent",
                       "syscalls": [{"names": ["mkdir", "mkdirat"],
                                     "action": "SCMP_ACT_NOTIFY"}]})
    assert flt.has_notify
    nrs = {lib.syscall_resolve("mkdir"), lib.syscall_resolve("mkdirat")}
    parent_end, child_end = socket.socketpair()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            parent_end.close()
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            fd = flt.load()
            assert fd is not None
            socket.send_fds(child_end, [b"fd"], [fd])  # as pyoci's init hands it over
            os.close(fd)
            child_end.recv(1)  # the agent has it now
            result = errno_of(lambda: os.mkdir(target))
            os.write(w, json.dumps({"mkdir": result}).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    child_end.close()
    deadline = time.monotonic() + TIMEOUT
    agent_fd = -1
    try:
        parent_end.settimeout(TIMEOUT)
        _data, fds, _f, _a = socket.recv_fds(parent_end, 16, 1)
        assert len(fds) == 1
        state = {"ociVersion": OCI_VERSION, "id": "sc1", "status": "creating", "pid": pid,
                 "bundle": str(tmp_path)}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(listener)
            server.listen(1)
            server.settimeout(TIMEOUT)
            seccomp.send_to_listener(listener, fds[0], pid, state, "hello-agent")
            os.close(fds[0])
            conn, _ = server.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                raw, agent_fds, _f, _a = socket.recv_fds(conn, 65536, 4)
        msg = json.loads(raw)
        assert msg == {"ociVersion": OCI_VERSION, "fds": ["seccompFd"], "pid": pid,
                       "metadata": "hello-agent", "state": state}
        assert len(agent_fds) == 1
        agent_fd = agent_fds[0]
        assert os.readlink(f"/proc/self/fd/{agent_fd}") == "anon_inode:seccomp notify"
        parent_end.send(b"g")  # let the child call mkdir
        ready, _, _ = select.select([agent_fd], [], [], TIMEOUT)
        assert ready, "no notification arrived"
        buf = bytearray(NOTIF.size)
        fcntl.ioctl(agent_fd, SECCOMP_IOCTL_NOTIF_RECV, buf, True)
        notif_id, notif_pid, _flags, nr, _arch, _ip, *_args = NOTIF.unpack(buf)
        assert nr in nrs
        assert notif_pid == pid  # we share the pid namespace with the child
        resp = bytearray(NOTIF_RESP.pack(notif_id, 0, -errno.EXDEV, 0))
        fcntl.ioctl(agent_fd, SECCOMP_IOCTL_NOTIF_SEND, resp, True)
        data = _read_all(r, deadline)
        status = _wait(pid, deadline)
    finally:
        if agent_fd >= 0:
            os.close(agent_fd)
        os.close(r)
        parent_end.close()
        flt.release()
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    assert json.loads(data) == {"mkdir": errno.EXDEV}  # the agent's answer
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert not target.exists()
