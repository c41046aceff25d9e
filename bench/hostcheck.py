"""Leaving the host as it was: no container cgroup left, no host path created by podman
left, nothing mounted under the harness's temp dir.

Cgroup paths follow /proc/self/cgroup and /proc/self/mountinfo: a container without
cgroupsPath lives at `<own cgroup>/<id>` in every hierarchy (v1 per controller, cgroup2
unified), so that is where leftovers are looked for.
"""

from __future__ import annotations

import os
from pathlib import Path

# The engine tests already confine podman and know where cgroups live; the harness uses the
# same pieces rather than copies of them.
from tests.engines.support import HOST_PATHS, HostResidue
from tests.engines.support import CgroupArea as CgroupParent
from tests.helpers import cgroup_dirs

__all__ = ["HOST_PATHS", "CgroupParent", "HostResidue", "cgroups_named", "mounts_under",
           "rmdir_tree"]


def cgroups_named(prefix: str) -> list[str]:
    """Directories starting with ``prefix`` anywhere below our own cgroups."""
    found = []
    for top in cgroup_dirs(""):
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


def mounts_under(path: Path) -> list[str]:
    prefix = str(path)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [m for m in points if m == prefix or m.startswith(prefix + "/")]
