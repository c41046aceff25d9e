"""`podman run --rm IMAGE /bin/true` end to end, with --runtime each runtime, and
`podman exec CID /bin/true` into one sleeping container per runtime.

podman is kept off the host as the engine tests keep it (docs/testing.md): storage, run
root, tmp, volume and network-config dirs in the harness's temp dir, vfs storage (no
mounts), cgroupfs with a cgroup parent below our own cgroup, file events and locks, no
network, and a containers.conf of our own through CONTAINERS_CONF (never /etc/containers):
`default_ulimits` of 20000 at most because podman's default asks for a hard limit above
the caller's, which is refused here even to root. The image is the busybox rootfs,
imported from a tar (no registry).

podman calls the runtime without --root, so each runtime keeps this container's state in
its default root (/run/runc, /run/pyoci); those directories are removed afterwards if the
harness created them (hostcheck.HostResidue).

The phase runs as its own process in a private mount namespace (bench/phase.py).
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.phase import child_main, measured_rounds, rootfs_tar
from bench.proc import BenchError, Finished, Sample, run
from bench.runtimes import runtime_env
from tests.engines.podman_engine import Podman as ConfinedPodman
from tests.engines.podman_engine import missing

__all__ = ["Podman", "missing", "phase", "probe"]

IMAGE = "localhost/pyoci-bench-busybox:latest"


class Podman(ConfinedPodman):
    """The engine tests' confined podman (own storage, run root, containers.conf, no
    network), run with the harness's environment and its timing runner."""

    def __init__(self, base: Path, cgroup_parent: str) -> None:
        super().__init__(base, cgroup_parent, env=runtime_env())

    def __call__(self, *args: str,  # type: ignore[override]
                 runtime: Path | None = None) -> Finished:
        return run([*self.global_args(runtime), *args], env=self.env)

    def import_rootfs(self, rootfs: Path) -> None:
        tar = rootfs_tar(rootfs, self.base / "rootfs.tar")
        self("import", str(tar), IMAGE).check()
        tar.unlink()

    def run_rm(self, runtime: Path) -> Sample:
        """The timed command: what a user types, plus the harness's confinement."""
        return self("run", "--rm", "--network", "none", "--pull", "never",
                    "--cgroup-parent", self.cgroup_parent, IMAGE, "/bin/true",
                    runtime=runtime).check().sample

    def start_sleeper(self, runtime: Path) -> str:
        """A detached `sleep` container for the exec scenario (untimed)."""
        return self("run", "-d", "--network", "none", "--pull", "never",
                    "--cgroup-parent", self.cgroup_parent, IMAGE, "sleep", "1000000",
                    runtime=runtime).check().stdout.strip()

    def exec_true(self, cid: str, runtime: Path) -> Sample:
        """`podman exec CID /bin/true`: conmon runs `RUNTIME exec --detach --process F
        --pid-file F ID` (plus podman's own `state` calls around it)."""
        return self("exec", cid, "/bin/true", runtime=runtime).check().sample

    def ids(self) -> list[str]:
        return self("ps", "-a", "-q", "--no-trunc").check().stdout.split()

    def cleanup(self, runtimes: list[Path]) -> list[str]:
        """Remove every container (with each runtime, as podman needs the one that made
        it) and the image; what remains is returned."""
        problems = []
        for rt in runtimes:
            if self.ids():
                res = self("rm", "--all", "--force", "--time", "0", runtime=rt)
                if res.rc != 0:
                    problems.append(res.describe())
        left = self.ids()
        if left:
            problems.append(f"podman containers left: {left}")
        res = self("rmi", "--all", "--force")
        if res.rc != 0:
            problems.append(res.describe())
        return problems


def probe(podman: Podman, runtime: Path) -> str | None:
    """One untimed run; the error text when the runtime does not work under podman."""
    try:
        podman.run_rm(runtime)
    except BenchError as exc:
        return str(exc)
    return None


# --- the phase, run in a private mount namespace ---------------------------------------------
#
# podman mounts a tmpfs for each container's /dev/shm on the *host* side (under its
# storage dir). So that no mount of the benchmark ever reaches the host's mount table,
# the whole podman phase is a child `unshare -m --propagation private python -m
# bench.podman ...` (bench/phase.py): those mounts exist only in that namespace and vanish
# with it.


def phase(spec: dict[str, Any]) -> dict[str, Any]:
    """Import the image, probe each runtime once, then the pairs (runtimes in the order
    given, A B A B ...); everything removed at the end."""
    engine = Podman(Path(spec["base"]), spec["cgroup_parent"])
    runtimes = {k: Path(v) for k, v in spec["runtimes"].items()}
    result: dict[str, Any] = {"problems": []}
    try:
        engine.import_rootfs(Path(spec["template"]))
        for name, path in runtimes.items():
            err = probe(engine, path)
            if err:
                result["skipped"] = f"{name} fails under podman: {err}"
                return result
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in runtimes}
        for _, measured in measured_rounds("podman", spec["warmup"], spec["rounds"]):
            for name, path in runtimes.items():
                s = engine.run_rm(path)
                if measured:
                    samples[name].append(asdict(s))
        result["samples"] = samples
        sleepers = {name: engine.start_sleeper(path) for name, path in runtimes.items()}
        execs: dict[str, list[dict[str, Any]]] = {name: [] for name in runtimes}
        for i in range(spec["warmup"] + spec["rounds"]):
            for name, path in runtimes.items():
                s = engine.exec_true(sleepers[name], path)
                if i >= spec["warmup"]:
                    execs[name].append(asdict(s))
        result["exec_samples"] = execs
        print("  podman exec done", file=sys.stderr, flush=True)
    except BenchError as exc:
        result["problems"].append(f"podman failed: {exc}")
        if "samples" not in result:
            result["skipped"] = f"podman run failed: {exc}"
    finally:
        result["problems"] += engine.cleanup(list(runtimes.values()))
    return result


if __name__ == "__main__":
    sys.exit(child_main(phase))
