"""exec and terminals through real containers: the exec'd process is inside every
namespace and the cgroup of the container with the process spec it was given; a terminal
is a pty of the container's devpts whose master reaches --console-socket (SCM_RIGHTS, as
runc does) or `run`'s own relay."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REFERENCE_CONFIGS, Bundle, Runtime, assert_nothing_left, base_config

pytestmark = pytest.mark.integration


def _running(runtime: Runtime, bundle: Bundle, cid: str, cfg: dict[str, Any] | None = None
             ) -> int:
    bundle.write(cfg or base_config(args=["sleep", "300"], env=["PATH=/bin", "FOO=bar"]))
    runtime("run", "-d", "-b", str(bundle.path), cid, check=True)
    return runtime.state(cid)["pid"]


def _close(runtime: Runtime, bundle: Bundle, cid: str) -> None:
    runtime("delete", "--force", cid, check=True)
    assert_nothing_left(runtime, cid, bundle)


class ConsoleSocket:
    """A --console-socket listener: receives the pty master and reads what it shows."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(1)
        self.server.settimeout(30)
        self.master = -1
        self.thread = threading.Thread(target=self._accept)
        self.thread.start()

    def _accept(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            _msg, fds, _flags, _addr = socket.recv_fds(conn, 1024, 1)
            self.master = fds[0]

    def read_all(self, timeout: float = 10) -> str:
        self.thread.join(timeout)
        assert self.master >= 0, "no pty master received"
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: the process side is closed
                break
            if not chunk:
                break
            out += chunk
        return out.decode()

    def close(self) -> None:
        self.server.close()
        if self.master >= 0:
            os.close(self.master)


# --------------------------------------------------------------------------------- exec

def test_exec_joins_the_container(runtime: Runtime, bundle: Bundle) -> None:
    init = _running(runtime, bundle, "ex-join")
    res = runtime("exec", "ex-join", "sh", "-c",
                  "echo $FOO; hostname; readlink /proc/1/exe; exit 7")
    assert res.returncode == 7, res.stderr
    assert res.stdout.split() == ["bar", "pyoci-test", "/bin/busybox"]
    for ns in ("pid", "mnt", "uts", "ipc", "net"):
        inside = runtime("exec", "ex-join", "readlink", f"/proc/self/ns/{ns}", check=True)
        assert inside.stdout.strip() == os.readlink(f"/proc/{init}/ns/{ns}")
    _close(runtime, bundle, "ex-join")


def test_exec_flags_override_the_process(runtime: Runtime, bundle: Bundle) -> None:
    _running(runtime, bundle, "ex-flags")
    res = runtime("exec", "-e", "X=1", "--cwd", "/tmp", "--user", "1000:1000",
                  "--additional-gids", "5", "ex-flags", "sh", "-c", "echo $X $FOO; pwd; id -G",
                  check=True)
    assert res.stdout.split("\n")[:3] == ["1 bar", "/tmp", "1000 5"]
    caps = runtime("exec", "--cap", "CAP_KILL", "ex-flags", "grep", "CapEff",
                   "/proc/self/status", check=True).stdout
    assert int(caps.split()[1], 16) == 1 << 5  # CAP_KILL only: the config grants none
    _close(runtime, bundle, "ex-flags")


def test_exec_process_file_from_an_engine(runtime: Runtime, bundle: Bundle,
                                          tmp_path: Path) -> None:
    ref = REFERENCE_CONFIGS / "podman-exec-process.json"
    if not ref.exists():
        pytest.skip("../shared/reference/configs is not next to this checkout")
    proc = json.loads(ref.read_text())
    proc["args"] = ["sh", "-c", "echo from-process-file; grep CapBnd /proc/self/status"]
    (tmp_path / "process.json").write_text(json.dumps(proc))
    _running(runtime, bundle, "ex-pf")
    res = runtime("exec", "--process", str(tmp_path / "process.json"), "ex-pf", check=True)
    assert res.stdout.startswith("from-process-file\n")
    assert int(res.stdout.split()[-1], 16) == 0x00000000800405fb  # podman's 11 capabilities
    _close(runtime, bundle, "ex-pf")


def test_exec_detach_writes_pid_in_the_cgroup(runtime: Runtime, bundle: Bundle,
                                              tmp_path: Path) -> None:
    _running(runtime, bundle, "ex-det")
    pid_file = tmp_path / "exec.pid"
    runtime("exec", "-d", "--pid-file", str(pid_file), "ex-det", "sleep", "60", check=True)
    pid = int(pid_file.read_text())
    pids = json.loads(runtime("ps", "--format", "json", "ex-det", check=True).stdout)
    assert pid in pids
    _close(runtime, bundle, "ex-det")


def test_exec_gets_the_container_seccomp_filter(runtime: Runtime, bundle: Bundle) -> None:
    cfg = base_config(args=["sleep", "300"])
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}
    _running(runtime, bundle, "ex-sc", cfg)
    res = runtime("exec", "ex-sc", "mkdir", "/tmp/x")
    assert res.returncode == 1 and "Function not implemented" in res.stderr
    _close(runtime, bundle, "ex-sc")


def test_exec_needs_a_running_container(runtime: Runtime, bundle: Bundle) -> None:
    bundle.write(base_config(args=["sleep", "300"]))
    runtime("create", "-b", str(bundle.path), "ex-created", check=True)
    res = runtime("exec", "ex-created", "true")
    assert res.returncode == 1 and "not running" in res.stderr
    assert runtime.state("ex-created")["status"] == "created"  # no effect
    _close(runtime, bundle, "ex-created")
    res = runtime("exec", "ex-none", "true")
    assert res.returncode == 1 and "does not exist" in res.stderr


def test_exec_of_a_missing_program_is_a_clear_error(runtime: Runtime, bundle: Bundle) -> None:
    _running(runtime, bundle, "ex-miss")
    res = runtime("exec", "ex-miss", "no-such-program")
    assert res.returncode == 1
    assert '"no-such-program": executable file not found' in res.stderr
    pids = json.loads(runtime("ps", "--format", "json", "ex-miss", check=True).stdout)
    assert len(pids) == 1  # nothing left running from the failed exec
    _close(runtime, bundle, "ex-miss")


# ----------------------------------------------------------------------------- terminal

def test_create_sends_the_pty_to_the_console_socket(runtime: Runtime, bundle: Bundle,
                                                    tmp_path: Path) -> None:
    console = ConsoleSocket(tmp_path / "console.sock")
    try:
        bundle.write(base_config(args=["sh", "-c", "tty; stty size; echo hello"],
                                 terminal=True, consoleSize={"height": 30, "width": 100}))
        runtime("create", "--console-socket", console.path, "-b", str(bundle.path), "tty1",
                check=True)
        runtime("start", "tty1", check=True)
        out = console.read_all()
    finally:
        console.close()
    assert out.split("\n") == ["/dev/pts/0\r", "30 100\r", "hello\r", ""], out
    runtime("delete", "tty1", check=True)
    assert_nothing_left(runtime, "tty1", bundle)


def test_exec_tty_with_console_socket(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    _running(runtime, bundle, "ex-tty")
    console = ConsoleSocket(tmp_path / "c.sock")
    try:
        runtime("exec", "-t", "-d", "--console-socket", console.path, "ex-tty", "sh", "-c",
                "tty; echo hi-tty", check=True)
        out = console.read_all()
    finally:
        console.close()
    assert out.split("\n")[1] == "hi-tty\r" and out.startswith("/dev/pts/"), out
    _close(runtime, bundle, "ex-tty")


def test_run_relays_the_terminal(runtime: Runtime, bundle: Bundle) -> None:
    bundle.write(base_config(args=["sh", "-c", "tty; echo relayed"], terminal=True))
    res = runtime("run", "-b", str(bundle.path), "tty-run")
    assert res.returncode == 0, res.stderr
    # (text mode folds the pty's \r\n; `tty` naming a pts is the proof of the pty)
    assert res.stdout.replace("\r\n", "\n") == "/dev/pts/0\nrelayed\n"
    assert_nothing_left(runtime, "tty-run", bundle)


@pytest.mark.parametrize(("terminal", "socket_flag", "needle"), [
    (True, False, "needs --console-socket"),
    (False, True, "process.terminal is false"),
])
def test_terminal_flag_mismatch_is_an_error(runtime: Runtime, bundle: Bundle, tmp_path: Path,
                                            terminal: bool, socket_flag: bool,
                                            needle: str) -> None:
    bundle.write(base_config(terminal=terminal))
    extra = ["--console-socket", str(tmp_path / "nobody.sock")] if socket_flag else []
    res = runtime("create", *extra, "-b", str(bundle.path), "tty-bad")
    assert res.returncode == 1 and needle in res.stderr, res.stderr
    assert_nothing_left(runtime, "tty-bad", bundle)


def test_unreachable_console_socket_leaves_nothing(runtime: Runtime, bundle: Bundle,
                                                   tmp_path: Path) -> None:
    bundle.write(base_config(terminal=True))
    res = runtime("create", "--console-socket", str(tmp_path / "absent.sock"), "-b",
                  str(bundle.path), "tty-gone")
    assert res.returncode == 1 and "console-socket" in res.stderr, res.stderr
    assert_nothing_left(runtime, "tty-gone", bundle)


def test_exec_preserve_fds_must_be_open(runtime: Runtime, bundle: Bundle) -> None:
    """An fd that is not open would otherwise be taken by pyoci's own channel and leak
    into the process (and `exec -d` would then wait for the process to exit)."""
    _running(runtime, bundle, "ex-pfd")
    res = runtime("exec", "--preserve-fds", "4", "ex-pfd", "ls", "/proc/self/fd")
    assert res.returncode == 1 and "--preserve-fds 4" in res.stderr, res.stderr
    _close(runtime, bundle, "ex-pfd")


def test_terminal_relay_survives_a_process_that_never_reads(runtime: Runtime, bundle: Bundle,
                                                          tmp_path: Path) -> None:
    """Input the process never reads fills the pty; the relay must not block on it and
    must return the process's status once it exits."""
    _running(runtime, bundle, "ex-flood")
    flood = tmp_path / "flood"
    flood.write_bytes(b"\0" * 2_000_000)
    with flood.open("rb") as stdin:
        res = runtime("exec", "-t", "ex-flood", "sh", "-c", "sleep 1; exit 4", stdin=stdin,
                      timeout=30)
    assert res.returncode == 4
    _close(runtime, bundle, "ex-flood")
