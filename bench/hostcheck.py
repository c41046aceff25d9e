"""Leaving the host as it was: no container cgroup left, no host path created by podman
left, nothing mounted under the harness's temp dir.

Cgroup paths follow /proc/self/cgroup and /proc/self/mountinfo: a container without
cgroupsPath lives at `<own cgroup>/<id>` in every hierarchy (v1 per controller, cgroup2
unified), so that is where leftovers are looked for.
"""

from __future__ import annotations

import os
from pathlib import Path


def _cgroup_mounts() -> list[tuple[str, str, set[str]]]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            fstype, _source, superopts = right.split()[:3]
            if fstype in ("cgroup", "cgroup2"):
                out.append((left.split()[4], fstype, set(superopts.split(","))))
    return out


def own_cgroup_dirs() -> list[Path]:
    """This process's own cgroup directory in every mounted hierarchy."""
    mounts = _cgroup_mounts()
    dirs = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, own = line.rstrip("\n").split(":", 2)
            for mp, fstype, opts in mounts:
                v2 = not ctrls and fstype == "cgroup2"
                v1 = ctrls and fstype == "cgroup" and set(ctrls.split(",")) <= opts
                if v2 or v1:
                    dirs.append(Path(mp + "/" + own.strip("/")).resolve())
                    break
    return dirs


def own_cgroup_paths() -> list[str]:
    with open("/proc/self/cgroup") as f:
        return [line.rstrip("\n").split(":", 2)[2] for line in f if line.strip()]


def cgroups_named(prefix: str) -> list[str]:
    """Directories starting with ``prefix`` anywhere below our own cgroups."""
    found = []
    for top in own_cgroup_dirs():
        if not top.is_dir():
            continue
        for dirpath, dirnames, _ in os.walk(top):
            found += [os.path.join(dirpath, d) for d in dirnames if d.startswith(prefix)]
    return sorted(found)


def rmdir_tree(top: Path) -> list[str]:
    """rmdir a cgroup subtree bottom-up; what cannot go (still has processes) is returned."""
    stuck = []
    if not top.is_dir():
        return stuck
    for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
        try:
            os.rmdir(dirpath)
        except OSError as exc:
            stuck.append(f"{dirpath}: {exc.strerror}")
    return stuck


class CgroupParent:
    """An absolute cgroup path below our own cgroup in every hierarchy, for podman's
    --cgroup-parent. One path must suit every hierarchy, so it extends the deepest own
    cgroup (e.g. memory's /process_api/<hex>) and requires the others to be its ancestors
    (here they are /). Directories created on the way are removed at the end."""

    def __init__(self, name: str) -> None:
        own = sorted({p.rstrip("/") for p in own_cgroup_paths()}, key=lambda p: p.count("/"))
        deepest = own[-1]
        for base in own:
            if base and base != deepest and not deepest.startswith(base + "/"):
                raise LookupError(f"own cgroups {own} do not nest: no path is below all")
        self.path = f"{deepest}/{name}"
        self._missing: list[Path] = []
        for mp, _, _ in _cgroup_mounts():
            p = Path(mp + self.path)
            while not p.exists() and p != Path(mp):
                self._missing.append(p)
                p = p.parent

    def remove(self) -> list[str]:
        stuck = []
        for mp, _, _ in _cgroup_mounts():
            stuck += rmdir_tree(Path(mp + self.path))
        for p in sorted(self._missing, key=lambda p: -len(p.parts)):
            try:
                p.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                stuck.append(f"{p}: {exc.strerror}")
        return stuck


# podman 4.3 writes these whatever its flags say; runtimes called by podman keep state in
# their default roots. Deepest first.
PODMAN_HOST_PATHS = (
    Path("/var/lib/containers/cache/blob-info-cache-v1.boltdb"),
    Path("/var/lib/containers/cache"),
    Path("/var/lib/containers"),
    Path("/run/containers/networks"),
    Path("/run/containers"),
    Path("/run/runc"),
    Path("/run/pyoci"),
)


class HostResidue:
    """Remembers which of the paths did not exist and removes them at the end (files;
    directories only when empty)."""

    def __init__(self, paths: tuple[Path, ...] = PODMAN_HOST_PATHS) -> None:
        self._absent = [p for p in paths if not os.path.lexists(p)]

    def clean(self) -> None:
        for p in self._absent:
            try:
                if p.is_dir() and not p.is_symlink():
                    p.rmdir()
                else:
                    p.unlink()
            except OSError:
                pass


def mounts_under(path: Path) -> list[str]:
    prefix = str(path)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [m for m in points if m == prefix or m.startswith(prefix + "/")]
