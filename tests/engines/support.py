"""What the engine tests share: a subprocess runner with timeouts, the runtimes under test,
a cgroup area for the engines' containers, the host paths engines write outside their own
directories, and runc's observations to compare pyoci's with.

The engines (podman 4.3, containerd 1.6) call the runtime the way users' machines do; the
test owns everything else: their storage, state, sockets and cgroup parent live in a temp
dir or below this process's own cgroups, so the host is left as it was found.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import cgroup_dir, cgroup_dirs

# Each engine command gets at most this long; a hung runtime fails the test, not CI.
TIMEOUT = 60.0


@dataclass(frozen=True)
class Result:
    """One finished command: what a user of the engine sees."""

    args: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str

    def observed(self) -> tuple[int, str]:
        """What must be equal between runtimes: exit status and stdout (stderr carries
        each runtime's own wording and is compared only where a test says so)."""
        return (self.rc, self.stdout)

    def describe(self, lines: int = 12) -> str:
        err = "\n".join(self.stderr.splitlines()[:lines])
        return (f"$ {' '.join(self.args)}\n-> exit {self.rc}\nstdout: {self.stdout!r}\n"
                f"stderr (first {lines} lines):\n{err}")


def run(args: Sequence[str], *, timeout: float = TIMEOUT,
        env: dict[str, str] | None = None) -> Result:
    """Run a command with stdin closed and output through files: a detached container's
    monitor (conmon, a shim) may inherit the descriptors and hold a pipe open long after
    the engine's CLI returned. Bytes are decoded as they are, so a terminal's \\r\\n stays."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.run(list(args), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                  env=env, timeout=timeout, cwd="/")
        except subprocess.TimeoutExpired as exc:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-2000:]
            raise AssertionError(f"timed out after {timeout}s: {' '.join(args)}\n{tail}") from exc
        out.seek(0)
        err.seek(0)
        return Result(tuple(args), proc.returncode, out.read().decode(errors="replace"),
                      err.read().decode(errors="replace"))


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


# --- the runtimes under test -------------------------------------------------------------

@dataclass(frozen=True)
class OciRuntime:
    """A runc-compatible executable an engine is pointed at."""

    name: str
    path: Path
    # Where it keeps state when called without --root, as podman calls it.
    default_root: Path


RUNC = OciRuntime("runc", Path("/usr/sbin/runc"), Path("/run/runc"))


def pyoci_runtime() -> OciRuntime | None:
    """The `pyoci` console script of this interpreter's environment (.venv/bin/pyoci in CI):
    the one that runs the code under test, not whatever `pyoci` is first on PATH."""
    from pyoci.state import DEFAULT_ROOT

    candidate = Path(sys.executable).parent / "pyoci"
    if not candidate.is_file():
        found = shutil.which("pyoci")
        if found is None:
            return None
        candidate = Path(found)
    return OciRuntime("pyoci", candidate, Path(DEFAULT_ROOT))


def runtime_by_name(name: str) -> OciRuntime | None:
    if name == "runc":
        return RUNC if os.access(RUNC.path, os.X_OK) else None
    return pyoci_runtime()


HEX_ID = re.compile(r"^[0-9a-f]{64}$")


def new_state_entries(root: Path, before: set[str]) -> list[str]:
    """Engine-made container ids (64 hex) in a runtime's state dir that were not there
    before: a container the runtime never deleted."""
    if not root.is_dir():
        return []
    return sorted(n for n in os.listdir(root) if HEX_ID.match(n) and n not in before)


def state_entries(root: Path) -> set[str]:
    return set(os.listdir(root)) if root.is_dir() else set()


# --- cgroups -----------------------------------------------------------------------------

def _own_cgroups() -> list[str]:
    with open("/proc/self/cgroup") as f:
        return [line.rstrip("\n").split(":", 2)[2] for line in f if line.strip()]


class CgroupArea:
    """An absolute cgroup path below this process's own cgroup in every hierarchy, for the
    engines' `--cgroup-parent` / `--cgroup`.

    One absolute path must suit every hierarchy, so it extends the deepest own cgroup (here
    the memory one, /process_api/<hex>) and is valid when every other own cgroup is one of
    its ancestors (here they are /). Directories the engines create on the way (that
    path does not exist in the cpu hierarchy beforehand) are recorded and removed again."""

    def __init__(self, name: str) -> None:
        own = sorted(set(_own_cgroups()), key=lambda p: p.rstrip("/").count("/"))
        deepest = own[-1].rstrip("/")
        for path in own:
            base = path.rstrip("/")
            if base and deepest != base and not deepest.startswith(base + "/"):
                raise LookupError(f"own cgroups {own} do not nest: no one path is below all")
        self.path = f"{deepest}/{name}"
        self._missing: list[Path] = []
        for d in cgroup_dirs(self.path):
            p = d
            while not p.exists():
                self._missing.append(p)
                p = p.parent

    def sub(self, name: str) -> str:
        return f"{self.path}/{name}"

    def dirs(self, path: str) -> list[Path]:
        """``path``'s directory in every hierarchy, existing or not."""
        return cgroup_dirs(path)

    def children(self, path: str, ignore: Iterable[str] = ()) -> list[str]:
        """Cgroup directories left below ``path`` in any hierarchy (names in ``ignore``
        are the engine's own, e.g. podman's `conmon`)."""
        skip = set(ignore)
        found = []
        for d in cgroup_dirs(path):
            if d.is_dir():
                found += [str(c) for c in d.iterdir() if c.is_dir() and c.name not in skip]
        return found

    def remove(self) -> list[str]:
        """rmdir the whole area bottom-up, then the ancestors it created; what stays
        (a cgroup with processes) is returned, never forced."""
        stuck = []
        for top in cgroup_dirs(self.path):
            if not top.is_dir():
                continue
            for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(dirpath)
                except OSError as exc:
                    stuck.append(f"{dirpath}: {exc.strerror}")
        for p in sorted(self._missing, key=lambda p: -len(p.parts)):
            try:
                p.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                stuck.append(f"{p}: {exc.strerror}")
        return stuck


def _read_cgroup(path: str, controller: str, name: str) -> str | None:
    try:
        return (cgroup_dir(path, controller) / name).read_text().strip()
    except LookupError:
        return None  # no such hierarchy on this host
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


def freezer_state(path: str) -> str:
    """FROZEN/THAWED of a container's cgroup from the host side: v1 freezer.state, or
    cgroup.freeze (1/0) where only cgroup2 exists."""
    v1 = _read_cgroup(path, "freezer", "freezer.state")
    if v1 is not None:
        return v1
    v2 = _read_cgroup(path, "", "cgroup.freeze")
    return {"1": "FROZEN", "0": "THAWED"}.get(v2 or "", f"no freezer: {v2}")


def memory_limit(path: str) -> str:
    """The memory limit in bytes: v1 memory.limit_in_bytes, or v2 memory.max."""
    v1 = _read_cgroup(path, "memory", "memory.limit_in_bytes")
    return v1 if v1 is not None else str(_read_cgroup(path, "", "memory.max"))


def cgroup_procs(path: str) -> list[str]:
    """The pids in a container's cgroup (the pids hierarchy, else cgroup2)."""
    for controller in ("pids", ""):
        value = _read_cgroup(path, controller, "cgroup.procs")
        if value is not None:
            return sorted(value.split())
    return []


# --- what the engines write outside the directories they are given ------------------------

# podman 4.3 and containerd 1.6 hard-code these; none can be redirected by a flag or the
# config file of those versions. The runtimes' default state dirs are there because podman
# calls the runtime without --root (its --runtime-flag is not passed on by the
# `container cleanup` that deletes a --rm container, so it cannot be used).
HOST_PATHS = (
    Path("/var/lib/containers/cache/blob-info-cache-v1.boltdb"),  # c/image's blob cache
    Path("/var/lib/containers/cache"),
    Path("/var/lib/containers"),
    Path("/run/containers/networks"),  # c/common's network run dir
    Path("/run/containers"),
    Path("/run/containerd/s"),  # the shims' sockets (named by a hash of our address)
    Path("/run/containerd"),
    Path("/run/runc"),
    Path("/run/pyoci"),
)


class HostResidue:
    """Removes, at the end, what of HOST_PATHS the session created (files are caches,
    directories go only when empty): the host ends as it started."""

    def __init__(self, paths: Sequence[Path] = HOST_PATHS) -> None:
        self._absent = [p for p in paths if not os.path.lexists(p)]

    def clean(self) -> None:
        for p in self._absent:  # listed deepest first
            try:
                if p.is_dir() and not p.is_symlink():
                    p.rmdir()
                else:
                    p.unlink()
            except OSError:
                pass


# --- comparing with runc -----------------------------------------------------------------

Observation = dict[str, object]


def _comparable(obs: Observation) -> dict[str, object]:
    """Keys starting with "_" are details for messages (e.g. a command whose stdout is a
    container id, compared through its exit status under another key)."""
    return {k: v.observed() if isinstance(v, Result) else v for k, v in obs.items()
            if not k.startswith("_")}


class Reference:
    """runc's observation of each scenario, made once a session. runc's variant records
    its own; pyoci's variant compares with it (running runc's first if it was not run)."""

    def __init__(self) -> None:
        self._seen: dict[str, Observation] = {}

    def compare(self, key: str, runtime: OciRuntime, obs: Observation,
                produce: Callable[[OciRuntime], Observation]) -> None:
        if runtime.name == RUNC.name:
            self._seen[key] = obs
            return
        if key not in self._seen:
            runc = runtime_by_name("runc")
            if runc is None:
                return  # nothing to compare with; the scenario's own checks still ran
            self._seen[key] = produce(runc)
        want, got = _comparable(self._seen[key]), _comparable(obs)
        diffs = [f"  {k}: runc {want.get(k)!r} / {runtime.name} {got.get(k)!r}"
                 for k in sorted(set(want) | set(got)) if want.get(k) != got.get(k)]
        details = [v.describe() for k, v in obs.items() if isinstance(v, Result)
                   and (k.startswith("_") or want.get(k) != got.get(k))]
        assert not diffs, (f"{key}: {runtime.name} differs from runc:\n" + "\n".join(diffs)
                           + "\n" + "\n".join(details))
