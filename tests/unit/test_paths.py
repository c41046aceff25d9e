"""In-rootfs resolution to file descriptors (pyoci/executors/paths.py): symlinks and '..'
never leave the root, missing components are made through fds, and a directory swapped
for a symlink mid-resolution still ends inside the root (CVE-2021-30465). Every case runs
with openat2(RESOLVE_IN_ROOT) and with the O_NOFOLLOW component walk that replaces it
where openat2 is missing."""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyoci.executors import paths
from pyoci.executors.paths import Root, UnsafePath, resolve


@pytest.fixture(params=["openat2", "walk"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(paths, "use_openat2", request.param == "openat2")
    return request.param


@pytest.fixture
def root(tmp_path: Path) -> Iterator[tuple[Path, Root]]:
    path = tmp_path / "root"
    path.mkdir()
    r = Root(str(path))
    yield path, r
    r.close()


def _where(r: Root, fd: int) -> str:
    try:
        return r.host_path(fd)
    finally:
        os.close(fd)


def test_symlinks_and_dotdot_stay_inside(mode: str, root: tuple[Path, Root],
                                         tmp_path: Path) -> None:
    path, r = root
    (path / "etc").mkdir()
    (path / "etc" / "passwd").write_text("")
    (path / "a" / "b").mkdir(parents=True)
    os.symlink("/etc", path / "a" / "abs")
    os.symlink("../../../../..", path / "a" / "b" / "up")
    os.symlink(str(tmp_path), path / "host")  # the host's parent dir, absolute
    assert _where(r, resolve(r, "/a/abs/passwd")) == str(path / "etc" / "passwd")
    assert _where(r, resolve(r, "/a/b/up/etc")) == str(path / "etc")
    assert _where(r, resolve(r, "../../etc")) == str(path / "etc")
    assert _where(r, resolve(r, "/")) == str(path)
    with pytest.raises(FileNotFoundError):  # /host is resolved inside: not there
        resolve(r, "/host/root")


def test_symlink_loop_is_eloop(mode: str, root: tuple[Path, Root]) -> None:
    path, r = root
    os.symlink("loop", path / "loop")
    with pytest.raises(OSError) as info:
        resolve(r, "/loop/x", create="dir")
    assert "symbolic links" in str(info.value).lower() or info.value.errno == 40


def test_create_dirs_and_file_inside(mode: str, root: tuple[Path, Root],
                                     tmp_path: Path) -> None:
    path, r = root
    outside = tmp_path / "outside"
    os.symlink(str(outside), path / "evil")
    made = _where(r, resolve(r, "/evil/sub/dir", create="dir", mode=0o750))
    assert made == str(path / str(outside).lstrip("/") / "sub" / "dir")
    assert not outside.exists()
    f = _where(r, resolve(r, "/x/y/file", create="file"))
    assert Path(f).is_file() and f == str(path / "x" / "y" / "file")


def test_missing_without_create(mode: str, root: tuple[Path, Root]) -> None:
    _, r = root
    with pytest.raises(FileNotFoundError):
        resolve(r, "/no/such")


def test_file_in_the_middle_is_enotdir(mode: str, root: tuple[Path, Root]) -> None:
    path, r = root
    (path / "f").write_text("")
    with pytest.raises(NotADirectoryError):
        resolve(r, "/f/x", create="dir")


def test_no_symlinks_mode_names_the_symlink(mode: str, root: tuple[Path, Root]) -> None:
    path, r = root
    (path / "real").mkdir()
    os.symlink("/real", path / "proc")
    with pytest.raises(UnsafePath, match="/proc is a symbolic link"):
        resolve(r, "/proc", create="dir", symlinks=False)
    assert list((path / "real").iterdir()) == []
    fd = resolve(r, "/sys/fs", create="dir", symlinks=False)  # plain dirs are fine
    assert _where(r, fd) == str(path / "sys" / "fs")


def test_host_path_outside_the_root_is_refused(root: tuple[Path, Root],
                                               tmp_path: Path) -> None:
    _, r = root
    fd = os.open(tmp_path, os.O_PATH)
    try:
        with pytest.raises(UnsafePath, match="possibly malicious path detected"):
            r.host_path(fd)
    finally:
        os.close(fd)


def test_secure_join_and_ensure(mode: str, tmp_path: Path) -> None:
    path = tmp_path / "root"
    (path / "a").mkdir(parents=True)
    os.symlink("/etc", path / "a" / "abs")
    assert paths.secure_join(str(path), "/a/abs/passwd") == str(path / "etc" / "passwd")
    assert paths.secure_join(str(path), "/a/missing/../x") == str(path / "a" / "x")
    assert paths.ensure_dir(str(path), "/a/abs/d") == str(path / "etc" / "d")
    assert paths.ensure_file(str(path), "/a/abs/f") == str(path / "etc" / "f")
    assert (path / "etc" / "f").is_file()


def test_swap_race_never_resolves_outside(mode: str, root: tuple[Path, Root],
                                          tmp_path: Path) -> None:
    """A thread swaps /vol/x between a directory and a symlink to a host directory with
    renameat2(RENAME_EXCHANGE) while the path is resolved again and again: every result
    is inside the root (the directory, or the symlink's target resolved in the root)."""
    path, r = root
    vol = path / "vol"
    vol.mkdir()
    (vol / "x").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), vol / "y")
    libc = ctypes.CDLL(None, use_errno=True)
    a, b = os.fsencode(vol / "x"), os.fsencode(vol / "y")
    if libc.renameat2(-100, a, -100, b, 2) != 0:
        pytest.skip("renameat2(RENAME_EXCHANGE) unavailable")
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            libc.renameat2(-100, a, -100, b, 2)

    thread = threading.Thread(target=swap)
    thread.start()
    seen = set()
    try:
        for _ in range(3000):
            try:
                fd = resolve(r, "/vol/x/sub", create="dir")
            except (FileExistsError, NotADirectoryError, FileNotFoundError):
                continue
            seen.add(_where(r, fd))
    finally:
        stop.set()
        thread.join()
    assert list(outside.iterdir()) == []
    assert seen and all(p.startswith(str(path) + "/") for p in seen), seen
