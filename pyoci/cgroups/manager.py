"""The cgroup manager: where a container's cgroup lives on each hierarchy, and its life.

``linux.cgroupsPath`` (config-linux.md "Cgroups path") is resolved with runc's cgroupfs
rules (libcontainer/cgroups/fs/paths.go and fs2/defaultpath.go):

* absolute: under the root of each hierarchy (the mount point);
* relative: under the runtime's own cgroup of that hierarchy (/proc/self/cgroup); on a pure
  v2 host under the *parent* of it, as runc does, because the runtime's own cgroup holds
  processes and the no-internal-process rule (cgroup-v2.rst) would keep controllers from
  being enabled for a child of it;
* absent: the relative path ``<id>``;
* with ``--systemd-cgroup``: ``slice:prefix:name``, mapped to the cgroupfs path systemd
  would give the unit (``a-b.slice`` -> ``/a.slice/a-b.slice``, unit ``prefix-name.scope``);
  no dbus is involved, the directories are made directly.

A resolved directory that is a hierarchy's root, the runtime's own cgroup or an ancestor of
it is refused (in every form, systemd's too), and create refuses an existing directory
that is in use or frozen: delete and kill --all act on the whole subtree of the
container's directory, which must therefore be the container's alone.

The container gets a directory in every mounted v1 hierarchy (plus ``name=systemd``, as
runc joins it) and, on hybrid and v2 hosts, in the unified hierarchy. The resource writers
(controllers.py), the device rules (devices_v1.py / bpf_devices.py) and the statistics
(stats.py) are imported only when used: the hot path (state, kill, delete, pause) builds a
manager from state.json with :func:`manager_from_state` and never imports attrs or
jsonschema.
"""

from __future__ import annotations

import errno
import os
import time

from pyoci.cgroups import CgroupError, is_frozen, read_events
from pyoci.errors import describe_oserror

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here

if TYPE_CHECKING:
    from collections.abc import Sequence
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

#: errnos that mean "this cgroup is not delegated to the caller" (runc's isIgnorableError).
_DENIED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})

_SIGKILL = 9  # the same on every Linux architecture (asm-generic/signal.h and the others)

FREEZE_TIMEOUT = 5.0      # seconds to wait for FROZEN / "frozen 1"
RMDIR_TIMEOUT = 2.0       # seconds to retry EBUSY: killed processes may still be exiting


# --- path resolution ----------------------------------------------------------------------

def _normalize(path: str, what: str) -> str:
    """Fold ``.``/``..``/``//`` of a cgroup path; refuse a ``..`` that climbs above its
    base (the hierarchy root for absolute paths, the runtime's cgroup for relative ones).

    runc silently clamps such a path (utils.CleanPath); refusing is safer and says why.
    """
    parts: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise CgroupError(f"{what}: {path!r} escapes "
                                  + ("the cgroup root" if path.startswith("/")
                                     else "the runtime's cgroup") + " through '..'")
            parts.pop()
        else:
            parts.append(comp)
    return ("/" if path.startswith("/") else "") + "/".join(parts)


def expand_slice(slice_name: str) -> str:
    """systemd's slice naming: ``a-b-c.slice`` lives at ``/a.slice/a-b.slice/a-b-c.slice``
    (systemd.slice(5)); ``-.slice`` is the root."""
    suffix = ".slice"
    if not slice_name.endswith(suffix) or len(slice_name) <= len(suffix) or "/" in slice_name:
        raise CgroupError(f"linux.cgroupsPath: invalid systemd slice name {slice_name!r}")
    stem = slice_name[:-len(suffix)]
    if stem == "-":
        return "/"
    path, prefix = "", ""
    for comp in stem.split("-"):
        if not comp:
            raise CgroupError(f"linux.cgroupsPath: invalid systemd slice name {slice_name!r}")
        path += f"/{prefix}{comp}{suffix}"
        prefix += f"{comp}-"
    return path


def systemd_path(cgroups_path: str | None, cid: str) -> str:
    """The cgroupfs path runc's systemd driver ends up with for ``slice:prefix:name``.

    Absent means ``system.slice``, prefix ``runc``, name = the id; an empty slice is
    ``system.slice``; a name ending in ``.slice`` is a slice, anything else becomes the
    scope unit ``prefix-name.scope`` (``name.scope`` without a prefix).
    """
    if cgroups_path is None or cgroups_path == "":
        parent, prefix, name = "", "runc", cid
    else:
        parts = cgroups_path.split(":")
        if len(parts) != 3:
            raise CgroupError('linux.cgroupsPath: the systemd cgroup driver expects '
                              f'"slice:prefix:name", found {cgroups_path!r}')
        parent, prefix, name = parts
    if not name:
        raise CgroupError(f"linux.cgroupsPath: empty unit name in {cgroups_path!r}")
    if name.endswith(".slice"):
        unit = name
    else:
        unit = f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    if "/" in unit:
        raise CgroupError(f"linux.cgroupsPath: the unit name {unit!r} contains '/'")
    return expand_slice(parent or "system.slice").rstrip("/") + "/" + unit


def resolve(layout: Layout, cgroups_path: str | None, cid: str, *,
            systemd: bool = False) -> tuple[dict[str, str], str | None]:
    """The container's directories: (v1 controller or name=X -> dir, unified dir)."""
    if systemd:
        inner = _normalize(systemd_path(cgroups_path, cid), "linux.cgroupsPath")
    else:
        inner = _normalize(cgroups_path if cgroups_path else cid, "linux.cgroupsPath")
        if inner in ("", "/"):
            raise CgroupError(f"linux.cgroupsPath: {cgroups_path!r} names the cgroup of the "
                              "runtime or the root of the hierarchy, not a container's own")

    shown = cgroups_path if cgroups_path else (cid if not systemd else None)

    def place(mount_point: str, own_dir: str | None, what: str, use_parent: bool) -> str:
        if inner.startswith("/"):
            d = mount_point.rstrip("/") + inner
        elif own_dir is None:
            raise CgroupError(f"the runtime's own cgroup in the {what} hierarchy is not "
                              f"visible under {mount_point}")
        else:
            base = own_dir
            if use_parent and os.path.normpath(own_dir) != os.path.normpath(mount_point):
                base = os.path.dirname(own_dir.rstrip("/"))
            d = os.path.join(base, inner)
        _refuse_own_or_ancestor(d, own_dir, mount_point, what, shown)
        return d

    v1: dict[str, str] = {}
    for h in layout.hierarchies():
        d = place(h.mount_point, h.own_dir, ",".join(h.controllers), False)
        for c in h.controllers:
            v1[c] = d
    unified = None
    if layout.unified_mount is not None:
        unified = place(layout.unified_mount, layout.unified_own_dir, "unified",
                        layout.mode == "v2")
    return v1, unified


def _is_within(path: str, top: str) -> bool:
    """``path`` is ``top`` or lies below it (both normalized)."""
    return path == top or path.startswith(top.rstrip("/") + "/")


def _refuse_own_or_ancestor(directory: str, own_dir: str | None, mount_point: str, what: str,
                            shown: str | None) -> None:
    """Refuse a container directory that is a hierarchy's root, the runtime's own cgroup or
    an ancestor of it.

    delete removes the container's directory with everything below it and, without a pid
    namespace of its own, kills every process in that subtree; kill --all signals them.
    Such a directory holds the runtime itself (and whatever shares its cgroup, e.g. the
    other jobs of a host service), so it can never be a container's own. This holds for
    the systemd form too: ``-.slice::system.slice`` is an absolute path like any other.
    """
    d = os.path.normpath(directory)
    named = f"{shown!r}" if shown is not None else "the systemd default"
    if d == os.path.normpath(mount_point):
        raise CgroupError(f"linux.cgroupsPath: {named} resolves to {d}, the root of the "
                          f"{what} hierarchy, not a container's own cgroup")
    if own_dir is None:
        return
    own = os.path.normpath(own_dir)
    if _is_within(own, d):
        how = "is" if own == d else "is an ancestor of"
        raise CgroupError(f"linux.cgroupsPath: {named} resolves to {d}, which {how} the "
                          f"runtime's own cgroup in the {what} hierarchy ({own}); delete and "
                          "kill --all would act on the runtime's own processes and the "
                          "cgroups beside it")


def open_manager(cgroups_path: str | None, cid: str, *, systemd: bool = False,
                 layout: Layout | None = None, rootless: bool = False) -> Manager:
    """A manager for ``linux.cgroupsPath`` on this host (``layout`` is for tests).

    ``rootless`` (pyoci/rootless.py): runc's rootless cgroup rules, see
    :meth:`Manager.create` and :meth:`Manager.set`."""
    if layout is None:
        from pyoci.cgroups.detect import detect
        try:
            layout = detect()
        except OSError as exc:
            raise CgroupError(f"reading the cgroup layout: {describe_oserror(exc)}") from exc
    if not layout.v1 and layout.unified_mount is None:
        raise CgroupError("no cgroup hierarchy is mounted (see /proc/self/mountinfo)")
    v1, unified = resolve(layout, cgroups_path, cid, systemd=systemd)
    mgr = Manager(layout.mode, v1, unified, layout.unified_mount,
                  unified_base=layout.unified_own_dir, created=False)
    if rootless:
        mgr.rootless = True
        mgr.explicit_path = bool(cgroups_path) or systemd
    return mgr


def manager_from_state(doc: dict[str, Any]) -> Manager:
    """Rebuild a manager from :meth:`Manager.to_state`: no detection, no heavy import.

    Records written before ``created``/``parents``/``unified_base`` existed are read as
    they were meant then: the directories are the container's, no ancestor was recorded,
    and no level is known where a controller may be enabled.
    """
    try:
        mode = doc["mode"]
        v1 = {str(k): str(v) for k, v in (doc.get("v1") or {}).items()}
        unified = doc.get("unified")
        mount = doc.get("unified_mount")
        base = doc.get("unified_base")
        created = doc.get("created", True)
        parents = [str(p) for p in doc.get("parents") or []]
        planned = [str(p) for p in doc.get("planned") or []]
    except (KeyError, TypeError, AttributeError) as exc:
        raise CgroupError(f"state.json: malformed cgroup record {doc!r}") from exc
    if mode not in ("v1", "v2", "hybrid"):
        raise CgroupError(f"state.json: unknown cgroup mode {mode!r}")
    if not isinstance(created, bool) or not (base is None or isinstance(base, str)):
        raise CgroupError(f"state.json: malformed cgroup record {doc!r}")
    mgr = Manager(mode, v1, unified, mount, unified_base=base, created=created,
                  parents=parents)
    mgr.planned = planned
    mgr.rootless = doc.get("rootless") is True
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


# --- the manager --------------------------------------------------------------------------

class Manager:
    """One container's cgroup across the hierarchies of this host.

    ``v1`` maps each v1 controller (and ``name=systemd``) to the container's directory in
    that hierarchy; co-mounted controllers share a directory. ``unified`` is the directory
    in the cgroup2 hierarchy (hybrid and v2), ``unified_mount`` that hierarchy's mount point.

    ``unified_base`` is the runtime's own cgroup in the unified hierarchy when the manager
    was opened: controllers are enabled in cgroup.subtree_control only at or below it
    (see :meth:`_enable`). ``created`` says the directories are the container's: a manager
    fresh from :func:`open_manager` owns nothing until :meth:`create` succeeds, so that a
    refused or failed create cannot kill or remove what was there before. ``parents`` are
    the ancestor levels that create made (and destroy removes again when empty).
    """

    def __init__(self, mode: str, v1: dict[str, str], unified: str | None,
                 unified_mount: str | None, *, unified_base: str | None = None,
                 created: bool = True, parents: Sequence[str] = ()) -> None:
        self.mode = mode
        self.v1 = dict(v1) if mode != "v2" else {}
        self.unified = unified if mode != "v1" else None
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
        return (f"Manager(mode={self.mode!r}, v1={self.v1!r}, unified={self.unified!r}, "
                f"created={self.created!r})")

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

    def directories(self) -> list[str]:
        """Every directory of the container, once (v1 hierarchies first, then unified)."""
        out: list[str] = []
        for d in self.v1.values():
            if d not in out:
                out.append(d)
        if self.unified is not None:
            out.append(self.unified)
        return out

    def exists(self) -> bool:
        """The container has a cgroup: create made (or took over) its directories and one
        of them is still there."""
        return self.created and any(os.path.isdir(d) for d in self.directories())

    def _freezer_dir(self) -> tuple[str, bool] | None:
        """(directory, is_v1) of the freezer: v1's freezer controller, else cgroup.freeze
        of the unified hierarchy (a core file of every non-root cgroup2, kernel >= 5.2)."""
        if "freezer" in self.v1:
            return self.v1["freezer"], True
        if self.unified is not None:
            return self.unified, False
        return None

    def _pids_dir(self) -> str | None:
        """The directory whose subtree holds every process of the container."""
        if self.unified is not None:
            return self.unified
        for c in ("freezer", "devices", "pids", "memory", "cpu"):
            if c in self.v1:
                return self.v1[c]
        return next(iter(self.v1.values()), None)

    # -- creation ---------------------------------------------------------------------------

    def create(self) -> None:
        """mkdir the container's cgroup in every hierarchy (and missing ancestors).

        A directory that exists already is taken over only when nothing uses it: a
        process anywhere in its subtree, in any hierarchy, means it is someone else's
        (another container's, or the host's), and sharing it would let this container's
        delete and kill --all act on them (runc >= 1.2 refuses too: "container's cgroup is
        not empty"). A frozen one is refused as well ("unexpectedly frozen"): the init
        would freeze on joining it and create would wait forever.

        In the v1 cpuset hierarchy a new cgroup starts with empty cpuset.cpus/cpuset.mems
        and the kernel refuses tasks into it (cgroup-v1/cpusets.rst), so every empty level
        down to the container's copies them from its parent, as runc does. On failure the
        directories made so far are removed.
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
            if "cpuset" in self.v1:
                try:
                    _fill_cpuset(self.v1["cpuset"])
                except CgroupError as exc:
                    if not (self.rootless and not self.explicit_path
                            and isinstance(exc.__cause__, OSError)
                            and exc.__cause__.errno in _DENIED):
                        raise
                    # An ancestor's empty cpuset the user may not fill: no cpuset here.
                    d = self.v1["cpuset"]
                    if d in made:
                        os.rmdir(d)
                        made.remove(d)
                    self._skip(d, str(exc))
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
            from pyoci.cgroups import controllers as ctl

            if self.mode == "v2":
                self._set_v2(res, ctl.needed_v2(res), ctl, update)
            else:
                self._set_v1(res, ctl, update)
        if device_rules is not None:
            self._set_devices(device_rules)

    def _note_limited(self, res: Resources) -> None:
        from pyoci.cgroups import controllers as ctl

        needed = ctl.needed_v2(res) if self.mode == "v2" else ctl.needed_v1(res)
        for c in needed:
            if c == "devices":
                continue
            if c in self.v1:
                self._limited.add(self.v1[c])
            elif self.unified is not None:
                self._limited.add(self.unified)
        if res.unified and self.unified is not None:
            self._limited.add(self.unified)

    def _check_skipped(self, res: Resources) -> None:
        """A limit for a hierarchy left out (rootless, not delegated) is an error, as with
        runc ("cannot set X limit: container could not join or create cgroup")."""
        from pyoci.cgroups import controllers as ctl

        if self.mode == "v2":
            needed = {c: p for c, p in ctl.needed_v2(res).items()
                      if c not in _CORE_PREFIXES}
            where = {c: "unified" for c in needed}
        else:
            needed = {c: p for c, p in ctl.needed_v1(res).items() if c != "devices"}
            where = {c: c if c not in self.v1 and c in self.skipped else None
                     for c in needed}
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
            directory, why = self.skipped[h]
            raise CgroupError(
                f"{json_path}: cannot set the {c} limit: the rootless container could not "
                f"create or join its cgroup ({why}); delegate a cgroup to this user "
                "(chown it) and name it in linux.cgroupsPath, or remove the limit")

    def _unified_available(self) -> frozenset[str]:
        if self.unified_mount is None:
            return frozenset()
        try:
            text = _read(os.path.join(self.unified_mount, "cgroup.controllers"))
        except OSError:
            return frozenset()
        return frozenset(text.split())

    def _set_v1(self, res: Resources, ctl: Any, update: bool) -> None:
        """v1 and hybrid: v1 where mounted, else the unified hierarchy (hybrid only)."""
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
            if self.mode == "v1":
                raise CgroupError(f"linux.resources.unified.{key} needs cgroup v2, which this "
                                  "host does not mount")
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
            self._enable(on_v2)
            ctl.apply_v2(self.unified, res, tuple(on_v2), update=update)

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
        if self.unified_base is None:
            return False
        if not _is_within(os.path.normpath(level), os.path.normpath(self.unified_base)):
            return False
        return os.path.exists(os.path.join(level, "cgroup.type"))

    def _set_devices(self, rules: Sequence[DeviceRule]) -> None:
        """The allow-list: v1's devices controller, or a BPF_PROG_TYPE_CGROUP_DEVICE
        program on the unified hierarchy (v2 has no devices controller; the kernel runs
        the program on every device access, cgroup-v2.rst "Device controller")."""
        if "devices" in self.v1:
            from pyoci.cgroups import devices_v1

            devices_v1.write_rules(self.v1["devices"], rules)
        elif self.unified is not None:
            from pyoci.cgroups import bpf_devices

            bpf_devices.install(self.unified, rules)
        else:
            raise CgroupError("linux.resources.devices needs the devices controller or "
                              "cgroup v2, and this host has neither")

    # -- freezer ----------------------------------------------------------------------------

    def freeze(self) -> None:
        """Freeze every process of the container and wait until the kernel says so.

        v1: freezer.state passes through FREEZING until every task is frozen; writing
        FROZEN again retries tasks that could not be frozen yet (cgroup-v1/freezer-
        subsystem.rst). v2: cgroup.freeze, then cgroup.events shows "frozen 1". A freeze
        that does not complete in time is undone and reported.
        """
        where = self._need_freezer()
        directory, is_v1 = where
        if is_v1:
            state = os.path.join(directory, "freezer.state")
            deadline = time.monotonic() + FREEZE_TIMEOUT
            delay = 0.001
            while True:
                _write(state, "FROZEN", "freezing the container")
                if _read(state).strip() == "FROZEN":
                    return
                if time.monotonic() > deadline:
                    break
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        else:
            _write(os.path.join(directory, "cgroup.freeze"), "1", "freezing the container")
            if self._wait_events(directory, "1"):
                return
        try:
            self.thaw()
        except CgroupError:
            pass
        raise CgroupError(f"freezing the container in {directory}: not every process froze "
                          f"within {FREEZE_TIMEOUT:g} s")

    def thaw(self) -> None:
        directory, is_v1 = self._need_freezer()
        if is_v1:
            state = os.path.join(directory, "freezer.state")
            _write(state, "THAWED", "thawing the container")
            deadline = time.monotonic() + FREEZE_TIMEOUT
            while _read(state).strip() != "THAWED":
                if time.monotonic() > deadline:
                    raise CgroupError(f"thawing the container: {state} is still "
                                      f"{_read(state).strip()}")
                time.sleep(0.005)
        else:
            _write(os.path.join(directory, "cgroup.freeze"), "0", "thawing the container")
            if not self._wait_events(directory, "0"):
                # An ancestor may be frozen: the container then stays frozen by design.
                raise CgroupError(f"thawing the container: {directory}/cgroup.events still "
                                  "reports frozen (is an ancestor cgroup frozen?)")

    def frozen(self) -> bool:
        """True when the kernel reports the container frozen (paused)."""
        where = self._freezer_dir()
        if where is None or not self.created:
            return False
        return is_frozen(*where)

    def _freeze_requested(self) -> bool:
        """A freeze was asked for (freezer.state FREEZING or FROZEN, cgroup.freeze 1),
        whether or not the kernel has completed it."""
        where = self._freezer_dir()
        if where is None:
            return False
        directory, is_v1 = where
        try:
            if is_v1:
                state = _read(os.path.join(directory, "freezer.state")).strip()
                return state in ("FREEZING", "FROZEN")
            return _read(os.path.join(directory, "cgroup.freeze")).strip() == "1"
        except FileNotFoundError:
            return False

    def _need_freezer(self) -> tuple[str, bool]:
        where = self._freezer_dir()
        if where is None:
            raise CgroupError("pausing needs the freezer controller or cgroup v2, and this "
                              "host has neither")
        return where

    @staticmethod
    def _wait_events(directory: str, value: str) -> bool:
        deadline = time.monotonic() + FREEZE_TIMEOUT
        delay = 0.001
        while True:
            if read_events(directory).get("frozen", value) == value:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

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
        if sig == _SIGKILL and self.unified is not None:
            kill_file = os.path.join(self.unified, "cgroup.kill")
            if os.path.exists(kill_file):
                paused = self._freeze_requested()
                _write(kill_file, "1", "killing the container")
                # A v1 (hybrid) freeze holds even SIGKILL: the victims die only once
                # thawed. v2 lets them die; thawing there keeps both modes alike (a killed
                # container is not left "paused"). Decided on what was asked (read before
                # the kill), not on cgroup.events: while the killed tasks exit, v2 reports
                # "frozen 0" for a moment, and the emptied cgroup is "frozen 1" again.
                if paused or self.frozen():
                    self.thaw()
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

    # -- statistics -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """runc's ``events --stats`` data; on hybrid hosts v1 figures first, the unified
        hierarchy adds what no v1 hierarchy has (e.g. hugetlb)."""
        from pyoci.cgroups import stats as st

        if self.mode == "v2":
            return st.stats_v2(self.unified)
        v1 = {c: d for c, d in self.v1.items() if not c.startswith("name=")}
        data = st.stats_v1(v1)
        if self.unified is not None and os.path.isdir(self.unified):
            for key, value in st.stats_v2(self.unified).items():
                data.setdefault(key, value)
        return data

    def oom_kill_count(self) -> int:
        """How many processes the OOM killer took in the container (memory controller)."""
        from pyoci.cgroups import stats as st

        if "memory" in self.v1:
            return st.oom_kill_count_v1(self.v1["memory"])
        if self.unified is not None:
            return st.oom_kill_count_v2(self.unified)
        return 0

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


__all__ = ["Manager", "expand_slice", "manager_from_state", "open_manager", "resolve",
           "systemd_path"]
