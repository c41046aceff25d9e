"""Attacks on the runtime process itself, mounted for real (issue 11, docs/security.md).

Each test plays the hostile image: a WORKDIR through /proc/self/fd (CVE-2024-21626), a
sibling or a racing probe reaching the runtime's /proc entries and its interpreter
(CVE-2019-5736), `#!/proc/self/exe`, other users at the exec FIFO, `kill 0` and
/dev/tty from inside. Every target is harmless: a marker file, a copy of nothing.
"""

from __future__ import annotations

import os
import pty
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import Bundle, Runtime

pytestmark = pytest.mark.integration

SECRET = "host-secret-4f1d"


def _sh(bundle: Bundle, script: str, **process: object) -> None:
    bundle.config["process"]["args"] = ["/bin/sh", "-c", script]
    bundle.config["process"].update(process)
    bundle.write()


@pytest.mark.parametrize("fd", range(3, 12))
def test_cwd_through_a_runtime_fd_never_reaches_the_host(runtime: Runtime, bundle: Bundle,
                                                         tmp_path: Path, fd: int) -> None:
    """CVE-2024-21626: engines copy an image's WORKDIR into process.cwd. Before the fix the
    init held the state directory as fd 6 (7 with a joined namespace) across chdir, and
    `cwd: /proc/self/fd/6` started the process in <root>/<id> on the host."""
    (tmp_path / "marker").write_text(SECRET)  # <root> is tmp_path/state: ../../marker
    _sh(bundle, "cat ../marker ../../marker ../../../marker 2>/dev/null; pwd; true",
        cwd=f"/proc/self/fd/{fd}")
    proc = runtime("run", "--bundle", str(bundle.path), f"cwd{fd}")
    assert SECRET not in proc.stdout
    if proc.returncode != 0:
        # Refused (no such fd, or not a directory): an error, never a traceback.
        assert "Traceback" not in proc.stderr and proc.stderr.strip()
    assert not (runtime.root / f"cwd{fd}").exists()


def test_cwd_outside_the_root_is_refused(runtime: Runtime, bundle: Bundle,
                                         tmp_path: Path) -> None:
    """The same class through a preserved fd the caller passed (--preserve-fds): runc
    >= 1.1.12 checks the cwd after chdir; so does pyoci ("possible container breakout")."""
    (tmp_path / "marker").write_text(SECRET)
    _sh(bundle, "cat ../marker; pwd", cwd="/proc/self/fd/3")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        # dup2 runs before subprocess closes the fds not in pass_fds
        proc = runtime("run", "--preserve-fds", "1", "--bundle", str(bundle.path), "pfd",
                       pass_fds=(3,), preexec_fn=lambda: os.dup2(fd, 3))
    finally:
        os.close(fd)
    assert SECRET not in proc.stdout
    assert proc.returncode == 1
    # Refused when the cwd is made inside the rootfs (a magic link: openat2
    # RESOLVE_NO_MAGICLINKS) or, as a second line, by the getcwd check after chdir.
    assert ("possible container breakout detected" in proc.stderr
            or "create cwd /proc/self/fd/3: too many levels of symbolic links" in proc.stderr
            ), proc.stderr
    assert not (runtime.root / "pfd").exists()


def test_a_sibling_in_the_pid_namespace_cannot_reach_the_waiting_init(
        runtime: Runtime, bundle: Bundle, tmp_path: Path, rootfs_template: Path) -> None:
    """CVE-2019-5736 class, Kubernetes shareProcessNamespace: a created container's init is
    pyoci (python, host fds) waiting for `start`. A sibling in its pid namespace read
    /proc/1/exe (the host interpreter) and walked /proc/1/fd/7/../../.. to the host. Now
    the init is non-dumpable: its /proc entries are closed to the sibling."""
    from tests.helpers import clone_rootfs

    runtime("create", "--bundle", str(bundle.path), "victim", check=True)
    pid = runtime.state("victim")["pid"]
    other = tmp_path / "other"
    other.mkdir()
    clone_rootfs(rootfs_template, other / "rootfs")
    cfg = bundle.config.copy()
    cfg["linux"] = dict(cfg["linux"])
    cfg["linux"]["namespaces"] = [ns for ns in cfg["linux"]["namespaces"]
                                  if ns["type"] != "pid"]
    cfg["linux"]["namespaces"].append({"type": "pid", "path": f"/proc/{pid}/ns/pid"})
    cfg["process"] = dict(cfg["process"], args=[
        "/bin/sh", "-c",
        # Listing the fd numbers is allowed (root owns the directory); following them not.
        "readlink /proc/1/exe; cat /proc/1/environ; for f in /proc/1/fd/*; do "
        "readlink $f; ls $f/../../.. ; done; head -c1 /proc/1/mem; true"])
    Bundle(other, cfg).write()
    try:
        proc = runtime("run", "--bundle", str(other), "sibling")
    finally:
        runtime("delete", "--force", "victim")
    assert proc.returncode == 0, proc.stderr
    assert "python" not in proc.stdout
    assert "etc" not in proc.stdout.split()  # no listing of the host's /
    assert proc.stdout.strip() == "", proc.stdout
    assert "Permission denied" in proc.stderr


def test_exec_helper_is_never_observable_from_the_container(runtime: Runtime,
                                                             bundle: Bundle) -> None:
    """CVE-2019-5736 class: during `exec` pyoci's helper sits in the container's namespaces
    before its execve. A probe in the container caught it (36 of 40 tries): its
    /proc/PID/exe was the host's interpreter. Non-dumpable from before the join, it
    shows nothing."""
    probe = ("while [ ! -e /stop ]; do for p in /proc/[0-9]*; do "
             "l=$(readlink $p/exe 2>/dev/null) && echo \"$p $l\" >> /seen; "
             "done; done; echo done > /probe-done")
    _sh(bundle, probe)
    runtime("run", "--detach", "--bundle", str(bundle.path), "probed", check=True)
    try:
        for _ in range(15):
            runtime("exec", "probed", "/bin/true", check=True)
        (bundle.rootfs / "stop").write_text("")
        for _ in range(100):
            if (bundle.rootfs / "probe-done").exists():
                break
            time.sleep(0.1)
    finally:
        runtime("delete", "--force", "probed")
    seen = (bundle.rootfs / "seen").read_text() if (bundle.rootfs / "seen").exists() else ""
    assert "busybox" in seen  # the probe worked: it saw itself
    assert "python" not in seen, seen


def _copy_interpreter_libraries(rootfs: Path) -> None:
    """The host interpreter's shared libraries, so that if the kernel ever ran it inside
    the container, it would start (and the test would see it)."""
    out = subprocess.run(["ldd", os.path.realpath(sys.executable)], capture_output=True,
                         text=True, check=True).stdout
    for word in out.split():
        if word.startswith("/") and os.path.exists(word):
            dest = rootfs / word.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(word, dest)


@pytest.mark.parametrize("how", ["run", "exec"])
def test_proc_self_exe_script_does_not_run_the_runtime_binary(
        runtime: Runtime, bundle: Bundle, how: str) -> None:
    """The original CVE-2019-5736 vector: the container's program is a script whose
    interpreter is /proc/self/exe, which the kernel resolves in the process calling
    execve -- pyoci. Before the fix that ran the host's python inside the container (here
    `-V` prints its version); now the execve is made from a sealed memfd trampoline."""
    if shutil.which("ldd") is None:
        pytest.skip("ldd (libc-bin) is needed to copy the interpreter's libraries")
    _copy_interpreter_libraries(bundle.rootfs)
    script = bundle.rootfs / "attack"
    script.write_text("#!/proc/self/exe -V\n")
    script.chmod(0o755)
    if how == "run":
        bundle.config["process"]["args"] = ["/attack"]
        bundle.write()
        proc = runtime("run", "--bundle", str(bundle.path), "selfexe")
    else:
        _sh(bundle, "sleep 30")
        runtime("run", "--detach", "--bundle", str(bundle.path), "selfexe", check=True)
        try:
            proc = runtime("exec", "selfexe", "/attack")
        finally:
            runtime("delete", "--force", "selfexe")
    assert "Python" not in proc.stdout + proc.stderr
    assert proc.returncode == 127


def test_the_exec_fifo_and_state_are_private(runtime: Runtime, bundle: Bundle) -> None:
    """Other users wrote into exec.fifo (0622 in a 0711 directory) and held it open: `start`
    hung, then failed with their text. Now: directories 0700, FIFO 0600."""
    runtime("create", "--bundle", str(bundle.path), "private", check=True)
    try:
        cdir = runtime.root / "private"
        assert stat.S_IMODE(os.stat(runtime.root).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(cdir).st_mode) == 0o700
        fifo = os.stat(cdir / "exec.fifo")
        assert stat.S_ISFIFO(fifo.st_mode) and stat.S_IMODE(fifo.st_mode) == 0o600
        probe = subprocess.run(
            [sys.executable, "-c", "import os,sys; os.open(sys.argv[1], os.O_WRONLY | "
             "os.O_NONBLOCK)", str(cdir / "exec.fifo")],
            user=65534, group=65534, extra_groups=[], capture_output=True, text=True)
        assert probe.returncode != 0
        assert "PermissionError" in probe.stderr
        runtime("start", "private", check=True)
    finally:
        runtime("delete", "--force", "private")


def test_fifo_belongs_to_a_non_root_process_user(runtime: Runtime, bundle: Bundle) -> None:
    """The init reopens the FIFO after becoming the process's user: it must still be able
    to (0600, owned by that user's host ids), and the process must still start."""
    _sh(bundle, "id -u", user={"uid": 1000, "gid": 1000})
    runtime("create", "--bundle", str(bundle.path), "user1000", check=True)
    try:
        st = os.stat(runtime.root / "user1000" / "exec.fifo")
        assert (st.st_uid, st.st_gid) == (1000, 1000)
        runtime("start", "user1000", check=True)
    finally:
        runtime("delete", "--force", "user1000")


@pytest.mark.parametrize("how", ["run", "exec"])
def test_kill_0_inside_reaches_only_the_container(runtime: Runtime, bundle: Bundle,
                                                  how: str) -> None:
    """runc makes every init and exec'd process a session leader; without it `kill -9 0`
    inside killed Docker's shim, podman's conmon, or the shell running `pyoci run`. Here the
    caller is pyoci itself: it must live to report the container's 128+9."""
    if how == "run":
        _sh(bundle, "kill -9 0; echo not reached")
        proc = runtime("run", "--bundle", str(bundle.path), "kill0", start_new_session=True)
    else:
        _sh(bundle, "sleep 30")
        runtime("run", "--detach", "--bundle", str(bundle.path), "kill0", check=True)
        try:
            proc = runtime("exec", "kill0", "/bin/sh", "-c", "kill -9 0; echo not reached",
                           start_new_session=True)
            # The container's init is in a session of its own too: untouched.
            assert runtime.state("kill0")["status"] == "running"
        finally:
            runtime("delete", "--force", "kill0")
    if how == "run":
        # PID 1 of its pid namespace ignores a SIGKILL sent from inside: it goes on.
        assert (proc.returncode, proc.stdout) == (0, "not reached\n"), proc.stderr
    else:
        assert proc.returncode == 137, (proc.returncode, proc.stderr)
        assert "not reached" not in proc.stdout


def test_init_is_a_session_leader_without_a_terminal(runtime: Runtime, bundle: Bundle) -> None:
    _sh(bundle, "sleep 30")
    runtime("run", "--detach", "--bundle", str(bundle.path), "sess", check=True)
    try:
        pid = runtime.state("sess")["pid"]
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # fields[2] is pgrp, fields[3] session (proc(5), counting from "state")
        assert int(fields[3]) == pid and int(fields[2]) == pid
        assert int(fields[4]) == 0  # tty_nr: no controlling terminal
    finally:
        runtime("delete", "--force", "sess")


def test_the_callers_terminal_is_out_of_reach(runtime: Runtime, bundle: Bundle,
                                              tmp_path: Path) -> None:
    """With its stdio redirected, a container process opened /dev/tty -- the terminal of
    the shell that ran pyoci -- and could type into it with TIOCSTI. Under runc that
    open fails with ENXIO: the container has no controlling terminal."""
    _sh(bundle, "if echo x > /dev/tty; then echo OPENED; else echo DENIED; fi")
    out = tmp_path / "out"
    pid, master = pty.fork()
    if pid == 0:  # a session whose controlling terminal is the pty, like a login shell
        try:
            with open(out, "w") as f:
                os.dup2(f.fileno(), 1)
                os.dup2(f.fileno(), 2)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.execv(runtime.cmd[0], [*runtime.cmd, "--root", str(runtime.root), "run",
                                      "--bundle", str(bundle.path), "tty"])
        finally:
            os._exit(99)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.read(master, 1024)  # drain: the pty must not fill up
        except OSError:
            pass
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    os.close(master)
    text = out.read_text()
    assert "DENIED" in text, text
    assert "OPENED" not in text
