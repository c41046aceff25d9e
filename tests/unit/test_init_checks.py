"""The init's last-line checks, exercised in a forked child (they need root)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyoci import child


def _in_child(body: object) -> int:
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            body()  # type: ignore[operator]
            code = 0
        except RuntimeError:
            code = 1
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot(2) needs CAP_SYS_CHROOT")
def test_cwd_outside_the_root_is_refused(tmp_path: Path) -> None:
    """CVE-2024-21626's last line (runc >= 1.1.12): a cwd the kernel calls "(unreachable)"
    -- outside the root -- is refused after chdir."""
    inside = tmp_path / "root"
    inside.mkdir()

    def outside() -> None:
        os.chdir(tmp_path)  # stays the cwd across the chroot: outside the new root
        os.chroot(inside)
        child._check_cwd()

    def within() -> None:
        os.chroot(inside)
        os.chdir("/")
        child._check_cwd()

    assert _in_child(outside) == 1
    assert _in_child(within) == 0
