"""Container state under ``--root``: ``<root>/<id>/state.json``, its lock and the status.

The stored status is a hint; the real one is derived from the init process (its pid plus
the start time recorded at create, so a recycled pid is not taken for the container; a
zombie counts as stopped). This module is on the hot path of every command: it imports
nothing heavy.
"""

from __future__ import annotations

import fcntl
import os

from pyoci import jsonio
from pyoci.errors import ContainerNotFound, PyociError

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any

DEFAULT_ROOT = "/run/pyoci"
STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"
LOCK_FILE = ".lock"
SPEC_FILE = "config.json"  # the validated config, kept for exec

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


class Container:
    """One container's directory under --root and its recorded state."""

    def __init__(self, root: str, cid: str) -> None:
        check_id(cid)
        self.root = root
        self.id = cid
        self.dir = os.path.join(root, cid)
        self.doc: dict[str, Any] = {}
        self._holding_lock = False

    # -- files -------------------------------------------------------------------------
    @property
    def state_path(self) -> str:
        return os.path.join(self.dir, STATE_FILE)

    @property
    def fifo_path(self) -> str:
        return os.path.join(self.dir, EXEC_FIFO)

    def exists(self) -> bool:
        return os.path.exists(self.state_path)

    def load(self) -> Container:
        try:
            with open(self.state_path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            raise ContainerNotFound(self.id) from None
        try:
            doc = jsonio.loads(raw)
            if not isinstance(doc, dict) or not {"ociVersion", "bundle"} <= doc.keys():
                raise ValueError("incomplete")
        except (ValueError, UnicodeDecodeError):
            raise PyociError(f'container "{self.id}": its state file {self.state_path} is '
                             'unreadable; "delete --force" removes it') from None
        self.doc = doc
        return self

    def save(self) -> None:
        write_json_atomic(self.state_path, self.doc)

    def locked(self) -> _Locked:
        """Hold the per-container lock (``with c.locked():``): commands on one id run one
        at a time; the state is (re)loaded once the lock is held."""
        return _Locked(self)

    # -- status ------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        return int(self.doc.get("pid") or 0)

    def init_alive(self) -> bool:
        pid = self.pid
        if pid <= 0:
            return False
        st = proc_stat(pid)
        if st is None or st[0] in ("Z", "X"):
            return False
        return st[1] == self.doc.get("pyoci", {}).get("initStartTime")

    def creator_alive(self) -> bool:
        """`create` holds the lock until it is done: a free lock on a container still
        marked "creating" means its creator died half-way. While we hold the lock
        ourselves (inside :meth:`locked`), no creator can."""
        if self._holding_lock:
            return False
        try:
            fd = os.open(os.path.join(self.dir, LOCK_FILE), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def status(self) -> str:
        stored = self.doc.get("status", "stopped")
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
        doc = self.doc.get("pyoci", {}).get("cgroup")
        if not doc:
            return False
        from pyoci.cgroups import recorded_frozen

        try:
            return recorded_frozen(doc)
        except OSError:
            return False

    def spec_state(self, status: str | None = None) -> dict[str, Any]:
        """The runtime-spec state document (runtime.md "State"), status derived now."""
        status = status or self.status()
        out: dict[str, Any] = {
            "ociVersion": self.doc["ociVersion"],
            "id": self.id,
            "status": status,
            "pid": self.pid if status in ("created", "running", "paused", "creating") else 0,
            "bundle": self.doc["bundle"],
        }
        if self.doc.get("annotations"):
            out["annotations"] = self.doc["annotations"]
        return out

    def cli_state(self) -> dict[str, Any]:
        """What `state` prints: the spec document plus runc's rootfs/created/owner."""
        out = self.spec_state()
        out.update({"rootfs": self.doc.get("rootfs", ""), "created": self.doc.get("created", ""),
                    "owner": self.doc.get("owner", "")})
        return out


class _Locked:
    """The context manager behind :meth:`Container.locked` (a class: contextlib costs
    ~1.5 ms to import on the hot path)."""

    def __init__(self, c: Container) -> None:
        self.c = c
        self.fd = -1

    def __enter__(self) -> Container:
        c = self.c
        try:
            self.fd = os.open(os.path.join(c.dir, LOCK_FILE), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            c.load()  # says "does not exist" or "unreadable", whichever is true
            raise ContainerNotFound(c.id) from None
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


def list_containers(root: str) -> list[Container]:
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        try:
            out.append(Container(root, name).load())
        except (PyociError, ValueError):
            continue
    return out
