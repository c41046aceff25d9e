"""Pure-logic units: in-rootfs path resolution, mount options, signals, ids, state."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from pyoci import syscalls as sc
from pyoci.errors import PyociError
from pyoci.executors.mounts import ParsedOptions
from pyoci.executors.paths import ensure_dir, secure_join
from pyoci.operations.common import parse_signal
from pyoci.state import Container, check_id


def test_secure_join_keeps_symlinks_inside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    os.symlink("/etc", root / "a" / "abs")
    os.symlink("../../../../..", root / "a" / "b" / "up")
    assert secure_join(str(root), "/a/abs/passwd") == str(root / "etc" / "passwd")
    assert secure_join(str(root), "/a/b/up/x") == str(root / "x")
    assert secure_join(str(root), "../../outside") == str(root / "outside")
    assert secure_join(str(root), "/") == str(root)


def test_secure_join_symlink_loop(tmp_path: Path) -> None:
    os.symlink("loop", tmp_path / "loop")
    with pytest.raises(OSError):
        secure_join(str(tmp_path), "/loop/x")


def test_ensure_dir_creates_inside_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    os.symlink(str(outside), root / "evil")
    made = ensure_dir(str(root), "/evil/sub")
    assert made == str(root / str(outside).lstrip("/") / "sub")
    assert not outside.exists()


def test_mount_options() -> None:
    opts = ParsedOptions(("rbind", "ro", "nosuid", "rprivate", "mode=755", "size=1k"))
    assert opts.flags == sc.MS_BIND | sc.MS_REC | sc.MS_RDONLY | sc.MS_NOSUID
    assert opts.propagation == [sc.MS_PRIVATE | sc.MS_REC]
    assert opts.data == "mode=755,size=1k"
    assert ParsedOptions(("ro", "rw")).flags == 0
    with pytest.raises(ValueError, match="idmap"):
        ParsedOptions(("idmap",))


@pytest.mark.parametrize(("text", "num"), [("KILL", 9), ("SIGKILL", 9), ("9", 9),
                                            ("term", 15), ("SIGRTMIN+1", signal.SIGRTMIN + 1)])
def test_parse_signal(text: str, num: int) -> None:
    assert parse_signal(text) == num


@pytest.mark.parametrize("text", ["", "0", "999", "NOPE", "SIG"])
def test_parse_signal_rejects(text: str) -> None:
    with pytest.raises(PyociError):
        parse_signal(text)


@pytest.mark.parametrize("cid", ["abc", "a.b-c_d+e", "x" * 64])
def test_ids_accepted(cid: str) -> None:
    check_id(cid)


@pytest.mark.parametrize("cid", ["", ".", "..", "a/b", "../x", "a b", "é!"])
def test_ids_refused(cid: str) -> None:
    with pytest.raises(PyociError):
        check_id(cid)


def _container(tmp_path: Path, **doc: object) -> Container:
    c = Container(str(tmp_path), "c")
    os.mkdir(c.dir)
    base = {"ociVersion": "1.3.0", "id": "c", "status": "created", "pid": os.getpid(),
            "bundle": "/b", "pyoci": {"initStartTime": _start_time(os.getpid())}}
    base.update(doc)
    Path(c.state_path).write_text(json.dumps(base))
    return c.load()


def _start_time(pid: int) -> int:
    data = Path(f"/proc/{pid}/stat").read_bytes()
    return int(data[data.rindex(b")") + 2:].split()[19])


def test_status_created_while_fifo_exists(tmp_path: Path) -> None:
    c = _container(tmp_path)
    os.mkfifo(c.fifo_path)
    assert c.status() == "created"
    os.unlink(c.fifo_path)
    assert c.status() == "running"


def test_status_stopped_on_start_time_mismatch(tmp_path: Path) -> None:
    c = _container(tmp_path, pyoci={"initStartTime": 1})
    assert c.status() == "stopped"
    assert c.spec_state()["pid"] == 0


def test_status_stopped_for_zombie(tmp_path: Path) -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        import time

        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}/stat").read_bytes().split(b") ")[1][:1] != b"Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        c = _container(tmp_path, pid=pid, pyoci={"initStartTime": _start_time(pid)})
        assert c.status() == "stopped"
    finally:
        os.waitpid(pid, 0)


def test_missing_container(tmp_path: Path) -> None:
    with pytest.raises(PyociError, match="does not exist"):
        Container(str(tmp_path), "nope").load()
