"""The cgroup manager interface and the life cycle every layout shares.

A container's cgroup is driven through :class:`CgroupManager`, one interface with one
implementation per kind of hierarchy, as youki's libcgroups (``CgroupManager`` trait, v1 and
v2 managers) and runc's libcontainer/cgroups (``fs`` and ``fs2``):

* :class:`pyoci.cgroups.v1.V1Manager`: a directory in every mounted v1 hierarchy (plus
  ``name=systemd``, as runc joins it); freezer.state, devices.allow/deny, v1 files;
* :class:`pyoci.cgroups.v2.V2Manager`: one directory in the unified hierarchy; controllers
  enabled in cgroup.subtree_control, cgroup.freeze, cgroup.kill, a BPF device program;
* :class:`pyoci.cgroups.hybrid.HybridManager`: the two composed: v1 where a controller is
  mounted, the unified hierarchy for the rest.

What does not depend on the layout lives here: the record in state.json
(:meth:`CgroupManager.to_state`, :func:`manager_from_state`), create's mkdir/take-over
rules, runc's rootless skipping, the signalling loop of kill, pids and destroy. Where a
directory is (``linux.cgroupsPath``) is paths.py. The resource writers (controllers.py),
the device rules (devices_v1.py / bpf_devices.py) and the statistics (stats.py) are
imported only when used: the hot path (state, kill, delete, pause) builds a manager from
state.json with :func:`manager_from_state` and never imports attrs or jsonschema.
"""

from __future__ import annotations

import errno
import os
import time
from abc import ABC, abstractmethod

from pyoci.cgroups import CgroupError, CgroupRecord, is_frozen, read_events
from pyoci.errors import describe_oserror
from pyoci.state import CGROUP_MODES

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import ModuleType
    from typing import Any

    from pyoci.cgroups.detect import Layout
    from pyoci.config.model import DeviceRule, Resources

#: The v2 counterpart of each v1 controller that has one (cgroup-v2.rst "Controllers";
#: blkio became io, cpuacct's accounting is part of cpu). devices, freezer, net_cls,
#: net_prio and perf_event have no v2 controller.
V1_TO_V2 = {"memory": "memory", "cpu": "cpu", "cpuacct": "cpu", "cpuset": "cpuset",
            "blkio": "io", "pids": "pids", "hugetlb": "hugetlb", "rdma": "rdma",
            "misc": "misc"}

#: ``unified`` keys with these prefixes are core files, present without any controller.
_CORE_PREFIXES = frozenset({"cgroup"})

#: What :meth:`CgroupManager.set` says when a host has no way to enforce device rules.
NO_DEVICES = ("linux.resources.devices needs the devices controller or cgroup v2, and this "
              "host has neither")

#: errnos that mean "this cgroup is not delegated to the caller" (runc's isIgnorableError).
_DENIED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})

_SIGKILL = 9  # the same on every Linux architecture (asm-generic/signal.h and the others)

FREEZE_TIMEOUT = 5.0      # seconds to wait for FROZEN / "frozen 1"


def wait_until(done: Callable[[], bool]) -> bool:
    """Call ``done`` until it is true (True) or FREEZE_TIMEOUT seconds pass (False), sleeping
    1 ms, doubling to 50 ms, in between: the freezer settles in a millisecond or two when
    nothing resists, and a stuck task must not make us spin."""
    deadline = time.monotonic() + FREEZE_TIMEOUT
    delay = 0.001
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True
RMDIR_TIMEOUT = 2.0       # seconds to retry EBUSY: killed processes may still be exiting


#: The layouts a record may name (each has one implementation, see :func:`manager_for`).
MODES = CGROUP_MODES


def manager_for(mode: str, v1: dict[str, str], unified: str | None,
                unified_mount: str | None, *, unified_base: str | None = None,
                created: bool = True, parents: Sequence[str] = ()) -> CgroupManager:
    """The implementation for ``mode`` ("v1", "v2" or "hybrid"), imported on first use:
    a command only pays for the layout of its host."""
    cls: type[CgroupManager]
    if mode == "v1":
        from pyoci.cgroups.v1 import V1Manager as cls
    elif mode == "v2":
        from pyoci.cgroups.v2 import V2Manager as cls
    elif mode == "hybrid":
        from pyoci.cgroups.hybrid import HybridManager as cls
    else:
        raise CgroupError(f"unknown cgroup mode {mode!r}")
    return cls(v1, unified, unified_mount, unified_base=unified_base, created=created,
               parents=parents)


def open_manager(cgroups_path: str | None, cid: str, *, systemd: bool = False,
                 layout: Layout | None = None, rootless: bool = False) -> CgroupManager:
    """A manager for ``linux.cgroupsPath`` on this host (``layout`` is for tests).

    ``rootless`` (pyoci/rootless.py): runc's rootless cgroup rules, see
    :meth:`CgroupManager.create` and :meth:`CgroupManager.set`."""
    if layout is None:
        from pyoci.cgroups.detect import detect
        try:
            layout = detect()
        except OSError as exc:
            raise CgroupError(f"reading the cgroup layout: {describe_oserror(exc)}") from exc
    if not layout.v1 and layout.unified_mount is None:
        raise CgroupError("no cgroup hierarchy is mounted (see /proc/self/mountinfo)")
    from pyoci.cgroups.paths import resolve

    v1, unified = resolve(layout, cgroups_path, cid, systemd=systemd)
    mgr = manager_for(layout.mode, v1, unified, layout.unified_mount,
                      unified_base=layout.unified_own_dir, created=False)
    if rootless:
        mgr.rootless = True
        mgr.explicit_path = bool(cgroups_path) or systemd
    return mgr


def manager_from_state(doc: dict[str, Any]) -> CgroupManager:
    """Rebuild a manager from :meth:`CgroupManager.to_state` (a JSON document): parsed by
    :meth:`CgroupRecord.from_json`, the one reader of the record."""
    try:
        record = CgroupRecord.from_json(doc)
    except ValueError as exc:
        raise CgroupError(f"state.json: {exc}") from None
    return manager_from_record(record)


def manager_from_record(record: CgroupRecord) -> CgroupManager:
    """The manager of a parsed cgroup record: no detection, no heavy import."""
    mgr = manager_for(record.mode, dict(record.v1), record.unified, record.unified_mount,
                      unified_base=record.unified_base, created=record.created,
                      parents=list(record.parents))
    mgr.planned = list(record.planned)
    mgr.rootless = record.rootless
    return mgr


def _unprivileged() -> bool:
    from pyoci.rootless import in_user_namespace

    return os.geteuid() != 0 or in_user_namespace()


# --- small file helpers -------------------------------------------------------------------

def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, value: str, what: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise CgroupError(f"{what}: writing {value.strip()!r} to {path}: "
                          f"{describe_oserror(exc)}") from exc


def _read_pids(path: str) -> list[int]:
    """The pids in a cgroup.procs file, without the zeros.

    On the unified hierarchy the kernel prints a process outside the reader's pid
    namespace as 0 (its pid as seen from here, task_pid_vnr). 0 is no process one can
    signal: ``kill(0, sig)`` is the caller's own process group. Such a process can only
    be reached through the cgroup itself (cgroup.kill, freezing).
    """
    try:
        return [pid for pid in (int(x) for x in _read(path).split()) if pid > 0]
    except FileNotFoundError:
        return []


def _process_count(directory: str) -> tuple[int, str | None]:
    """(processes in the subtree of ``directory``, the first cgroup found holding one).

    Every entry of cgroup.procs counts, zeros too: a process of another pid namespace is
    a process all the same. On cgroup v2, ``populated 1`` in cgroup.events also counts
    (it covers the whole subtree, whatever pid namespace the reader is in).
    """
    count, first = 0, None
    for dirpath, _dirs, _files in os.walk(directory):
        try:
            n = len(_read(os.path.join(dirpath, "cgroup.procs")).split())
        except FileNotFoundError:
            continue
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                continue   # removed meanwhile
            raise CgroupError(f"reading {dirpath}/cgroup.procs: "
                              f"{describe_oserror(exc)}") from exc
        if n:
            count += n
            first = first or dirpath
    if not count and read_events(directory).get("populated") == "1":
        return 1, directory
    return count, first


def _frozen_reason(directory: str) -> str | None:
    """Why ``directory`` is frozen (v1 freezer.state, v2 cgroup.freeze or an ancestor's
    freeze shown in cgroup.events), or None."""
    try:
        state = _read(os.path.join(directory, "freezer.state")).strip()
    except FileNotFoundError:
        state = ""
    if state in ("FROZEN", "FREEZING"):
        return f"{directory}/freezer.state is {state}"
    try:
        freeze = _read(os.path.join(directory, "cgroup.freeze")).strip()
    except FileNotFoundError:
        freeze = ""
    if freeze == "1":
        return f"{directory}/cgroup.freeze is 1"
    if read_events(directory).get("frozen") == "1":
        return f"{directory}/cgroup.events says frozen 1 (an ancestor cgroup is frozen)"
    return None


def skipped_error(json_path: str, controller: str, why: str) -> CgroupError:
    """A limit for a hierarchy that rootless create left out: runc's "cannot set X limit:
    container could not join or create cgroup", naming the field and the remedy."""
    return CgroupError(
        f"{json_path}: cannot set the {controller} limit: the rootless container could not "
        f"create or join its cgroup ({why}); delegate a cgroup to this user "
        "(chown it) and name it in linux.cgroupsPath, or remove the limit")


# --- the interface and the shared life cycle ----------------------------------------------

def _freezer(is_v1: bool) -> ModuleType:
    """The module that drives a freezer: v1's freezer.state or cgroup v2's cgroup.freeze
    (its freeze_dir, thaw_dir, freeze_requested). Which one is the manager's
    ``_freezer_dir`` answer: v1 and v2 have one kind each, hybrid either. Imported here,
    not at the top: both implementations import this module."""
    if is_v1:
        from pyoci.cgroups import v1

        return v1
    from pyoci.cgroups import v2

    return v2


class CgroupManager(ABC):
    """One container's cgroup across the hierarchies of this host.

    The interface every layout implements (youki's ``CgroupManager`` trait: add_task, apply,
    remove, freeze, stats, get_all_pids): :meth:`create`, :meth:`add`, :meth:`set`,
    :meth:`freeze`/:meth:`thaw`/:meth:`frozen`, :meth:`pids`, :meth:`kill`,
    :meth:`stats`/:meth:`oom_kill_count`, :meth:`destroy`, :meth:`exists`,
    :meth:`directories` and :meth:`to_state`. Subclasses supply the hierarchy-specific
    parts (the abstract methods); the life cycle below is the same on every layout.

    ``v1`` maps each v1 controller (and ``name=systemd``) to the container's directory in
    that hierarchy; co-mounted controllers share a directory. ``unified`` is the directory
    in the cgroup2 hierarchy (hybrid and v2), ``unified_mount`` that hierarchy's mount point.
    Every implementation has both attributes (empty / None where its layout has no such
    hierarchy), so the record has one shape and callers (exec --cgroup) one way to look.

    ``unified_base`` is the runtime's own cgroup in the unified hierarchy when the manager
    was opened: controllers are enabled in cgroup.subtree_control only at or below it
    (see :meth:`V2Manager._enable`). ``created`` says the directories are the container's: a
    manager fresh from :func:`open_manager` owns nothing until :meth:`create` succeeds, so
    that a refused or failed create cannot kill or remove what was there before.
    ``parents`` are the ancestor levels that create made (and destroy removes again when
    empty).
    """

    #: The layout this implementation drives, as recorded in state.json.
    mode: str = ""

    def __init__(self, v1: dict[str, str], unified: str | None,
                 unified_mount: str | None, *, unified_base: str | None = None,
                 created: bool = True, parents: Sequence[str] = ()) -> None:
        self.v1 = dict(v1)
        self.unified = unified
        self.unified_mount = unified_mount if self.unified else None
        self.unified_base = unified_base if self.unified else None
        self.created = created
        self.parents = list(parents)
        #: Before create: the levels it is about to mkdir (see to_state), so that a create
        #: killed between two mkdirs leaves directories delete can still find.
        self.planned: list[str] | None = None
        self._record: dict[str, Any] = {}
        #: runc's rootless cgroups (pyoci/rootless.py): a hierarchy the user may not
        #: create in is skipped when the config names no cgroupsPath; device rules are
        #: never written. ``skipped``: hierarchy ("unified" or a v1 controller) -> the
        #: directory that could not be made or joined, and why.
        self.rootless = False
        self.explicit_path = False
        self.skipped: dict[str, tuple[str, str]] = {}
        #: Directories a limit was written to (rootless: such a one is never skipped).
        self._limited: set[str] = set()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(mode={self.mode!r}, v1={self.v1!r}, "
                f"unified={self.unified!r}, created={self.created!r})")

    # -- what each layout supplies ----------------------------------------------------------

    @abstractmethod
    def directories(self) -> list[str]:
        """Every directory of the container, once (v1 hierarchies first, then unified)."""

    @abstractmethod
    def _pids_dir(self) -> str | None:
        """The directory whose subtree holds every process of the container."""

    @abstractmethod
    def _freezer_dir(self) -> tuple[str, bool] | None:
        """(directory, is_v1) of the freezer, or None when the host has none."""

    def freeze(self) -> None:
        """Freeze every process of the container and wait until the kernel says so; a
        freeze that does not complete in time is undone and reported."""
        directory, is_v1 = self._need_freezer()
        if not _freezer(is_v1).freeze_dir(directory):
            self._freeze_timed_out(directory)

    def thaw(self) -> None:
        """Thaw the container and wait until the kernel says so."""
        directory, is_v1 = self._need_freezer()
        _freezer(is_v1).thaw_dir(directory)

    def _freeze_requested(self) -> bool:
        """A freeze was asked for, whether or not the kernel has completed it."""
        where = self._freezer_dir()
        return where is not None and _freezer(where[1]).freeze_requested(where[0])

    @abstractmethod
    def _needed(self, res: Resources) -> dict[str, str]:
        """The controllers ``res`` needs, in this layout's names -> the JSON path."""

    @abstractmethod
    def _check_skipped(self, res: Resources) -> None:
        """A limit for a hierarchy left out (rootless, not delegated) is an error, as with
        runc ("cannot set X limit: container could not join or create cgroup")."""

    @abstractmethod
    def _set_resources(self, res: Resources, update: bool) -> None:
        """Write ``res`` where this layout has each controller."""

    @abstractmethod
    def _set_devices(self, rules: Sequence[DeviceRule]) -> None:
        """Install the device allow-list."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """runc's ``events --stats`` data."""

    @abstractmethod
    def oom_kill_count(self) -> int:
        """How many processes the OOM killer took in the container (memory controller)."""

    def _after_mkdir(self, made: list[str]) -> None:  # noqa: B027 (optional hook)
        """Called by :meth:`create` once the directories exist and were found unused (v1:
        cpuset). ``made`` is what create made; a hook that removes one of them removes it
        from ``made`` too."""

    def _kill_at_once(self, sig: int) -> bool:
        """Kill every process through the kernel in one step if this layout can (v2's
        cgroup.kill); False when :meth:`kill` must signal them one by one."""
        return False

    # -- bookkeeping ------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """What state.json keeps, so later commands need no re-detection.

        The same dict is returned on every call, and :meth:`create` brings it up to date:
        a caller that stored it before create (to be able to clean up an interrupted
        create) holds what create made once it returns, and a refused create leaves it
        saying ``created: false``, so that cleaning up touches nothing.
        """
        if not self.created and self.planned is None:
            # Recorded before the first mkdir: the directories create will make (those
            # missing now). A create SIGKILLed between two mkdirs used to leave a record
            # saying "created: false" and so an empty directory nobody removed (issue 11,
            # item 12: name=systemd, 4 of 125 trials). Only missing ones are listed: a
            # directory that existed before is never removed on the strength of this.
            self.planned = [level for d in self.directories()
                            for level in self._missing_levels(d)]
        self._record.update({
            "mode": self.mode, "v1": dict(self.v1), "unified": self.unified,
            "unified_mount": self.unified_mount, "unified_base": self.unified_base,
            "created": self.created, "parents": list(self.parents),
            "planned": [] if self.created else list(self.planned or [])})
        if self.rootless:
            self._record["rootless"] = True
        return self._record

    def record(self) -> CgroupRecord:
        """:meth:`to_state` as the typed record state.json holds."""
        return CgroupRecord.from_json(self.to_state())

    def exists(self) -> bool:
        """The container has a cgroup: create made (or took over) its directories and one
        of them is still there."""
        return self.created and any(os.path.isdir(d) for d in self.directories())

    # -- creation ---------------------------------------------------------------------------

    def create(self) -> None:
        """mkdir the container's cgroup in every hierarchy (and missing ancestors).

        A directory that exists already is taken over only when nothing uses it: a
        process anywhere in its subtree, in any hierarchy, means it is someone else's
        (another container's, or the host's), and sharing it would let this container's
        delete and kill --all act on them (runc >= 1.2 refuses too: "container's cgroup is
        not empty"). A frozen one is refused as well ("unexpectedly frozen"): the init
        would freeze on joining it and create would wait forever.

        Then the layout's own preparation (:meth:`_after_mkdir`: v1's cpuset). On failure
        the directories made so far are removed.
        """
        made: list[str] = []
        dirs = self.directories()
        try:
            for d in list(dirs):
                for level in self._missing_levels(d):
                    try:
                        os.mkdir(level, 0o755)
                    except FileExistsError:
                        continue
                    except OSError as exc:
                        if self._may_skip(exc):
                            self._skip(d, f"creating {level}: {describe_oserror(exc)}")
                            dirs.remove(d)
                            break
                        hint = ""
                        if self.rootless and exc.errno in _DENIED:
                            hint = (" (rootless: the cgroup is not delegated to this user; "
                                    "runc fails too when linux.cgroupsPath is set)")
                        raise CgroupError(f"creating the cgroup {level}: "
                                          f"{describe_oserror(exc)}{hint}") from exc
                    made.append(level)
            # Checked after the mkdirs: a directory someone made meanwhile is checked too.
            for d in dirs:
                if d in made:
                    continue
                count, where = _process_count(d)
                if count:
                    raise CgroupError(
                        f"linux.cgroupsPath: the container's cgroup {d} is not empty: "
                        f"{count} process(es) found in {where}; it is not this container's "
                        "(delete and kill --all would act on those processes)")
            for d in dirs:
                reason = _frozen_reason(d)
                if reason is not None:
                    raise CgroupError(f"linux.cgroupsPath: the container's cgroup {d} is "
                                      f"unexpectedly frozen ({reason})")
            self._after_mkdir(made)
        except BaseException:
            for level in reversed(made):
                try:
                    os.rmdir(level)
                except OSError:
                    pass
            raise
        self.parents = [level for level in made if level not in dirs]
        self.created = True
        self.to_state()

    @staticmethod
    def _missing_levels(directory: str) -> list[str]:
        """``directory`` and each ancestor that does not exist yet, top-down."""
        levels = []
        d = directory.rstrip("/")
        while d and not os.path.isdir(d):
            levels.append(d)
            parent = os.path.dirname(d)
            if parent == d:
                break
            d = parent
        return list(reversed(levels))

    def add(self, pid: int) -> None:
        """Move ``pid`` (the whole process) into the container's cgroup everywhere.

        Rootless without a cgroupsPath, a hierarchy the user may create in but not move
        the process into (cgroup v2 needs write access to cgroup.procs of the common
        ancestor, cgroup-v2.rst "Delegation Containment") is left, as runc's fs manager
        leaves it, unless a limit was written there: that limit would not apply."""
        for d in self.directories():
            try:
                _write(os.path.join(d, "cgroup.procs"), str(pid), f"adding pid {pid} to {d}")
            except CgroupError as exc:
                cause = exc.__cause__
                if not (isinstance(cause, OSError) and self._may_skip(cause)) \
                        or d in self._limited:
                    raise
                self._skip(d, str(exc))
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        self.to_state()

    def _may_skip(self, exc: OSError) -> bool:
        """runc's isIgnorableError: rootless, no cgroupsPath in the config, and the kernel
        said permission denied / not permitted / read-only."""
        return self.rootless and not self.explicit_path and exc.errno in _DENIED

    def _skip(self, directory: str, why: str) -> None:
        """Leave out a hierarchy the rootless user cannot use (runc: delete(m.paths, name)),
        with a debug line."""
        from pyoci import log

        names = [c for c, d in self.v1.items() if d == directory]
        for c in names:
            del self.v1[c]
            self.skipped[c] = (directory, why)
        if self.unified == directory:
            self.unified = None
            self.unified_mount = None
            self.unified_base = None
            self.skipped["unified"] = (directory, why)
            names.append("unified")
        log.debug(f"rootless: no cgroup in the {','.join(names) or directory} hierarchy "
                  f"({why}); skipped, as runc does without a delegated cgroup")

    # -- resources --------------------------------------------------------------------------
    def set(self, res: Resources | None, device_rules: Sequence[DeviceRule] | None, *,
            update: bool = False) -> None:
        """Apply ``linux.resources`` and the device allow-list.

        Each controller that a field needs (controllers.needed_v1/needed_v2) is written
        where this host has it: its v1 hierarchy, or (hybrid, v2) the unified hierarchy, in
        which case it is first enabled in cgroup.subtree_control of every ancestor. A
        controller the host has nowhere is an error naming the field that needs it; runc
        silently skips some of these, which would leave a limit the user asked for unset.
        """
        if self.rootless and device_rules is not None and _unprivileged():
            # runc: "errors from the device subsystem are ignored, as it is really not
            # expected to work" rootless (writing devices.deny or attaching a device
            # program needs CAP_SYS_ADMIN on the host); pyoci does not even try. Root on
            # the host with an explicit --rootless true still gets its allow-list.
            from pyoci import log

            log.debug("rootless: the device allow-list is not written (devices cgroup)")
            device_rules = None
        if res is not None and self.skipped:
            self._check_skipped(res)
        if res is not None and self.rootless:
            self._note_limited(res)
        if res is not None:
            self._set_resources(res, update)
        if device_rules is not None:
            self._set_devices(device_rules)

    def _note_limited(self, res: Resources) -> None:
        for c in self._needed(res):
            if c == "devices":
                continue
            if c in self.v1:
                self._limited.add(self.v1[c])
            elif self.unified is not None:
                self._limited.add(self.unified)

    # -- freezer ----------------------------------------------------------------------------

    def frozen(self) -> bool:
        """True when the kernel reports the container frozen (paused)."""
        where = self._freezer_dir()
        if where is None or not self.created:
            return False
        return is_frozen(*where)

    def _need_freezer(self) -> tuple[str, bool]:
        where = self._freezer_dir()
        if where is None:
            raise CgroupError("pausing needs the freezer controller or cgroup v2, and this "
                              "host has neither")
        return where

    def _freeze_timed_out(self, directory: str) -> None:
        """A freeze that did not complete: undone (thawed), then reported."""
        try:
            self.thaw()
        except CgroupError:
            pass
        raise CgroupError(f"freezing the container in {directory}: not every process froze "
                          f"within {FREEZE_TIMEOUT:g} s")

    # -- processes --------------------------------------------------------------------------

    def pids(self) -> list[int]:
        """Every process in the container's cgroup and its sub-cgroups (sorted)."""
        top = self._pids_dir()
        if top is None or not self.created or not os.path.isdir(top):
            return []
        found: set[int] = set()
        for dirpath, _dirs, _files in os.walk(top):
            found.update(_read_pids(os.path.join(dirpath, "cgroup.procs")))
        return sorted(found)

    def kill(self, sig: int) -> None:
        """Send ``sig`` to every process of the container.

        SIGKILL with cgroup.kill (kernel >= 5.14) kills the whole unified subtree at once,
        including processes forked meanwhile. Otherwise, as runc's signalAllProcesses:
        freeze (so nothing forks between listing and signalling), signal each pid, thaw.
        A container that was paused stays paused, except after SIGKILL: it is thawed,
        since under the v1 freezer its victims die only then. A manager whose create did
        not succeed owns no processes and signals none.
        """
        if not self.created:
            return
        if self._kill_at_once(sig):
            return
        was_frozen = self.frozen()
        can_freeze = self._freezer_dir() is not None and self.exists()
        if can_freeze and not was_frozen:
            try:
                self.freeze()
            except CgroupError:
                can_freeze = False   # signal anyway: a stuck freeze must not block a kill
        try:
            for pid in self.pids():
                if pid <= 0:
                    continue   # never kill(0, ...) / kill(-1, ...): see _read_pids
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
                except OSError as exc:
                    raise CgroupError(f"sending signal {sig} to pid {pid}: "
                                      f"{describe_oserror(exc)}") from exc
        finally:
            if can_freeze and (not was_frozen or sig == _SIGKILL):
                self.thaw()

    # -- removal ----------------------------------------------------------------------------

    def destroy(self) -> None:
        """rmdir the container's cgroup (children first) in every hierarchy, then the
        ancestor levels its create made, bottom-up.

        A cgroup can only be removed once empty: processes just killed may still be
        exiting (EBUSY), so each rmdir is retried briefly. Missing directories are fine
        (delete after a failed create, or a second delete). An ancestor level is shared
        with whatever else was put below it since: it is removed only when empty, and one
        still in use (EBUSY, ENOTEMPTY) or already gone is left alone. A manager whose
        create did not succeed removes nothing: the directories are not the container's.
        """
        if not self.created:
            self._remove_planned()
            return
        failures = []
        for top in self.directories():
            if not os.path.isdir(top):
                continue
            subdirs = [dp for dp, _d, _f in os.walk(top, topdown=False)]
            for d in subdirs:
                err = _rmdir_retry(d)
                if err is not None:
                    failures.append(f"{d}: {err}")
        for level in sorted(self.parents, key=lambda p: p.rstrip("/").count("/"),
                            reverse=True):
            try:
                os.rmdir(level)
            except OSError as exc:
                if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY, errno.ENOENT):
                    failures.append(f"{level}: {describe_oserror(exc)}")
        if failures:
            raise CgroupError("removing the container's cgroup: " + "; ".join(failures))


    def _remove_planned(self) -> None:
        """After a create interrupted between its mkdirs: rmdir (never recursively, never
        a process killed) each level it planned to make, deepest first. One in use or
        with children is someone else's by now and stays; gone ones are fine."""
        for level in sorted(set(self.planned or ()), key=lambda p: p.rstrip("/").count("/"),
                            reverse=True):
            try:
                os.rmdir(level)
            except OSError as exc:
                if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY, errno.ENOENT):
                    raise CgroupError(f"removing the cgroup {level}: "
                                      f"{describe_oserror(exc)}") from exc


def _rmdir_retry(directory: str) -> str | None:
    deadline = time.monotonic() + RMDIR_TIMEOUT
    delay = 0.005
    while True:
        try:
            os.rmdir(directory)
            return None
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                return describe_oserror(exc)
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def __getattr__(name: str) -> Any:
    """``expand_slice``, ``resolve`` and ``systemd_path`` live in paths.py, imported only
    when one is asked for here (PEP 562): the hot path (kill, pause, delete) rebuilds a
    manager from state.json and resolves nothing."""
    if name in ("expand_slice", "resolve", "systemd_path"):
        from pyoci.cgroups import paths

        return getattr(paths, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: The name callers used before the split (type hints in operations/ and tests).
Manager = CgroupManager

__all__ = ["CgroupManager", "Manager", "manager_for", "manager_from_record",
           "manager_from_state", "open_manager"]
