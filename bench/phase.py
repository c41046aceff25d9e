"""What the engine phases (bench/podman.py, docker.py, buildah.py, cri.py) share: the child
process each runs as, the image's rootfs as a tar, and the warm-up-then-pairs rounds.

Each engine mounts on the host side (podman's /dev/shm tmpfs, dockerd's data root, the
shims' rootfs mounts, the pods' netns bind mounts). So that no mount of the benchmark
ever reaches the host's mount table, a phase is a child `unshare -m --propagation private
python -m bench.ENGINE SPEC`: those mounts exist only in that namespace and vanish with
it. SPEC is JSON; the child writes its result as JSON to SPEC's ``out``.
"""

from __future__ import annotations

import json
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["child_main", "measured_rounds", "phase_command", "rootfs_tar", "round_tag"]


def phase_command(module: str, base: Path, cgroup_parent: str, template: Path,
                  runtimes: dict[str, Path], rounds: int, warmup: int,
                  out: Path) -> list[str]:
    """The command line of ``module``'s phase (e.g. ``bench.podman``), its SPEC inline."""
    spec = {"base": str(base), "cgroup_parent": cgroup_parent, "template": str(template),
            "runtimes": {k: str(v) for k, v in runtimes.items()}, "rounds": rounds,
            "warmup": warmup, "out": str(out)}
    return ["unshare", "-m", "--propagation", "private", sys.executable, "-m", module,
            json.dumps(spec)]


def child_main(phase: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
    """The child's entry point: SPEC from argv[1], its base dir made, ``phase``'s result
    written to SPEC's ``out`` (the parent reads it; a missing file means the child died)."""
    spec = json.loads(sys.argv[1])
    Path(spec["base"]).mkdir(parents=True, exist_ok=True)
    result = phase(spec)
    Path(spec["out"]).write_text(json.dumps(result))
    return 0


def rootfs_tar(rootfs: Path, tar: Path) -> Path:
    """``rootfs``'s entries at the top of ``tar``, sorted: what each engine imports as its
    image (no registry is ever asked)."""
    with tarfile.open(tar, "w") as t:
        for entry in sorted(rootfs.iterdir()):
            t.add(entry, arcname=entry.name)
    return tar


def round_tag(i: int, warmup: int) -> str:
    """``w0``, ``w1`` ... for warm-up rounds, then ``r0``, ``r1`` ... for measured ones."""
    return f"w{i}" if i < warmup else f"r{i - warmup}"


def measured_rounds(label: str, warmup: int, rounds: int) -> Iterator[tuple[int, bool]]:
    """(round index, whether it is measured) for the warm-up rounds then the measured
    ones; after each round's body, ``  LABEL round TAG done`` on stderr."""
    for i in range(warmup + rounds):
        yield i, i >= warmup
        print(f"  {label} round {round_tag(i, warmup)} done", file=sys.stderr, flush=True)
