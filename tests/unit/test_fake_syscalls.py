"""Executors against a fake syscall layer: which mount(2) calls they make, in which
order, with which flags — without touching the machine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pyoci import syscalls as sc
from pyoci.config.model import Linux, Mount, Namespace
from pyoci.executors import mounts, namespaces


class FakeSyscalls:
    """Records calls; mirrors the functions and constants of pyoci.syscalls."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(sc, name)  # constants

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None = None) -> None:
        # Targets are /proc/self/fd/N of an fd open only during the call: record the path.
        if target.startswith("/proc/self/fd/"):
            target = os.readlink(target)
        self.calls.append(("mount", source, target, fstype, flags, data))

    def unshare(self, flags: int) -> None:
        self.calls.append(("unshare", flags))

    def setns(self, fd: int, nstype: int = 0) -> None:
        self.calls.append(("setns", nstype))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeSyscalls:
    f = FakeSyscalls()
    monkeypatch.setattr(mounts, "sc", f)
    monkeypatch.setattr(namespaces, "sc", f)
    return f


def test_readonly_bind_is_bind_then_remount(fake: FakeSyscalls, tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    root.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    mounts.mount_entry(str(root), str(tmp_path),
                       Mount("/data", "bind", str(src), ("rbind", "ro", "nosuid", "rslave")))
    assert (root / "data").is_dir()
    (op1, s1, t1, _, f1, _), (op2, _, t2, _, f2, _), (op3, s3, t3, _, f3, _) = fake.calls
    assert (s1, t1, f1) == (str(src), str(root / "data"), sc.MS_BIND | sc.MS_REC)
    assert f2 & (sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_NOSUID) == (
        sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_NOSUID)
    assert (s3, t3, f3) == (None, str(root / "data"), sc.MS_SLAVE | sc.MS_REC)


def test_tmpfs_passes_data_and_flags(fake: FakeSyscalls, tmp_path: Path) -> None:
    mounts.mount_entry(str(tmp_path), str(tmp_path),
                       Mount("/run", "tmpfs", "tmpfs", ("nodev", "mode=755", "size=1m")))
    assert fake.calls == [("mount", "tmpfs", str(tmp_path / "run"), "tmpfs", sc.MS_NODEV,
                           "mode=755,size=1m")]


def test_bind_file_creates_file_target(fake: FakeSyscalls, tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    root.mkdir()
    src = tmp_path / "hosts"
    src.write_text("x")
    mounts.mount_entry(str(root), str(tmp_path), Mount("/etc/hosts", "bind", "hosts", ("bind",)))
    assert (root / "etc" / "hosts").is_file()
    assert fake.calls[0][1] == str(src)  # relative source resolved against the bundle


def test_new_user_namespace_first_then_the_rest(fake: FakeSyscalls,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(namespaces.os, "setresuid", lambda *a: None)
    monkeypatch.setattr(namespaces.os, "setresgid", lambda *a: None)
    seen: list[str] = []
    linux = Linux(namespaces=(Namespace("pid"), Namespace("user"), Namespace("mount"),
                              Namespace("network", "/proc/1/ns/net")))
    namespaces.unshare_new(linux, lambda: seen.append("maps"))
    assert fake.calls == [("unshare", sc.CLONE_NEWUSER),
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
