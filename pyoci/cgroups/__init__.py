"""Cgroup executor: one interface (manager.py ``CgroupManager``) implemented for cgroup v1
(v1.py), v2 (v2.py) and hybrid hosts (hybrid.py, the two composed).

This module is imported on the hot path (kill, delete, pause), so it stays light: only the
exception and thin entry points that import the manager lazily. The record of a container's
cgroup in state.json is :class:`pyoci.state.CgroupRecord` (parsed once, at load);
:func:`manager_from_record` turns it into a manager.
"""

from __future__ import annotations

from pyoci.errors import PyociError

# The kernel's freezer answer is read where the record is parsed (pyoci/state.py), so
# that `state` tells "paused" from the record without this package; re-exported here.
from pyoci.state import CgroupRecord, is_frozen, read_events

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here

if TYPE_CHECKING:
    from typing import Any

    from pyoci.cgroups.detect import Layout
    from pyoci.cgroups.manager import CgroupManager


class CgroupError(PyociError):
    """A cgroup could not be set up, written, read or removed; the message names the
    JSON path or cgroup file concerned and the kernel's reason."""


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


def manager_from_record(record: CgroupRecord) -> CgroupManager:
    """The manager of a record already parsed (the container's, from state.json)."""
    from pyoci.cgroups.manager import manager_from_record as _from_record

    return _from_record(record)


__all__ = ["CgroupError", "CgroupRecord", "is_frozen", "manager_from_record",
           "manager_from_state", "open_manager", "read_events"]
