"""cgroup v1: a directory in every mounted v1 hierarchy (runc's libcontainer/cgroups/fs).

Each v1 controller (and ``name=systemd``, which runc joins too) has its own hierarchy, so
the container has one directory per mount point; co-mounted controllers share one.
Freezing is freezer.state, device rules go to devices.allow/devices.deny
(devices_v1.py), resources to the v1 files of controllers.py, statistics to
stats.stats_v1. A new cpuset cgroup is filled from its parent before use.

The functions at module level act on one directory, so that the hybrid manager
(hybrid.py) composes them with their v2 counterparts.
"""

from __future__ import annotations

import os

from pyoci.cgroups import CgroupError
from pyoci.cgroups import manager as base
from pyoci.cgroups.manager import NO_DEVICES, CgroupManager, _read, _write
from pyoci.errors import describe_oserror

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from pyoci.config.model import DeviceRule, Resources


# --- one v1 directory ---------------------------------------------------------------------

def freeze_dir(directory: str) -> bool:
    """Write FROZEN to ``directory``/freezer.state until the kernel reports FROZEN; False
    if it does not within FREEZE_TIMEOUT.

    freezer.state passes through FREEZING until every task is frozen; writing FROZEN again
    retries tasks that could not be frozen yet (cgroup-v1/freezer-subsystem.rst)."""
    state = os.path.join(directory, "freezer.state")

    def frozen() -> bool:
        _write(state, "FROZEN", "freezing the container")
        return _read(state).strip() == "FROZEN"

    return base.wait_until(frozen)


def thaw_dir(directory: str) -> None:
    """Write THAWED and wait until freezer.state says so."""
    state = os.path.join(directory, "freezer.state")
    _write(state, "THAWED", "thawing the container")
    if not base.wait_until(lambda: _read(state).strip() == "THAWED"):
        raise CgroupError(f"thawing the container: {state} is still "
                          f"{_read(state).strip()}")


def freeze_requested(directory: str) -> bool:
    """freezer.state is FREEZING or FROZEN: a freeze was asked for, complete or not."""
    try:
        state = _read(os.path.join(directory, "freezer.state")).strip()
    except FileNotFoundError:
        return False
    return state in ("FREEZING", "FROZEN")


def _cpuset_file(directory: str, name: str) -> str | None:
    """cpuset.<name>, or <name> in a hierarchy mounted with ``noprefix``."""
    for fname in (f"cpuset.{name}", name):
        path = os.path.join(directory, fname)
        if os.path.exists(path):
            return path
    return None


def _fill_cpuset(directory: str) -> None:
    """Give ``directory`` and each empty ancestor cpus/mems, copying top-down from the
    nearest ancestor that has both."""
    levels = []
    cur = directory.rstrip("/")
    while True:
        files = [_cpuset_file(cur, n) for n in ("cpus", "mems")]
        if None in files:
            break   # not a cpuset cgroup (above the mount point)
        try:
            if all(_read(f).strip() for f in files if f):
                break
        except OSError as exc:
            raise CgroupError(f"reading the cpuset of {cur}: {describe_oserror(exc)}") from exc
        levels.append(cur)
        parent = os.path.dirname(cur)
        if parent == cur:
            break
        cur = parent
    for level in reversed(levels):
        parent = os.path.dirname(level)
        for name in ("cpus", "mems"):
            mine, theirs = _cpuset_file(level, name), _cpuset_file(parent, name)
            if mine is None or theirs is None:
                continue
            try:
                if _read(mine).strip():
                    continue
                value = _read(theirs).strip()
            except OSError as exc:
                raise CgroupError(f"reading {theirs}: {describe_oserror(exc)}") from exc
            if value:
                _write(mine, value, f"copying {os.path.basename(mine)} from the parent cgroup")


# --- the manager --------------------------------------------------------------------------

class V1Manager(CgroupManager):
    """The container's directories in the v1 hierarchies (``v1``: controller -> dir)."""

    mode = "v1"

    def __init__(self, v1: dict[str, str], unified: str | None,
                 unified_mount: str | None, *, unified_base: str | None = None,
                 created: bool = True, parents: Sequence[str] = ()) -> None:
        # A v1 host has no unified hierarchy: whatever a record says of one is ignored.
        super().__init__(v1, None, None, created=created, parents=parents)

    def directories(self) -> list[str]:
        out: list[str] = []
        for d in self.v1.values():
            if d not in out:
                out.append(d)
        return out

    def _pids_dir(self) -> str | None:
        """A controller every process is in; freezer first (the one kill freezes)."""
        for c in ("freezer", "devices", "pids", "memory", "cpu"):
            if c in self.v1:
                return self.v1[c]
        return next(iter(self.v1.values()), None)

    def _freezer_dir(self) -> tuple[str, bool] | None:
        if "freezer" in self.v1:
            return self.v1["freezer"], True
        return None

    def _after_mkdir(self, made: list[str]) -> None:
        """In the v1 cpuset hierarchy a new cgroup starts with empty cpuset.cpus/cpuset.mems
        and the kernel refuses tasks into it (cgroup-v1/cpusets.rst), so every empty level
        down to the container's copies them from its parent, as runc does. Rootless without
        a cgroupsPath, an ancestor the user may not fill means no cpuset cgroup (runc)."""
        if "cpuset" not in self.v1:
            return
        try:
            _fill_cpuset(self.v1["cpuset"])
        except CgroupError as exc:
            if not (self.rootless and not self.explicit_path
                    and isinstance(exc.__cause__, OSError)
                    and exc.__cause__.errno in base._DENIED):
                raise
            # An ancestor's empty cpuset the user may not fill: no cpuset here.
            d = self.v1["cpuset"]
            if d in made:
                os.rmdir(d)
                made.remove(d)
            self._skip(d, str(exc))

    # -- resources --------------------------------------------------------------------------

    def _needed(self, res: Resources) -> dict[str, str]:
        from pyoci.cgroups import controllers as ctl

        return ctl.needed_v1(res)

    def _check_skipped(self, res: Resources) -> None:
        needed = {c: p for c, p in self._needed(res).items() if c != "devices"}
        for c, json_path in needed.items():
            if c in self.v1 or c not in self.skipped:
                continue
            _directory, why = self.skipped[c]
            raise base.skipped_error(json_path, c, why)

    def _set_resources(self, res: Resources, update: bool) -> None:
        """Each controller in its v1 hierarchy; one that is not mounted is an error naming
        the field that needs it (runc skips some silently, leaving the limit unset)."""
        from pyoci.cgroups import controllers as ctl

        needed = ctl.needed_v1(res)
        for c1, json_path in needed.items():
            if c1 not in self.v1:
                raise CgroupError(f"{json_path} needs the {c1} controller, which this host "
                                  "does not mount")
        for key in res.unified:
            raise CgroupError(f"linux.resources.unified.{key} needs cgroup v2, which this "
                              "host does not mount")
        for c1 in needed:
            ctl.apply_v1(c1, self.v1[c1], res, update=update)

    def _set_devices(self, rules: Sequence[DeviceRule]) -> None:
        """devices.allow/devices.deny, written as runc's emulator would (devices_v1.py)."""
        if "devices" not in self.v1:
            raise CgroupError(NO_DEVICES)
        from pyoci.cgroups import devices_v1

        devices_v1.write_rules(self.v1["devices"], rules)

    # -- statistics -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        from pyoci.cgroups import stats as st

        return st.stats_v1({c: d for c, d in self.v1.items() if not c.startswith("name=")})

    def oom_kill_count(self) -> int:
        if "memory" not in self.v1:
            return 0
        from pyoci.cgroups import stats as st

        return st.oom_kill_count_v1(self.v1["memory"])


__all__ = ["V1Manager", "freeze_dir", "freeze_requested", "thaw_dir"]
