"""Container state under ``--root``: ``<root>/<id>/state.json``, its lock and the status.

The file holds the runtime-spec state (runtime.md "State": ociVersion, id, status, pid,
bundle, annotations), runc's extras that `state` prints (rootfs, created, owner) and, under
the key ``"pyoci"``, what later commands need and the spec does not define: the init's
start time (so a recycled pid is never taken for the container), whether it has its own
pid namespace, the poststart/poststop hooks, the cgroup record, the resources last set and
the CNI network record. It is read and written through one typed record,
:class:`StateRecord`: :meth:`StateRecord.from_json` checks every field a command reads,
once, at load (a damaged record is reported as unreadable, and skipped by `list`, instead
of crashing whichever command happens to read the bad field); one load
(:meth:`Container.load`, under the lock in :meth:`Container.locked`) and one save. The
JSON is the one pyoci has always written (key names and order), so records written before
the typed record load, and older pyoci versions read what this one writes.

The stored status is a hint; the real one is derived from the init process (its pid plus
the start time recorded at create; a zombie counts as stopped; "paused" is the recorded
cgroup frozen). The cgroup record is parsed here, not in pyoci.cgroups, so that `state`
can tell "paused" without importing the cgroup manager: this module is on the hot path of
every command and imports nothing heavy (record and state are one module: each module
costs ~0.1 ms to import here, issue 16).
"""

from __future__ import annotations

import errno
import fcntl
import os

from pyoci import jsonio
from pyoci.errors import ContainerNotFound, PyociError, describe_oserror

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

# --- the record of state.json ------------------------------------------------------

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

class _Record:
    """Equality and repr from ``__slots__``, for the four records of state.json.

    They are written out rather than made with :mod:`pyoci.record`: `state`, `kill`,
    `start`, `delete` and `list` need nothing else from it, and importing it costs
    ~0.25 ms on this machine kind -- a few per cent of those commands (issue 16). A
    ``_frozen`` record refuses assignment after ``__init__``, as a frozen record does."""

    __slots__: tuple[str, ...] = ()
    _frozen = False

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # equal by value, some fields are dicts

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(
            f"{n}={getattr(self, n)!r}" for n in self.__slots__) + ")"

    def __setattr__(self, name: str, value: object) -> None:
        if self._frozen:
            raise AttributeError(f"{type(self).__name__} is immutable")
        object.__setattr__(self, name, value)


class CgroupRecord(_Record):
    """The container's cgroup as :meth:`CgroupManager.to_state` recorded it, so that later
    commands need no detection of the host. ``created``: the directories are the
    container's (a refused create records False, so cleaning up touches nothing);
    ``parents``: ancestor levels create made; ``planned``: levels a create was about to
    make when it was recorded (one killed between two mkdirs leaves them findable)."""

    __slots__ = ("mode", "v1", "unified", "unified_mount", "unified_base", "created",
                 "parents", "planned", "rootless")
    _frozen = True
    mode: str
    v1: dict[str, str]
    unified: str | None
    unified_mount: str | None
    unified_base: str | None
    created: bool
    parents: tuple[str, ...]
    planned: tuple[str, ...]
    rootless: bool

    def __init__(self, mode: str, v1: dict[str, str] | None = None,
                 unified: str | None = None, unified_mount: str | None = None,
                 unified_base: str | None = None, created: bool = True,
                 parents: tuple[str, ...] = (), planned: tuple[str, ...] = (),
                 rootless: bool = False) -> None:
        init = object.__setattr__
        init(self, "mode", mode)
        init(self, "v1", {} if v1 is None else v1)
        init(self, "unified", unified)
        init(self, "unified_mount", unified_mount)
        init(self, "unified_base", unified_base)
        init(self, "created", created)
        init(self, "parents", parents)
        init(self, "planned", planned)
        init(self, "rootless", rootless)

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

    def directories(self) -> list[str]:
        """Every directory of the container, once: the v1 hierarchies' then the unified
        one (the order of ``CgroupManager.directories``), without the manager: `exec`
        joins them and need not import the cgroup manager (~1 ms, issue 16)."""
        out: list[str] = []
        for d in self.v1.values():
            if d not in out:
                out.append(d)
        if self.unified is not None and self.mode != "v1":   # a v1 manager has none
            out.append(self.unified)
        return out

    def exists(self) -> bool:
        """create made (or took over) the directories and one of them is still there."""
        return self.created and any(os.path.isdir(d) for d in self.directories())

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


class Hooks(_Record):
    """The config's hooks that run after create (config.md "POSIX-platform Hooks"), as
    the config wrote them: pyoci.config.loader.load_hook parses each when it runs, so a
    hot command never imports the config model."""

    __slots__ = ("poststart", "poststop")
    _frozen = True
    poststart: tuple[dict[str, Any], ...]
    poststop: tuple[dict[str, Any], ...]

    def __init__(self, poststart: tuple[dict[str, Any], ...] = (),
                 poststop: tuple[dict[str, Any], ...] = ()) -> None:
        object.__setattr__(self, "poststart", poststart)
        object.__setattr__(self, "poststop", poststop)

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


class PrivateState(_Record):
    """pyoci's own part of state.json (key ``"pyoci"``), never printed by `state`.

    ``init_start_time``: the init's start time in clock ticks (/proc/<pid>/stat field 22),
    0 until create forked it; ``new_pid_namespace``: the init has a pid namespace of its
    own (kill --all without a cgroup reaches it); ``resources``: the config's
    linux.resources merged with every `update` since (config-linux.md "Control groups");
    ``network``: the CNI attachment pyoci/executors/network.py records and releases (its
    format is that module's)."""

    __slots__ = ("init_start_time", "new_pid_namespace", "hooks", "config_oci_version",
                 "cgroup", "resources", "network")

    def __init__(self, init_start_time: int = 0, new_pid_namespace: bool = False,
                 hooks: Hooks | None = None, config_oci_version: str = "",
                 cgroup: CgroupRecord | None = None, resources: dict[str, Any] | None = None,
                 network: dict[str, Any] | None = None) -> None:
        self.init_start_time = init_start_time
        self.new_pid_namespace = new_pid_namespace
        self.hooks = Hooks() if hooks is None else hooks
        self.config_oci_version = config_oci_version
        self.cgroup = cgroup
        self.resources = resources
        self.network = network

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


class StateRecord(_Record):
    """The whole of state.json. ``status`` is the stored hint ("creating", "created",
    "running"); the status a command acts on is derived from the init process
    (pyoci.state.Container.status)."""

    __slots__ = ("oci_version", "bundle", "id", "status", "pid", "rootfs", "created",
                 "owner", "annotations", "private")

    def __init__(self, oci_version: str, bundle: str, id: str = "",  # noqa: A002 - the key
                 status: str = "stopped", pid: int = 0, rootfs: str = "", created: str = "",
                 owner: str = "", annotations: dict[str, str] | None = None,
                 private: PrivateState | None = None) -> None:
        self.oci_version = oci_version
        self.bundle = bundle
        self.id = id
        self.status = status
        self.pid = pid
        self.rootfs = rootfs
        self.created = created
        self.owner = owner
        self.annotations = {} if annotations is None else annotations
        self.private = PrivateState() if private is None else private

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


# --- the container's directory, its lock and status -----------------------------------


DEFAULT_ROOT = "/run/pyoci"
STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"
LOCK_FILE = ".lock"
SPEC_FILE = "config.json"  # the validated config, kept for exec
#: The second record: the init's pid and start time, the cgroup and the bridge network,
#: written (before state.json) whenever one of them changes. If state.json is damaged,
#: ``delete --force`` still finds what to kill and remove (issue 11, item 8).
RECOVERY_FILE = "recovery.json"

#: state.json holds the config's annotations and hooks; config.json is capped at
#: jsonio.MAX_DOCUMENT_BYTES, so four times that is more than any state pyoci writes.
MAX_STATE_BYTES = 4 * jsonio.MAX_DOCUMENT_BYTES
_S_IFMT, _S_IFREG = 0o170000, 0o100000
#: O_NOFOLLOW: a symlinked state file is never followed (it could make delete act on
#: another container's record); O_NONBLOCK: a FIFO in its place cannot hang the command.
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK

# runc's rule (``^[\w+-\.]+$`` with Go's ASCII \w): letters, digits, '_', '+', '-' and
# '.', but never a path ('.', '..'). Checked without :mod:`re`, which costs ~8 ms to import.
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def check_id(cid: str) -> None:
    if not cid:
        raise PyociError("container id cannot be empty")
    if not _ID_CHARS.issuperset(cid) or cid in (".", ".."):
        raise PyociError(f"invalid container id {cid!r}: only letters, digits, '_', '+', '-' "
                         "and '.' are allowed, and it cannot be '.' or '..'")


def write_json_atomic(path: str, doc: Any, mode: int = 0o600) -> None:
    """Write to a temp file in the same directory, fsync-free rename: readers see the old
    or the new document, never half of one."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, jsonio.dumps(doc).encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)


class UnreadableState(PyociError):
    """A state (or recovery) file exists but cannot be used: ``why`` says what is wrong."""

    def __init__(self, cid: str, path: str, why: str) -> None:
        self.why = why
        super().__init__(f'container "{cid}": its state file {path} is unreadable ({why}); '
                         '"delete --force" removes it')


def read_record(path: str, limit: int = MAX_STATE_BYTES) -> bytes:
    """The bytes of a regular file, never through a symlink, at most ``limit`` of them.

    Raises FileNotFoundError when it does not exist and ValueError (with the reason) when
    it is a symlink, not a regular file, too large or unreadable."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError("it is a symbolic link, which is never followed") from None
        raise ValueError(describe_oserror(exc)) from None
    try:
        st = os.fstat(fd)
        if st.st_mode & _S_IFMT != _S_IFREG:
            raise ValueError("not a regular file")
        if st.st_size > limit:
            raise ValueError(f"larger than {limit} bytes")
        chunks = []
        total = 0
        while True:
            chunk = os.read(fd, max(st.st_size + 1 - total, 65536))
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise ValueError(f"larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise ValueError(describe_oserror(exc)) from None
    finally:
        os.close(fd)


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) from /proc/<pid>/stat, None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = data[data.rindex(b")") + 2:].split()
    return fields[0].decode(), int(fields[19])


def check_root(root: str) -> None:
    """Refuse a state root this caller cannot enter, instead of taking its containers for
    missing (`delete --force` of a missing id succeeds, as with runc). State roots are
    0700 and their owner's alone: rootless users reach only their own containers, and
    another user's (or root's) are refused here (docs/rootless.md)."""
    if os.access(root, os.X_OK):
        return
    try:
        os.stat(root)
    except FileNotFoundError:
        return   # nothing created yet; create makes it
    except OSError as exc:
        raise PyociError(f"state root {root}: {describe_oserror(exc)}") from None
    raise PyociError(f"state root {root}: permission denied: it belongs to "
                     f"{'another user' if os.stat(root).st_uid != os.geteuid() else 'you'}"
                     ", and containers are reachable only by the user who created them")


class Container:
    """One container's directory under --root and its recorded state."""

    def __init__(self, root: str, cid: str) -> None:
        check_id(cid)
        check_root(root)
        self.root = root
        self.id = cid
        self.dir = os.path.join(root, cid)
        #: The record of state.json (:mod:`pyoci.state`), set by :meth:`load`; until
        #: then an empty one (no pid, no cgroup), which a failing create cleans up after.
        self.record = StateRecord("", "")
        self._holding_lock = False
        self._recovery_text = ""
        #: While create builds the cgroup: the manager's record, taken at every save (the
        #: manager brings it up to date in create() and add()).
        self._cgroup_source: Callable[[], CgroupRecord] | None = None

    # -- files -------------------------------------------------------------------------
    @property
    def state_path(self) -> str:
        return os.path.join(self.dir, STATE_FILE)

    @property
    def fifo_path(self) -> str:
        return os.path.join(self.dir, EXEC_FIFO)

    @property
    def private(self) -> PrivateState:
        """pyoci's own part of the record (never printed by `state`)."""
        return self.record.private

    def exists(self) -> bool:
        return os.path.exists(self.state_path)

    def load(self) -> Container:
        try:
            raw = read_record(self.state_path)
        except FileNotFoundError:
            raise ContainerNotFound(self.id) from None
        except ValueError as exc:
            raise UnreadableState(self.id, self.state_path, str(exc)) from None
        try:
            doc = jsonio.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError, MemoryError):
            raise UnreadableState(self.id, self.state_path, "not valid JSON") from None
        try:
            self.record = StateRecord.from_json(doc)
        except ValueError as exc:
            raise UnreadableState(self.id, self.state_path, str(exc)) from None
        self._recovery_text = jsonio.dumps(self._recovery())
        return self

    def save(self) -> None:
        """state.json, atomically; first the recovery record when what it holds changed
        (so it never lags behind state.json: whatever state.json says was made, the
        recovery record says too)."""
        if self._cgroup_source is not None:
            self.private.cgroup = self._cgroup_source()
        rec = self._recovery()
        text = jsonio.dumps(rec)
        if text != self._recovery_text and (rec["pid"] or rec["cgroup"] or rec["network"]):
            write_json_atomic(os.path.join(self.dir, RECOVERY_FILE), rec)
        self._recovery_text = text
        write_json_atomic(self.state_path, self.record.to_json())

    def track_cgroup(self, source: Callable[[], CgroupRecord]) -> None:
        """Record ``source()`` (a cgroup manager's :meth:`record`) at this and every later
        save: create records the cgroup before its first mkdir and the manager updates
        what it made (create) or left out (add, rootless), and each save must hold the
        latest, so that an interrupted create can be cleaned up."""
        self._cgroup_source = source
        self.private.cgroup = source()

    def _recovery(self) -> dict[str, Any]:
        own = self.private
        return {"id": self.id, "pid": self.record.pid,
                "initStartTime": own.init_start_time,
                "newPidNamespace": own.new_pid_namespace,
                "cgroup": None if own.cgroup is None else own.cgroup.to_json(),
                "network": own.network}

    def load_recovery(self) -> StateRecord | None:
        """The recovery record as a minimal state record (for delete --force when
        state.json is unusable): None when there is none (nothing was made yet); raises
        UnreadableState when it exists but is damaged too."""
        path = os.path.join(self.dir, RECOVERY_FILE)
        try:
            rec = jsonio.loads(read_record(path))
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError, RecursionError, MemoryError) as exc:
            raise UnreadableState(self.id, path, str(exc) or "not valid JSON") from None
        if not isinstance(rec, dict):
            raise UnreadableState(self.id, path, "not a JSON object")
        doc = {"ociVersion": "", "bundle": "", "id": self.id, "status": "stopped",
               "pid": rec.get("pid"),
               "pyoci": {k: rec[k] for k in ("initStartTime", "newPidNamespace", "cgroup",
                                             "network") if rec.get(k) is not None}}
        try:
            self.record = StateRecord.from_json(doc)
        except ValueError as exc:
            raise UnreadableState(self.id, path, str(exc)) from None
        return self.record

    def locked(self) -> _Locked:
        """Hold the per-container lock (``with c.locked():``): commands on one id run one
        at a time; the state is (re)loaded once the lock is held."""
        return _Locked(self)

    # -- status ------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        return self.record.pid

    def init_alive(self) -> bool:
        pid = self.pid
        if pid <= 0:
            return False
        st = proc_stat(pid)
        if st is None or st[0] in ("Z", "X"):
            return False
        return st[1] == self.private.init_start_time

    def creator_alive(self) -> bool:
        """`create` holds the lock until it is done: a free lock on a container still
        marked "creating" means its creator died half-way. While we hold the lock
        ourselves (inside :meth:`locked`), no creator can."""
        if self._holding_lock:
            return False
        try:
            fd = os.open(os.path.join(self.dir, LOCK_FILE), _READ_FLAGS)
        except OSError:
            return False  # no lock (or not a file): nobody can hold it
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def status(self) -> str:
        stored = self.record.status
        if stored == "creating":
            return "creating" if self.creator_alive() else "stopped"
        if not self.init_alive():
            return "stopped"
        if self._frozen():
            return "paused"
        if os.path.exists(self.fifo_path):
            return "created"
        return "running"

    def _frozen(self) -> bool:
        """runtime.md leaves "paused" to the runtime; as runc, it is a frozen cgroup."""
        cgroup = self.private.cgroup
        if cgroup is None:
            return False
        try:
            return cgroup.frozen()
        except OSError:
            return False

    def spec_state(self, status: str | None = None) -> dict[str, Any]:
        """The runtime-spec state document (runtime.md "State"), status derived now."""
        status = status or self.status()
        out: dict[str, Any] = {
            "ociVersion": self.record.oci_version,
            "id": self.id,
            "status": status,
            "pid": self.pid if status in ("created", "running", "paused", "creating") else 0,
            "bundle": self.record.bundle,
        }
        if self.record.annotations:
            out["annotations"] = self.record.annotations
        return out

    def cli_state(self) -> dict[str, Any]:
        """What `state` prints: the spec document plus runc's rootfs/created/owner."""
        out = self.spec_state()
        rec = self.record
        out.update({"rootfs": rec.rootfs, "created": rec.created, "owner": rec.owner})
        return out


def open_lock(c: Container) -> int:
    """An fd of ``<dir>/.lock`` to flock. A lock file that went missing (removed by hand,
    or a create killed between its mkdir and the lock) is made again: without it the
    container could never be deleted. A symlink or other non-file in its place is
    replaced. Only inside an existing container directory (never creates one)."""
    path = os.path.join(c.dir, LOCK_FILE)
    for _ in range(3):
        try:
            fd = os.open(path, _READ_FLAGS | os.O_CREAT, 0o600)
        except FileNotFoundError:
            c.load()  # the directory is gone: says "does not exist" (or "unreadable")
            raise ContainerNotFound(c.id) from None
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
                raise PyociError(f"lock {path}: {describe_oserror(exc)}") from None
            _remove_entry(path)
            continue
        if os.fstat(fd).st_mode & _S_IFMT == _S_IFREG:
            return fd
        os.close(fd)
        _remove_entry(path)
    raise PyociError(f"lock {path}: cannot be made a regular file")


def _remove_entry(path: str) -> None:
    try:
        os.unlink(path)
    except IsADirectoryError:
        os.rmdir(path)
    except FileNotFoundError:
        pass


class _Locked:
    """The context manager behind :meth:`Container.locked` (a class: contextlib costs
    ~1.5 ms to import on the hot path)."""

    def __init__(self, c: Container) -> None:
        self.c = c
        self.fd = -1

    def __enter__(self) -> Container:
        c = self.c
        self.fd = open_lock(c)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            c._holding_lock = True
            return c.load()
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def __exit__(self, *exc: object) -> None:
        self.c._holding_lock = False
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def list_containers(root: str, problems: list[str] | None = None) -> list[Container]:
    """Every container under ``root`` whose state can be read. One that cannot is left
    out (with why in ``problems``), as runc's list does ("load container X: ..."): one
    damaged record must not hide all the others."""
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        try:
            c = Container(root, name)
        except PyociError:
            continue  # not a container id: pyoci's own entries ("@network")
        try:
            out.append(c.load())
        except ContainerNotFound:
            continue  # a directory without state: a create just starting, or a leftover
        except PyociError as exc:
            if problems is not None:
                problems.append(f"load container {name}: {exc}")
    return out
