"""`buildah bud` of a Containerfile with several RUN steps, runc against pyoci (issue 16),
through the engine tests' confined buildah (tests/engines/buildah_engine.py: its own
storage, run root, tmp dirs and containers.conf, vfs, a cgroup parent below ours, no
network, the base image never pulled).

Each RUN step is one container: buildah calls the runtime as `create --bundle DIR
--pid-file F ID`, `start ID`, `state ID` (polling until stopped) and `delete ID`. The
phase runs as a child in a private mount namespace (`unshare -m --propagation private
python -m bench.buildah SPEC`, bench/phase.py), as the podman and docker phases do: what
buildah mounts vanishes with it.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.phase import child_main, measured_rounds, rootfs_tar
from bench.proc import BenchError, Finished, run
from bench.runtimes import DROPPED_ENV
from tests.engines import buildah_engine
from tests.engines.buildah_engine import IMAGE
from tests.engines.buildah_engine import Buildah as ConfinedBuildah
from tests.engines.support import OciRuntime

SCENARIO = "buildah bud"
RUN_STEPS = 8  # with FROM: a 9-step Containerfile, the measurement
CONTAINERFILE = f"FROM {IMAGE}\n" + "".join(
    f"RUN echo step {k} > /step{k} && test -s /step{k}\n" for k in range(RUN_STEPS))


def missing() -> str | None:
    return buildah_engine.missing()


class Buildah(ConfinedBuildah):
    """The engine tests' buildah, timed by the harness's runner."""

    def __init__(self, base: Path, cgroup_parent: str) -> None:
        super().__init__(base, cgroup_parent)
        for k in DROPPED_ENV:  # the runtimes' environment (bench/runtimes.py says why)
            self.env.pop(k, None)

    def __call__(self, *args: str, timeout: float = 180) -> Finished:  # type: ignore[override]
        return run(["buildah", "--root", str(self.dirs["root"]),
                    "--runroot", str(self.dirs["runroot"]), "--storage-driver", "vfs", *args],
                   env=self.env, timeout=timeout)


def phase(spec: dict[str, Any]) -> dict[str, Any]:
    base = Path(spec["base"])
    runtimes = {k: OciRuntime(k, Path(v), Path(f"/run/{k}"))
                for k, v in spec["runtimes"].items()}
    engine = Buildah(base, spec["cgroup_parent"])
    result: dict[str, Any] = {"problems": []}
    tags: list[str] = []
    try:
        tar = rootfs_tar(Path(spec["template"]), base / "rootfs.tar")
        engine.import_image(tar)
        tar.unlink()
        context = base / "context"
        context.mkdir()
        (context / "Containerfile").write_text(CONTAINERFILE)
        samples: dict[str, list[dict[str, Any]]] = {n: [] for n in runtimes}
        for i, measured in measured_rounds("buildah", spec["warmup"], spec["rounds"]):
            for name, rt in runtimes.items():
                tag = f"localhost/pyoci-bench-bud-{name}-{i}"
                tags.append(tag)
                s = engine.bud(rt, context, tag).check().sample
                engine.rmi(tag)
                if measured:
                    samples[name].append(asdict(s))
        result["samples"] = samples
    except (BenchError, AssertionError) as exc:
        result["skipped"] = f"buildah bud failed: {exc}"
    finally:
        for c in engine.containers():
            engine("rm", c)
        engine("rmi", "--all", "--force")
        left = engine.containers()
        if left:
            result["problems"].append(f"buildah containers left: {left}")
    return result


if __name__ == "__main__":
    sys.exit(child_main(phase))
