"""The typed record of ``<root>/<id>/state.json``: what one load parses and one save writes.

The file holds the runtime-spec state (runtime.md "State": ociVersion, id, status, pid,
bundle, annotations), runc's extras that `state` prints (rootfs, created, owner) and, under
the key ``"pyoci"``, what later commands need and the spec does not define: the init's
start time (so a recycled pid is never taken for the container), whether it has its own
pid namespace, the poststart/poststop hooks, the cgroup record, the resources last set and
the CNI network record. :meth:`StateRecord.from_json` checks every field a command reads,
once, at load: a damaged record is reported as unreadable (and skipped by `list`) instead
of crashing whichever command happens to read the bad field.

The JSON is the one pyoci has always written (key names and order), so records written
before this module existed load, and older pyoci versions read what this one writes.

This module is on the hot path (state, kill, delete): it imports only pyoci.record. The
cgroup record is parsed here, not in pyoci.cgroups, so that `state` can tell "paused"
without importing the cgroup manager, and pyoci.state does not depend on pyoci.cgroups.
"""

from __future__ import annotations

from pyoci.record import field, frozen, mutable

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any

PID_MAX_LIMIT = 4 * 1024 * 1024  # include/linux/threads.h: no pid is larger
#: The cgroup layouts a record can name (pyoci/cgroups/manager.py implements each).
CGROUP_MODES = ("v1", "v2", "hybrid")


# --- what the kernel says of a recorded cgroup ---------------------------------------------

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


# --- the records -----------------------------------------------------------------------------

@frozen
class CgroupRecord:
    """The container's cgroup as :meth:`CgroupManager.to_state` recorded it, so that later
    commands need no detection of the host. ``created``: the directories are the
    container's (a refused create records False, so cleaning up touches nothing);
    ``parents``: ancestor levels create made; ``planned``: levels a create was about to
    make when it was recorded (one killed between two mkdirs leaves them findable)."""

    mode: str
    v1: dict[str, str] = field(factory=dict)
    unified: str | None = None
    unified_mount: str | None = None
    unified_base: str | None = None
    created: bool = True
    parents: tuple[str, ...] = ()
    planned: tuple[str, ...] = ()
    rootless: bool = False

    @classmethod
    def from_json(cls, doc: Any) -> CgroupRecord:
        """Parse the record; ValueError says what is wrong. Records written before
        ``created``/``parents``/``unified_base`` existed read as they were meant then: the
        directories are the container's, no ancestor was made, no base is known."""
        try:
            mode = doc["mode"]
            v1 = {str(k): str(v) for k, v in (doc.get("v1") or {}).items()}
            parents = tuple([str(p) for p in doc.get("parents") or ()])
            planned = tuple([str(p) for p in doc.get("planned") or ()])
        except (KeyError, TypeError, AttributeError):
            raise ValueError(f"malformed cgroup record {doc!r}") from None
        if mode not in CGROUP_MODES:
            raise ValueError(f"unknown cgroup mode {mode!r}")
        unified, mount = doc.get("unified"), doc.get("unified_mount")
        base, created = doc.get("unified_base"), doc.get("created", True)
        if type(created) is not bool or not all(
                v is None or type(v) is str for v in (unified, mount, base)):
            raise ValueError(f"malformed cgroup record {doc!r}")
        return cls(mode, v1, unified, mount, base, created, parents, planned,
                   doc.get("rootless") is True)

    def to_json(self) -> dict[str, Any]:
        """The record as pyoci has always written it (key for key, in order)."""
        out: dict[str, Any] = {
            "mode": self.mode, "v1": dict(self.v1), "unified": self.unified,
            "unified_mount": self.unified_mount, "unified_base": self.unified_base,
            "created": self.created, "parents": list(self.parents),
            "planned": list(self.planned)}
        if self.rootless:
            out["rootless"] = True
        return out

    def frozen(self) -> bool:
        """:meth:`CgroupManager.frozen` without the manager (~0.5 ms that `state` and
        `start` need not pay): the v1 freezer if recorded, else the unified cgroup. A
        cgroup this container did not make is never reported frozen."""
        if not self.created:
            return False
        freezer = self.v1.get("freezer")
        if freezer is not None:
            return is_frozen(freezer, True)
        return self.unified is not None and is_frozen(self.unified, False)


@frozen
class Hooks:
    """The config's hooks that run after create (config.md "POSIX-platform Hooks"), as
    the config wrote them: pyoci.config.loader.load_hook parses each when it runs, so a
    hot command never imports the config model."""

    poststart: tuple[dict[str, Any], ...] = ()
    poststop: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Hooks:
        lists = {}
        for kind, entries in doc.items():
            if entries is not None and (not isinstance(entries, list) or not all(
                    isinstance(h, dict) and type(h.get("path")) is str for h in entries)):
                raise ValueError(f"pyoci.hooks.{kind} is not a list of hooks")
            lists[kind] = tuple(entries or ())
        return cls(lists.get("poststart", ()), lists.get("poststop", ()))

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        return {"poststart": list(self.poststart), "poststop": list(self.poststop)}


@mutable
class PrivateState:
    """pyoci's own part of state.json (key ``"pyoci"``), never printed by `state`.

    ``init_start_time``: the init's start time in clock ticks (/proc/<pid>/stat field 22),
    0 until create forked it; ``new_pid_namespace``: the init has a pid namespace of its
    own (kill --all without a cgroup reaches it); ``resources``: the config's
    linux.resources merged with every `update` since (config-linux.md "Control groups");
    ``network``: the CNI attachment pyoci/executors/network.py records and releases (its
    format is that module's)."""

    init_start_time: int = 0
    new_pid_namespace: bool = False
    hooks: Hooks = Hooks()
    config_oci_version: str = ""
    cgroup: CgroupRecord | None = None
    resources: dict[str, Any] | None = None
    network: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, own: Any) -> PrivateState:
        if not isinstance(own, dict):
            raise ValueError("pyoci is not an object")
        start = own.get("initStartTime")
        if start is not None and type(start) is not int:
            raise ValueError("pyoci.initStartTime is not an integer")
        for key in ("cgroup", "hooks", "network", "resources"):
            if key in own and not isinstance(own[key], dict):
                raise ValueError(f"pyoci.{key} is not an object")
        cgroup = own.get("cgroup")
        try:
            # {} is "no cgroup" (as it always read); a malformed one is a damaged record.
            record = CgroupRecord.from_json(cgroup) if cgroup else None
        except ValueError as exc:
            raise ValueError(f"pyoci.cgroup: {exc}") from None
        version = own.get("configOciVersion")
        return cls(start or 0, bool(own.get("newPidNamespace")),
                   Hooks.from_json(own["hooks"]) if own.get("hooks") else Hooks(),
                   version if type(version) is str else "", record,
                   own.get("resources"), own.get("network"))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"initStartTime": self.init_start_time,
                               "newPidNamespace": self.new_pid_namespace,
                               "hooks": self.hooks.to_json(),
                               "configOciVersion": self.config_oci_version}
        # Absent rather than null: pyoci versions before this record refuse a null here.
        if self.cgroup is not None:
            out["cgroup"] = self.cgroup.to_json()
        if self.resources is not None:
            out["resources"] = self.resources
        if self.network is not None:
            out["network"] = self.network
        return out


@mutable
class StateRecord:
    """The whole of state.json. ``status`` is the stored hint ("creating", "created",
    "running"); the status a command acts on is derived from the init process
    (pyoci.state.Container.status)."""

    oci_version: str
    bundle: str
    id: str = ""
    status: str = "stopped"
    pid: int = 0
    rootfs: str = ""
    created: str = ""
    owner: str = ""
    annotations: dict[str, str] = field(factory=dict)
    private: PrivateState = field(factory=PrivateState)

    @classmethod
    def from_json(cls, doc: Any) -> StateRecord:
        """Parse a state document; ValueError says what makes it unusable."""
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        for key in ("ociVersion", "bundle"):
            if type(doc.get(key)) is not str:
                raise ValueError(f"{key} is missing or not a string")
        for key in ("id", "status", "rootfs", "created", "owner"):
            if key in doc and type(doc[key]) is not str:
                raise ValueError(f"{key} is not a string")
        pid = doc.get("pid")
        if pid is not None and (type(pid) is not int or not 0 <= pid <= PID_MAX_LIMIT):
            raise ValueError(f"pid {pid!r} is not a process id")
        ann = doc.get("annotations")
        if ann is not None and (not isinstance(ann, dict)
                                or not all(type(v) is str for v in ann.values())):
            raise ValueError("annotations is not a map of strings")
        own = doc.get("pyoci")
        return cls(doc["ociVersion"], doc["bundle"], doc.get("id", ""),
                   doc.get("status", "stopped"), pid or 0, doc.get("rootfs", ""),
                   doc.get("created", ""), doc.get("owner", ""), ann or {},
                   PrivateState() if own is None and "pyoci" not in doc
                   else PrivateState.from_json(own))

    def to_json(self) -> dict[str, Any]:
        """The document pyoci has always written, key order included."""
        return {"ociVersion": self.oci_version, "id": self.id, "status": self.status,
                "pid": self.pid, "bundle": self.bundle, "rootfs": self.rootfs,
                "created": self.created, "owner": self.owner,
                "annotations": self.annotations, "pyoci": self.private.to_json()}


__all__ = ["CGROUP_MODES", "PID_MAX_LIMIT", "CgroupRecord", "Hooks",
           "PrivateState", "StateRecord", "is_frozen", "read_events"]
