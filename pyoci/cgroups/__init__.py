"""Cgroup executor: one manager over cgroup v1, v2 and hybrid hosts (see manager.py).

This module is imported on the hot path (state, kill, delete), so it stays light: only the
exception and two thin entry points that import the manager lazily.
"""

from __future__ import annotations

from pyoci.errors import PyociError

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here

if TYPE_CHECKING:
    from typing import Any

    from pyoci.cgroups.detect import Layout
    from pyoci.cgroups.manager import Manager


class CgroupError(PyociError):
    """A cgroup could not be set up, written, read or removed; the message names the
    JSON path or cgroup file concerned and the kernel's reason."""


def open_manager(cgroups_path: str | None, cid: str, *, systemd: bool = False,
                 layout: Layout | None = None) -> Manager:
    """Resolve ``linux.cgroupsPath`` on this host (see :func:`manager.open_manager`;
    ``layout`` replaces detection, for tests)."""
    from pyoci.cgroups.manager import open_manager as _open

    return _open(cgroups_path, cid, systemd=systemd, layout=layout)


def manager_from_state(doc: dict[str, Any]) -> Manager:
    """Rebuild a manager from :meth:`Manager.to_state` without re-detecting the host."""
    from pyoci.cgroups.manager import manager_from_state as _from_state

    return _from_state(doc)


__all__ = ["CgroupError", "manager_from_state", "open_manager"]
