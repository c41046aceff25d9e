"""Cgroup executor: one interface (manager.py ``CgroupManager``) implemented for cgroup v1
(v1.py), v2 (v2.py) and hybrid hosts (hybrid.py, the two composed).

This module is imported on the hot path (state, kill, delete), so it stays light: only the
exception and two thin entry points that import the manager lazily.
"""

from __future__ import annotations

from pyoci.errors import PyociError

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here

if TYPE_CHECKING:
    from typing import Any

    from pyoci.cgroups.detect import Layout
    from pyoci.cgroups.manager import CgroupManager


class CgroupError(PyociError):
    """A cgroup could not be set up, written, read or removed; the message names the
    JSON path or cgroup file concerned and the kernel's reason."""


def read_events(directory: str) -> dict[str, str]:
    """cgroup.events as a dict ("populated" and "frozen", cgroup-v2.rst); {} if gone."""
    try:
        with open(f"{directory}/cgroup.events") as f:
            text = f.read()
    except FileNotFoundError:
        return {}
    return dict(line.split(None, 1) for line in text.splitlines() if " " in line)


def is_frozen(directory: str, is_v1: bool) -> bool:
    """What the kernel says of one cgroup: v1 freezer.state FROZEN, or "frozen 1" in
    cgroup2's cgroup.events (cgroup-v2.rst). A cgroup that is gone is not frozen."""
    if not is_v1:
        return read_events(directory).get("frozen") == "1"
    try:
        with open(f"{directory}/freezer.state") as f:
            return f.read().strip() == "FROZEN"
    except FileNotFoundError:
        return False


def recorded_frozen(doc: dict[str, Any]) -> bool:
    """:meth:`CgroupManager.frozen` for the record in state.json, without importing the manager
    (~0.5 ms that `state` and `start` need not pay, issue 5). Malformed records count as
    not frozen; the commands that act on the cgroup parse them strictly."""
    if not isinstance(doc, dict) or doc.get("created", True) is not True:
        return False
    v1 = doc.get("v1") or {}
    if isinstance(v1, dict) and isinstance(v1.get("freezer"), str):
        return is_frozen(v1["freezer"], True)
    unified = doc.get("unified")
    return isinstance(unified, str) and is_frozen(unified, False)


def open_manager(cgroups_path: str | None, cid: str, *, systemd: bool = False,
                 layout: Layout | None = None) -> CgroupManager:
    """Resolve ``linux.cgroupsPath`` on this host (see :func:`manager.open_manager`;
    ``layout`` replaces detection, for tests)."""
    from pyoci.cgroups.manager import open_manager as _open

    return _open(cgroups_path, cid, systemd=systemd, layout=layout)


def manager_from_state(doc: dict[str, Any]) -> CgroupManager:
    """Rebuild a manager from :meth:`CgroupManager.to_state` without re-detecting the host."""
    from pyoci.cgroups.manager import manager_from_state as _from_state

    return _from_state(doc)


__all__ = ["CgroupError", "is_frozen", "manager_from_state", "open_manager",
           "read_events", "recorded_frozen"]
