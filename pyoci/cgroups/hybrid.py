"""Hybrid hosts: v1 controllers plus a cgroup2 hierarchy (systemd's "hybrid" layout, e.g.
/sys/fs/cgroup/unified with only hugetlb), the v1 and v2 managers composed.

The container has its v1 directories and one in the unified hierarchy. A controller is
used where it is mounted: v1 first, else the unified hierarchy, under v2's rule for
cgroup.subtree_control. The freezer is v1's when mounted, else cgroup.freeze; device
rules go to devices.allow when the devices controller is mounted, else to a BPF program;
SIGKILL to all uses cgroup.kill (the unified subtree holds every process); statistics are
v1's, with what the unified hierarchy adds. runc handles this layout (fs with the unified
path); crun refuses it.

:class:`HybridManager` inherits both implementations and says, for every operation both
define, which one applies or how they combine: nothing here is resolved by the method
order alone.
"""

from __future__ import annotations

import os

from pyoci.cgroups import CgroupError
from pyoci.cgroups import manager as base
from pyoci.cgroups.manager import _CORE_PREFIXES, V1_TO_V2
from pyoci.cgroups.v1 import V1Manager
from pyoci.cgroups.v2 import V2Manager

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from pyoci.config.model import DeviceRule, Resources


class HybridManager(V1Manager, V2Manager):
    """``v1`` directories and a ``unified`` one, each hierarchy driven by its manager."""

    mode = "hybrid"

    def __init__(self, v1: dict[str, str], unified: str | None,
                 unified_mount: str | None, *, unified_base: str | None = None,
                 created: bool = True, parents: Sequence[str] = ()) -> None:
        base.CgroupManager.__init__(self, v1, unified, unified_mount,
                                    unified_base=unified_base, created=created,
                                    parents=parents)

    def directories(self) -> list[str]:
        return V1Manager.directories(self) + V2Manager.directories(self)

    def _pids_dir(self) -> str | None:
        """The unified directory: every process is in it, whatever v1 has mounted."""
        if self.unified is not None:
            return self.unified
        return V1Manager._pids_dir(self)

    # -- freezer: v1's freezer when mounted, else cgroup.freeze ------------------------------

    def _freezer_dir(self) -> tuple[str, bool] | None:
        return V1Manager._freezer_dir(self) or V2Manager._freezer_dir(self)

    #: cgroup.kill of the unified directory (then a v1 freeze is thawed, see there).
    _kill_at_once = V2Manager._kill_at_once
    #: The v1 cpuset needs filling whatever else is mounted.
    _after_mkdir = V1Manager._after_mkdir

    # -- resources: v1 where mounted, else the unified hierarchy ----------------------------

    _needed = V1Manager._needed

    def _check_skipped(self, res: Resources) -> None:
        """A limit for a hierarchy left out rootless: its v1 hierarchy, or the unified one
        for a controller with no v1 directory (and for ``unified`` keys)."""
        needed = {c: p for c, p in self._needed(res).items() if c != "devices"}
        where = {c: c if c not in self.v1 and c in self.skipped else None for c in needed}
        for c in needed:
            if where[c] is None and c not in self.v1 and self.unified is None \
                    and "unified" in self.skipped:
                where[c] = "unified"
        if res.unified and self.unified is None and "unified" in self.skipped:
            needed["unified"] = "linux.resources.unified"
            where["unified"] = "unified"
        for c, json_path in needed.items():
            h = where.get(c)
            if h is None or h not in self.skipped:
                continue
            _directory, why = self.skipped[h]
            raise base.skipped_error(json_path, c, why)

    def _set_resources(self, res: Resources, update: bool) -> None:
        """Each controller in its v1 hierarchy if mounted, else (through its v2 name) in the
        unified hierarchy, enabled there as on v2; ``unified`` keys on the unified
        hierarchy. A controller neither offers is an error naming the field."""
        from pyoci.cgroups import controllers as ctl

        available = self._unified_available()
        needed = ctl.needed_v1(res)
        on_v2: dict[str, str] = {}
        for c1, json_path in needed.items():
            if c1 in self.v1 or (c1 == "devices" and self.unified is not None):
                continue   # (devices: the rules go to BPF on the unified hierarchy)
            c2 = V1_TO_V2.get(c1)
            if c2 is not None and c2 in available:
                on_v2.setdefault(c2, json_path)
                continue
            raise CgroupError(f"{json_path} needs the {c1} controller, which this host "
                              "does not mount")
        for key in res.unified:
            prefix = key.split(".", 1)[0]
            if prefix in _CORE_PREFIXES:
                continue
            if prefix not in available:
                where = (" (it is bound to a cgroup v1 hierarchy here)"
                         if prefix in self.v1 or any(V1_TO_V2.get(c) == prefix
                                                     for c in self.v1) else "")
                raise CgroupError(f"linux.resources.unified.{key} needs the {prefix} "
                                  f"controller on the unified hierarchy, which this host does "
                                  f"not offer{where}")
            on_v2.setdefault(prefix, f"linux.resources.unified.{key}")
        for c1 in needed:
            if c1 in self.v1:
                ctl.apply_v1(c1, self.v1[c1], res, update=update)
        if on_v2 or res.unified:
            if self.unified is None:   # only core keys (cgroup.*) can get here without it
                raise CgroupError("linux.resources.unified needs the unified hierarchy, "
                                  "which this host does not mount")
            self._enable(on_v2)
            ctl.apply_v2(self.unified, res, tuple(on_v2), update=update)

    def _set_devices(self, rules: Sequence[DeviceRule]) -> None:
        if "devices" in self.v1:
            V1Manager._set_devices(self, rules)
        else:
            V2Manager._set_devices(self, rules)

    # -- statistics -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """v1 figures first; the unified hierarchy adds what no v1 hierarchy has (e.g.
        hugetlb)."""
        data = V1Manager.stats(self)
        if self.unified is not None and os.path.isdir(self.unified):
            for key, value in V2Manager.stats(self).items():
                data.setdefault(key, value)
        return data

    def oom_kill_count(self) -> int:
        if "memory" in self.v1:
            return V1Manager.oom_kill_count(self)
        return V2Manager.oom_kill_count(self)


__all__ = ["HybridManager"]
