"""cgroup v2: one directory in the unified hierarchy (runc's libcontainer/cgroups/fs2).

Controllers must be enabled in cgroup.subtree_control of every ancestor (pyoci enables a
missing one only at or below its own cgroup, never in the hierarchy's root); freezing is
cgroup.freeze with "frozen" in cgroup.events; SIGKILL to all is cgroup.kill; device rules
are a BPF_PROG_TYPE_CGROUP_DEVICE program (bpf_devices.py); statistics stats.stats_v2.

The functions at module level act on one directory, so that the hybrid manager
(hybrid.py) composes them with their v1 counterparts.
"""

from __future__ import annotations

import os

from pyoci.cgroups import CgroupError, read_events
from pyoci.cgroups import manager as base
from pyoci.cgroups.manager import _CORE_PREFIXES, NO_DEVICES, CgroupManager, _read, _write
from pyoci.errors import describe_oserror

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from pyoci.config.model import DeviceRule, Resources


# --- one unified directory ----------------------------------------------------------------

def _wait_events(directory: str, value: str) -> bool:
    """Wait until cgroup.events says ``frozen <value>`` (True) or FREEZE_TIMEOUT passes."""
    return base.wait_until(lambda: read_events(directory).get("frozen", value) == value)


def freeze_dir(directory: str) -> bool:
    """cgroup.freeze 1, then wait for "frozen 1" in cgroup.events (cgroup-v2.rst, kernel
    >= 5.2); False if it does not come within FREEZE_TIMEOUT."""
    _write(os.path.join(directory, "cgroup.freeze"), "1", "freezing the container")
    return _wait_events(directory, "1")


def thaw_dir(directory: str) -> None:
    """cgroup.freeze 0, then wait for "frozen 0"."""
    _write(os.path.join(directory, "cgroup.freeze"), "0", "thawing the container")
    if not _wait_events(directory, "0"):
        # An ancestor may be frozen: the container then stays frozen by design.
        raise CgroupError(f"thawing the container: {directory}/cgroup.events still "
                          "reports frozen (is an ancestor cgroup frozen?)")


def freeze_requested(directory: str) -> bool:
    """cgroup.freeze is 1: a freeze was asked for, complete or not."""
    try:
        return _read(os.path.join(directory, "cgroup.freeze")).strip() == "1"
    except FileNotFoundError:
        return False


# --- the manager --------------------------------------------------------------------------

class V2Manager(CgroupManager):
    """The container's directory in the unified hierarchy (``unified``)."""

    mode = "v2"

    def __init__(self, v1: dict[str, str], unified: str | None,
                 unified_mount: str | None, *, unified_base: str | None = None,
                 created: bool = True, parents: Sequence[str] = ()) -> None:
        # A pure v2 host has no v1 hierarchy: whatever a record says of one is ignored.
        super().__init__({}, unified, unified_mount, unified_base=unified_base,
                         created=created, parents=parents)

    def directories(self) -> list[str]:
        return [self.unified] if self.unified is not None else []

    def _pids_dir(self) -> str | None:
        return self.unified

    def _freezer_dir(self) -> tuple[str, bool] | None:
        """cgroup.freeze: a core file of every non-root cgroup2 (kernel >= 5.2)."""
        if self.unified is not None:
            return self.unified, False
        return None

    def _kill_at_once(self, sig: int) -> bool:
        """SIGKILL through cgroup.kill (kernel >= 5.14): the whole unified subtree at once,
        including processes forked meanwhile."""
        if sig != base._SIGKILL or self.unified is None:
            return False
        kill_file = os.path.join(self.unified, "cgroup.kill")
        if not os.path.exists(kill_file):
            return False
        paused = self._freeze_requested()
        _write(kill_file, "1", "killing the container")
        # A v1 (hybrid) freeze holds even SIGKILL: the victims die only once thawed. v2
        # lets them die; thawing there keeps both modes alike (a killed container is not
        # left "paused"). Decided on what was asked (read before the kill), not on
        # cgroup.events: while the killed tasks exit, v2 reports "frozen 0" for a moment,
        # and the emptied cgroup is "frozen 1" again.
        if paused or self.frozen():
            self.thaw()
        return True

    # -- resources --------------------------------------------------------------------------

    def _needed(self, res: Resources) -> dict[str, str]:
        from pyoci.cgroups import controllers as ctl

        return ctl.needed_v2(res)

    def _check_skipped(self, res: Resources) -> None:
        if "unified" not in self.skipped:
            return
        _directory, why = self.skipped["unified"]
        for c, json_path in self._needed(res).items():
            if c not in _CORE_PREFIXES:
                raise base.skipped_error(json_path, c, why)

    def _set_resources(self, res: Resources, update: bool) -> None:
        """Each controller the fields need must be offered by the hierarchy
        (cgroup.controllers) and is enabled down to the container (:meth:`_enable`)."""
        from pyoci.cgroups import controllers as ctl

        self._set_v2(res, ctl.needed_v2(res), ctl, update)

    def _unified_available(self) -> frozenset[str]:
        if self.unified_mount is None:
            return frozenset()
        try:
            text = _read(os.path.join(self.unified_mount, "cgroup.controllers"))
        except OSError:
            return frozenset()
        return frozenset(text.split())

    def _set_v2(self, res: Resources, needed: dict[str, str], ctl: Any, update: bool) -> None:
        available = self._unified_available()
        wanted = {c: p for c, p in needed.items() if c not in _CORE_PREFIXES}
        for c, json_path in wanted.items():
            if c not in available:
                raise CgroupError(f"{json_path} needs the {c} controller, which this host's "
                                  "cgroup v2 hierarchy does not offer (cgroup.controllers: "
                                  f"{' '.join(sorted(available)) or 'none'})")
        self._enable(wanted)
        ctl.apply_v2(self.unified, res, tuple(wanted), update=update)

    def _enable(self, needed: dict[str, str]) -> None:
        """Make ``needed`` controllers available in the container's unified directory.

        A controller is available in a cgroup when its parent lists it in
        cgroup.subtree_control, and can be listed there only when the grandparent does, up
        to the root (cgroup-v2.rst "Enabling and Disabling"). So every ancestor, top-down,
        must have it. pyoci enables a missing one only at or below its own cgroup
        (``unified_base``) and never in the hierarchy's root: subtree_control above is not
        delegated to it, and a write there changes the whole host (on a hybrid host, the
        root of /sys/fs/cgroup/unified), which runc never does either. Anywhere else a
        missing controller is an error naming the field that needs it.
        """
        if not needed or self.unified is None or self.unified_mount is None:
            return
        top = os.path.normpath(self.unified_mount)
        rel = os.path.relpath(os.path.dirname(os.path.normpath(self.unified)), top)
        levels = [top]
        if rel != ".":
            for comp in rel.split("/"):
                levels.append(os.path.join(levels[-1], comp))
        for level in levels:
            path = os.path.join(level, "cgroup.subtree_control")
            try:
                have = set(_read(path).split())
            except OSError as exc:
                raise CgroupError(f"reading {path}: {describe_oserror(exc)}") from exc
            missing = {c: p for c, p in needed.items() if c not in have}
            if not missing:
                continue
            if not self._may_enable(level):
                c, json_path = next(iter(missing.items()))
                raise CgroupError(
                    f"{json_path}: the {c} controller is not delegated to this cgroup: "
                    f"{path} does not enable it, and pyoci changes cgroup.subtree_control "
                    f"only below the hierarchy's root, at or below its own cgroup "
                    f"({self.unified_base or 'unknown'}) (enable it in {path})")
            for c, json_path in missing.items():
                _write(path, f"+{c}", f"{json_path}: enabling the {c} controller")

    def _may_enable(self, level: str) -> bool:
        """``level`` is the runtime's own unified cgroup or below it, and not the root of
        the hierarchy (the root has no cgroup.type, cgroup-v2.rst "Core Interface Files";
        checked on the file, since the mount point is not the root inside a cgroup
        namespace)."""
        from pyoci.cgroups.paths import is_within

        if self.unified_base is None:
            return False
        if not is_within(os.path.normpath(level), os.path.normpath(self.unified_base)):
            return False
        return os.path.exists(os.path.join(level, "cgroup.type"))

    def _set_devices(self, rules: Sequence[DeviceRule]) -> None:
        """A BPF_PROG_TYPE_CGROUP_DEVICE program on the container's directory: v2 has no
        devices controller; the kernel runs the program on every device access
        (cgroup-v2.rst "Device controller")."""
        if self.unified is None:
            raise CgroupError(NO_DEVICES)
        from pyoci.cgroups import bpf_devices

        bpf_devices.install(self.unified, rules)

    # -- statistics -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        from pyoci.cgroups import stats as st

        return st.stats_v2(self.unified) if self.unified is not None else {}

    def oom_kill_count(self) -> int:
        if self.unified is None:
            return 0
        from pyoci.cgroups import stats as st

        return st.oom_kill_count_v2(self.unified)


__all__ = ["V2Manager", "freeze_dir", "freeze_requested", "thaw_dir"]
