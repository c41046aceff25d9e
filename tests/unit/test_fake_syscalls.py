"""Executors against a fake syscall layer: which mount(2) calls they make, in which
order, with which flags — without touching the machine."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from pyoci import syscalls as sc
from pyoci.config.model import Linux, Mount, Namespace
from pyoci.executors import mounts, namespaces
from tests.unit.fake_syscalls import FakeSyscalls


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeSyscalls:
    return FakeSyscalls(sandbox=str(tmp_path)).install(monkeypatch)


def test_readonly_bind_is_bind_then_remount(fake: FakeSyscalls, tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    root.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    mounts.mount_entry(str(root), str(tmp_path),
                       Mount("/data", "bind", str(src), ("rbind", "ro", "nosuid", "rslave")))
    assert (root / "data").is_dir()
    (op1, s1, t1, _, f1, _), (op2, _, t2, _, f2, _), (op3, s3, t3, _, f3, _) = fake.of("mount")
    assert (s1, t1, f1) == (str(src), str(root / "data"), sc.MS_BIND | sc.MS_REC)
    assert f2 & (sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_NOSUID) == (
        sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_NOSUID)
    assert (s3, t3, f3) == (None, str(root / "data"), sc.MS_SLAVE | sc.MS_REC)


def test_tmpfs_passes_data_and_flags(fake: FakeSyscalls, tmp_path: Path) -> None:
    mounts.mount_entry(str(tmp_path), str(tmp_path),
                       Mount("/run", "tmpfs", "tmpfs", ("nodev", "mode=755", "size=1m")))
    assert fake.of("mount") == [("mount", "tmpfs", str(tmp_path / "run"), "tmpfs", sc.MS_NODEV,
                           "mode=755,size=1m")]


def test_bind_file_creates_file_target(fake: FakeSyscalls, tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    root.mkdir()
    src = tmp_path / "hosts"
    src.write_text("x")
    mounts.mount_entry(str(root), str(tmp_path), Mount("/etc/hosts", "bind", "hosts", ("bind",)))
    assert (root / "etc" / "hosts").is_file()
    assert fake.of("mount")[0][1] == str(src)  # relative source resolved against the bundle


def test_new_user_namespace_first_then_the_rest(fake: FakeSyscalls,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    linux = Linux(namespaces=(Namespace("pid"), Namespace("user"), Namespace("mount"),
                              Namespace("network", "/proc/1/ns/net")))
    namespaces.unshare_new(linux, lambda: seen.append("maps"))
    assert fake.calls == [("unshare", sc.CLONE_NEWUSER), ("setresgid", 0, 0, 0),
                          ("setresuid", 0, 0, 0),
                          ("unshare", sc.CLONE_NEWPID | sc.CLONE_NEWNS)]
    assert seen == ["maps"]


def test_join_order_puts_user_first(tmp_path: Path) -> None:
    paths = {}
    for t in ("uts", "user", "network"):
        p = tmp_path / t
        p.write_text("")
        paths[t] = str(p)
    linux = Linux(namespaces=tuple(Namespace(t, p) for t, p in paths.items()))
    opened = namespaces.open_joined(linux)
    try:
        assert [t for t, _ in opened] == ["user", "uts", "network"]
    finally:
        for _, fd in opened:
            import os

            os.close(fd)


def test_the_fake_fails_a_named_call_once(fake: FakeSyscalls, tmp_path: Path) -> None:
    """fail(): recorded, then refused with the errno (the kernel's answer), once."""
    fake.fail("sethostname", errno.EPERM)
    with pytest.raises(PermissionError):
        sc.sethostname("a")
    sc.sethostname("b")
    assert fake.calls == [("sethostname", "a"), ("sethostname", "b")]


def test_the_fake_changes_nothing_outside_its_sandbox(fake: FakeSyscalls,
                                                      tmp_path: Path) -> None:
    """Effects outside the sandbox are only recorded; inside it, directories are made
    (the executors open what they made)."""
    old = os.umask(0o022)
    os.umask(old)
    sc.setresuid(12345, 12345, 12345)
    sc.chdir("/nonexistent")
    assert sc.umask(0) == 0o022 and os.umask(old) == old
    top = os.open(tmp_path, os.O_PATH | os.O_CLOEXEC)
    try:
        sc.mkdir("made", 0o700, dir_fd=top)
    finally:
        os.close(top)
    sc.mkdir("/root-not-made-by-the-fake", 0o700)
    assert os.getuid() == os.geteuid() and os.getcwd() != "/nonexistent"
    assert (tmp_path / "made").is_dir() and not os.path.exists("/root-not-made-by-the-fake")
    assert fake.names() == ["setresuid", "chdir", "umask", "mkdir", "mkdir"]
