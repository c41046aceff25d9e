"""The pty slave is reached from the master (TIOCGPTPEER), never by its /dev/pts/N path,
which a container could have replaced (CVE-2025-52565, runc 1.2.8)."""

from __future__ import annotations

import os
import stat

import pytest

from pyoci.executors import terminal


def test_slave_comes_from_the_master_not_a_path(monkeypatch: pytest.MonkeyPatch) -> None:
    if not os.path.exists("/dev/ptmx"):
        pytest.skip("no /dev/ptmx here")
    real_open = os.open

    def guarded(path: str, *args: object, **kw: object) -> int:
        assert not str(path).startswith("/dev/pts/"), f"opened {path} by path"
        return real_open(path, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", guarded)
    master, slave = terminal.open_pty((24, 80))
    try:
        st = os.fstat(slave)
        assert stat.S_ISCHR(st.st_mode) and 136 <= os.major(st.st_rdev) <= 143
        assert os.ttyname(slave).startswith("/dev/pts/")
        os.write(master, b"ping\n")
        assert os.read(slave, 5) == b"ping\n"
    finally:
        os.close(slave)
        os.close(master)
