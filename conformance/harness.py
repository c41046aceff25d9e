"""Helpers shared by the conformance cases.

Nothing here knows which runtime is under test: it only speaks runc's command
line (global ``--root``/``--log`` flags, then a subcommand).  Every call has a
timeout, every container a test creates is force-deleted afterwards, and the
only processes ever signalled directly are ones this process started (found as
its own children, by pid).
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: Seconds any single runtime invocation may take before the case fails.
CALL_TIMEOUT = 30
#: Seconds to wait for an asynchronous state change (e.g. running -> stopped).
WAIT_TIMEOUT = 10

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The container process blocks until the host creates this file in the
# bind-mounted output directory; lets a case decide when the process exits.
WAIT_FOR_GO = "while [ ! -e /out/go ]; do sleep 0.05; done"


def default_config() -> dict:
    """A runc-``spec``-like config: the starting point every case edits.

    Differences from ``runc spec``: rootfs writable, no terminal, no cgroup
    mount, no resources, no rlimits, no hostname, no masked/readonly paths
    (cases add what they check).
    """
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["true"],
            "env": [PATH_ENV],
            "cwd": "/",
            "capabilities": {
                key: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                for key in ("bounding", "effective", "permitted")
            },
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": [
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
        ],
        "linux": {
            "namespaces": [
                {"type": "pid"},
                {"type": "network"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
            ],
        },
    }


# --------------------------------------------------------------------------
# processes


def _read_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, starttime) of a pid, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), int(fields[19])


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    st = _read_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def children_of_me() -> dict[int, str]:
    """pid -> state of every process whose parent is this (pytest) process."""
    me = os.getpid()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = _read_stat(int(entry))
        if st is not None and st[1] == me:
            found[int(entry)] = st[0]
    return found


def become_subreaper() -> bool:
    """Make orphaned descendants (e.g. container processes left behind by
    ``create``) re-parent to this process, so leaks can be seen and killed by
    pid.  Returns False where prctl is unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_child_subreaper = 36
        return libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class ProcessTracker:
    """Children this process started on purpose (holders, background runs);
    everything else that turns up as a child is an orphan of the runtime."""

    def __init__(self) -> None:
        self.own: set[int] = set()

    def reap(self) -> None:
        """Collect zombie orphans so a runtime polling the container pid sees
        it gone (we are their subreaper, so nobody else will)."""
        for pid, state in children_of_me().items():
            if pid in self.own or state != "Z":
                continue
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)

    def strays(self) -> list[int]:
        self.reap()
        return [p for p, s in children_of_me().items() if p not in self.own and s != "Z"]

    def kill_strays(self) -> list[int]:
        """SIGKILL leaked orphans (by pid, only our own children). Returns them."""
        leaked = self.strays()
        for pid in leaked:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self.strays():
            time.sleep(0.02)
        return leaked


TRACKER = ProcessTracker()


def wait_until(predicate, timeout: float = WAIT_TIMEOUT, interval: float = 0.05):
    """Poll ``predicate`` until truthy; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        TRACKER.reap()
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# --------------------------------------------------------------------------
# runtime


@dataclass
class Result:
    argv: list[str]
    rc: int
    out: str
    err: str
    log: str = ""

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def __str__(self) -> str:
        return (
            f"$ {shlex.join(self.argv)}\nexit status {self.rc}\n"
            f"--- stdout ---\n{self.out}--- stderr ---\n{self.err}"
            f"--- runtime log (tail) ---\n{self.log[-2000:]}"
        )


def resolve_runtime(value: str) -> list[str] | None:
    """``--runtime`` may be a path, a name on PATH, or a command line such as
    ``"python -m pyoci"``.  Returns the argv prefix, or None if not found."""
    words = shlex.split(value)
    if not words:
        return None
    first = words[0]
    if os.sep in first:
        path = Path(first).resolve()
        if not (path.is_file() and os.access(path, os.X_OK)):
            return None
        words[0] = str(path)
    else:
        found = shutil.which(first)
        if found is None:
            return None
        words[0] = found
    return words


@dataclass
class Runtime:
    """Calls the runtime under test with a private ``--root``.

    Every container id passed to ``create``/``run`` is remembered and
    force-deleted by :meth:`cleanup`.
    """

    argv: list[str]
    root: Path
    workdir: Path
    is_runc: bool = False
    ids: list[str] = field(default_factory=list)
    calls: int = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / "runtime.log"

    def new_id(self) -> str:
        return f"conf-{uuid.uuid4().hex[:12]}"

    def __call__(
        self,
        *args: str,
        timeout: float = CALL_TIMEOUT,
        cwd: Path | None = None,
        global_args: tuple[str, ...] = (),
        umask: int | None = None,
        fail_on_timeout: bool = True,
    ) -> Result:
        """Run ``RUNTIME --root ROOT --log LOG [global_args] ARGS``.

        stdout/stderr go to files, not pipes: a container started by
        ``create``/``run --detach`` inherits them and may hold them open.
        """
        TRACKER.reap()
        self.calls += 1
        argv = [
            *self.argv,
            "--root",
            str(self.root),
            "--log",
            str(self.log_path),
            *global_args,
            *args,
        ]
        n = self.calls
        out_path = self.workdir / f"call{n}.out"
        err_path = self.workdir / f"call{n}.err"
        log_before = self._log_size()

        def preexec():
            if umask is not None:
                os.umask(umask)

        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                proc = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    cwd=str(cwd or self.workdir),
                    # a marker that must not leak into containers or hooks
                    env={**os.environ, "CONFORMANCE_LEAK": "1"},
                    timeout=timeout,
                    start_new_session=True,
                    preexec_fn=preexec if umask is not None else None,
                )
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                rc = None
        result = Result(
            argv,
            -999 if rc is None else rc,
            out_path.read_text(errors="replace"),
            err_path.read_text(errors="replace"),
            self._log_tail(log_before),
        )
        if rc is None and fail_on_timeout:
            pytest.fail(f"runtime call timed out after {timeout}s\n{result}")
        return result

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def _log_tail(self, start: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(start)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def popen(self, *args: str) -> tuple[subprocess.Popen, Path, Path]:
        """Start the runtime in the background (e.g. a foreground ``run`` a
        case wants to signal).  Returns (process, stdout path, stderr path);
        the caller must wait for it (use :func:`finish`)."""
        self.calls += 1
        argv = [*self.argv, "--root", str(self.root), "--log", str(self.log_path), *args]
        out_path = self.workdir / f"call{self.calls}.out"
        err_path = self.workdir / f"call{self.calls}.err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    cwd=str(self.workdir), start_new_session=True,
                                    env={**os.environ, "CONFORMANCE_LEAK": "1"})
        TRACKER.own.add(proc.pid)
        return proc, out_path, err_path

    @staticmethod
    def finish(proc: subprocess.Popen, timeout: float = CALL_TIMEOUT) -> int | None:
        """Wait for a :meth:`popen` process; kill it (by pid) on timeout."""
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            return None
        finally:
            TRACKER.own.discard(proc.pid)

    # -- operations -------------------------------------------------------

    def create(self, bundle: Bundle, cid: str | None = None, *, check: bool = True,
               extra: tuple[str, ...] = (), **kw) -> Result:
        cid = cid or bundle.cid
        bundle.write()
        self.ids.append(cid)
        res = self("create", "--bundle", str(bundle.path), *extra, cid, **kw)
        if check:
            assert res.ok, f"create failed\n{res}"
        return res

    def start(self, cid: str, *, check: bool = True) -> Result:
        res = self("start", cid)
        if check:
            assert res.ok, f"start failed\n{res}"
        return res

    def state(self, cid: str) -> dict:
        res = self("state", cid)
        assert res.ok, f"state failed\n{res}"
        try:
            return json.loads(res.out)
        except ValueError:
            pytest.fail(f"state did not print JSON\n{res}")

    def state_result(self, cid: str) -> Result:
        return self("state", cid)

    def status(self, cid: str) -> str | None:
        res = self("state", cid)
        if not res.ok:
            return None
        try:
            return json.loads(res.out).get("status")
        except ValueError:
            return None

    def wait_status(self, cid: str, status: str, timeout: float = WAIT_TIMEOUT) -> str | None:
        last = None

        def check():
            nonlocal last
            last = self.status(cid)
            return last == status

        wait_until(check, timeout)
        return last

    def kill(self, cid: str, sig: str | None = "KILL", *, check: bool = True) -> Result:
        args = ["kill", cid] + ([sig] if sig is not None else [])
        res = self(*args)
        if check:
            assert res.ok, f"kill failed\n{res}"
        return res

    def delete(self, cid: str, *, force: bool = False, check: bool = True) -> Result:
        res = self("delete", *(["--force"] if force else []), cid)
        if check:
            assert res.ok, f"delete failed\n{res}"
        return res

    def run(self, bundle: Bundle, cid: str | None = None, *, detach: bool = False,
            timeout: float = CALL_TIMEOUT, **kw) -> Result:
        cid = cid or bundle.cid
        bundle.write()
        self.ids.append(cid)
        args = ["run", *(["--detach"] if detach else []), "--bundle", str(bundle.path), cid]
        return self(*args, timeout=timeout, **kw)

    def list_ids(self) -> list[str]:
        """Container ids from ``list`` (plain text: a header, then one row
        per container whose first column is the id)."""
        res = self("list")
        assert res.ok, f"list failed\n{res}"
        lines = [ln for ln in res.out.splitlines() if ln.strip()]
        return [ln.split()[0] for ln in lines[1:]]

    def leftovers(self, cid: str) -> list[str]:
        """Paths under the runtime root whose name mentions ``cid``."""
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in dirnames + filenames:
                if cid in name:
                    found.append(os.path.join(dirpath, name))
        return found

    def cleanup(self) -> list[str]:
        """Force-delete every container this case created (and any the
        runtime still lists).  Returns problems found, for reporting."""
        problems = []
        seen = set()
        for cid in list(self.ids):
            if cid in seen:
                continue
            seen.add(cid)
            res = self("delete", "--force", cid, fail_on_timeout=False)
            if not res.ok and self("state", cid, fail_on_timeout=False).ok:
                problems.append(f"could not force-delete {cid}:\n{res}")
        listed = self("list", fail_on_timeout=False)
        if listed.ok:
            for line in listed.out.splitlines()[1:]:
                if line.strip():
                    cid = line.split()[0]
                    res = self("delete", "--force", cid, fail_on_timeout=False)
                    problems.append(f"{cid} was still listed; force-delete: rc {res.rc}")
                    self.ids.append(cid)
        # leaked processes first (the caller kills them), then cgroups
        return problems

    def remove_cgroups(self) -> list[str]:
        """Remove (and report) cgroups still named after our containers."""
        left = []
        for cid in set(self.ids):
            left += remove_cgroup_leftovers(cid)
        return left


# --------------------------------------------------------------------------
# bundles


@dataclass
class Bundle:
    """A bundle directory: ``rootfs/`` (a cheap hard-linked copy of the
    session rootfs), ``config`` (a dict written as config.json on create/run)
    and ``out`` (a host directory cases may bind-mount at ``/out``)."""

    path: Path
    config: dict
    out: Path
    cid: str

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs"

    def write(self) -> None:
        (self.path / "config.json").write_text(json.dumps(self.config, indent=2))

    def sh(self, script: str) -> Bundle:
        self.config["process"]["args"] = ["sh", "-c", script]
        return self

    def add_mount(self, destination: str, source: str, mtype: str = "bind",
                  options: list[str] | None = None) -> Bundle:
        if options is None:
            options = ["rbind", "rw"] if mtype == "bind" else []
        entry = {"destination": destination, "type": mtype, "source": source, "options": options}
        self.config.setdefault("mounts", []).append(entry)
        return self

    def mount_out(self) -> Bundle:
        """Bind-mount the host ``out`` directory read-write at ``/out``."""
        self.out.mkdir(exist_ok=True)
        os.chmod(self.out, 0o777)
        return self.add_mount("/out", str(self.out))

    @property
    def linux(self) -> dict:
        return self.config.setdefault("linux", {})

    def set_namespaces(self, *types: str) -> Bundle:
        self.linux["namespaces"] = [{"type": t} for t in types]
        return self

    def namespace(self, ntype: str) -> dict | None:
        for ns in self.linux.get("namespaces", []):
            if ns["type"] == ntype:
                return ns
        return None

    def hook(self, kind: str, path: str, args: list[str] | None = None,
             env: list[str] | None = None, timeout: int | None = None) -> Bundle:
        entry: dict = {"path": path}
        if args is not None:
            entry["args"] = args
        if env is not None:
            entry["env"] = env
        if timeout is not None:
            entry["timeout"] = timeout
        self.config.setdefault("hooks", {}).setdefault(kind, []).append(entry)
        return self


def copy_rootfs(src: Path, dst: Path) -> None:
    """Directories are created, symlinks re-created, files hard-linked."""
    shutil.copytree(src, dst, symlinks=True, copy_function=os.link)


def make_bundle(base: Path, rootfs_src: Path) -> Bundle:
    path = base / "bundle"
    path.mkdir()
    copy_rootfs(rootfs_src, path / "rootfs")
    return Bundle(path=path, config=copy.deepcopy(default_config()), out=base / "out",
                  cid=f"conf-{uuid.uuid4().hex[:12]}")


def short_tmpdir(prefix: str) -> Path:
    """A short private directory (unix socket paths are limited to 108
    bytes, and runtimes may put sockets under --root)."""
    return Path(tempfile.mkdtemp(prefix=prefix))


def cgroup_leftovers(cid: str, base: str = "/sys/fs/cgroup") -> list[str]:
    """Cgroup directories whose name contains ``cid`` (runtimes commonly name
    a container's cgroup after its id)."""
    found = []
    for dirpath, dirnames, _ in os.walk(base):
        for name in dirnames:
            if cid in name:
                found.append(os.path.join(dirpath, name))
    return found


def remove_cgroup_leftovers(cid: str) -> list[str]:
    """rmdir (deepest first) cgroups named after one of our unique container
    ids, so a leaking runtime does not leave them on the host."""
    leftovers = cgroup_leftovers(cid)
    for path in sorted(leftovers, key=len, reverse=True):
        with contextlib.suppress(OSError):
            os.rmdir(path)
    return leftovers


def assert_gone(runtime: Runtime, cid: str) -> None:
    """The container does not exist (anymore): state fails, ``list`` does not
    show it, nothing named after it under --root or in the cgroup tree, and
    no container process is left."""
    res = runtime.state_result(cid)
    assert not res.ok, f"state still works\n{res}"
    assert cid not in runtime.list_ids()
    assert not runtime.leftovers(cid), runtime.leftovers(cid)
    assert not cgroup_leftovers(cid), cgroup_leftovers(cid)
    assert not TRACKER.strays(), "container processes left behind"


def host_ns(kind: str) -> str:
    return os.readlink(f"/proc/self/ns/{kind}")


# --------------------------------------------------------------------------
# cgroups (read-only views of the host's hierarchies, for the cgroup cases)

CGROUP_MOUNT_ROOT = Path("/sys/fs/cgroup")


def cgroup_mounts() -> dict[str, Path]:
    """Controller -> mount point of its hierarchy, from /proc/self/mountinfo.

    A v1 hierarchy is keyed by each controller in its super options
    (``memory``, ``cpu``, ``name=systemd`` ...); the cgroup2 hierarchy is keyed
    ``""`` (as in the ``0::`` line of /proc/PID/cgroup)."""
    found: dict[str, Path] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fstype, _source, options = (right.split() + ["", "", ""])[:3]
        point = Path(left.split()[4].replace("\\040", " "))
        if fstype == "cgroup2":
            found.setdefault("", point)
        elif fstype == "cgroup":
            for opt in options.split(","):
                if opt not in ("rw", "ro") and not opt.startswith(("release_agent=", "xattr")):
                    found.setdefault(opt, point)
    return found


def cgroup_v2_controllers() -> set[str]:
    """Controllers available in the cgroup2 hierarchy (empty if none)."""
    mount = cgroup_mounts().get("")
    if mount is None:
        return set()
    try:
        return set((mount / "cgroup.controllers").read_text().split())
    except OSError:
        return set()


def cgroup_membership(pid: int | str = "self") -> dict[str, str]:
    """Controller -> cgroup path of ``pid`` from /proc/PID/cgroup (each v1
    controller of a line gets its own key; the cgroup2 line is key ``""``)."""
    paths: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _hid, controllers, path = line.split(":", 2)
        if not controllers:
            paths[""] = path
        for name in controllers.split(","):
            if name:
                paths[name] = path
    return paths


def cgroup_dir(controller: str, path: str) -> Path | None:
    """Host directory of cgroup ``path`` in the hierarchy of ``controller``
    (None if that hierarchy is not mounted)."""
    mount = cgroup_mounts().get(controller)
    if mount is None:
        return None
    return mount / path.lstrip("/")


def process_cgroup_dir(pid: int, controller: str) -> Path | None:
    """Host directory of the cgroup ``pid`` is in, for ``controller``."""
    path = cgroup_membership(pid).get(controller)
    return None if path is None else cgroup_dir(controller, path)


def cgroup_dirs_along(path: str) -> list[Path]:
    """Every directory an absolute cgroup ``path`` names or passes through,
    in every mounted hierarchy (shallowest first within each)."""
    parts = [p for p in path.split("/") if p]
    dirs: list[Path] = []
    for mount in sorted(set(cgroup_mounts().values())):
        for depth in range(1, len(parts) + 1):
            dirs.append(mount.joinpath(*parts[:depth]))
    return dirs


def remove_cgroup_dirs(dirs: list[Path]) -> list[Path]:
    """rmdir the given cgroup directories, deepest first, ignoring ones that
    are gone or busy (a cgroup with members or children cannot be removed,
    so a directory someone else uses is never lost). Returns what remains."""
    for path in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            path.rmdir()
    return [p for p in dirs if p.exists()]
