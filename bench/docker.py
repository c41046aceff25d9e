"""`docker run --rm IMAGE /bin/true` and `docker exec CID /bin/true`, runc against pyoci
(issue 16), through the engine tests' confined dockerd (tests/engines/docker_engine.py:
its own data root, exec root, socket, containerd, no bridge, no iptables, vfs, cgroupfs,
a cgroup parent below ours) with both runtimes registered in its daemon.json.

Like the podman phase, this runs as a child in a private mount namespace
(`unshare -m --propagation private python -m bench.docker SPEC`, bench/phase.py): dockerd
bind-mounts its data root and the shims mount each container's rootfs; those mounts
vanish with the namespace. Sysctls dockerd raises (the root key quota) are put back afterwards.

The exec scenario keeps one `sleep` container per runtime running (`docker run -d`) and
times `docker exec` into it: the shim calls `RUNTIME exec --process FILE --detach
--pid-file FILE ID` and then waits for the process through its own reaper.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.phase import child_main, measured_rounds, rootfs_tar
from bench.proc import BenchError, Finished, Sample, run
from bench.runtimes import runtime_env
from tests.engines import docker_engine
from tests.engines.docker_engine import DOCKER_RUNTIME_NAMES, IMAGE
from tests.engines.docker_engine import Docker as ConfinedDocker

SCENARIOS = ("docker run --rm", "docker exec")


def missing() -> str | None:
    return docker_engine.missing()


class Docker(ConfinedDocker):
    """The engine tests' dockerd, its CLI timed by the harness's runner."""

    def cli(self, *args: str, timeout: float = 120) -> Finished:
        return run([str(docker_engine.DOCKER), "-H", f"unix://{self.socket}", *args],
                   env={**runtime_env(), "DOCKER_CONFIG": str(self.cli_config)},
                   timeout=timeout)

    def import_rootfs(self, rootfs: Path) -> None:
        tar = rootfs_tar(rootfs, self.base / "rootfs.tar")
        self.cli("import", str(tar), IMAGE).check()
        tar.unlink()

    def run_rm(self, name: str) -> Sample:
        return self.cli("run", "--rm", "--runtime", DOCKER_RUNTIME_NAMES[name],
                        "--network", "none", IMAGE, "/bin/true").check().sample

    def start_sleeper(self, name: str) -> str:
        res = self.cli("run", "-d", "--runtime", DOCKER_RUNTIME_NAMES[name],
                       "--network", "none", IMAGE, "sleep", "1000000").check()
        return res.stdout.strip()

    def exec_true(self, cid: str) -> Sample:
        return self.cli("exec", cid, "/bin/true").check().sample


def phase(spec: dict[str, Any]) -> dict[str, Any]:
    """Start dockerd, import the image, then for each scenario warm-up and pairs
    (runtimes in the order given); everything removed and stopped at the end."""
    base = Path(spec["base"])
    runtimes = {k: Path(v) for k, v in spec["runtimes"].items()}
    before = docker_engine.host_snapshot()
    engine = Docker(base, spec["cgroup_parent"], runtimes)
    result: dict[str, Any] = {"problems": []}
    try:
        engine.start()
        engine.import_rootfs(Path(spec["template"]))
        samples: dict[str, dict[str, list[dict[str, Any]]]] = {
            s: {n: [] for n in runtimes} for s in SCENARIOS}
        sleepers = {n: engine.start_sleeper(n) for n in runtimes}
        for _, measured in measured_rounds("docker", spec["warmup"], spec["rounds"]):
            for name in runtimes:
                run_rm = engine.run_rm(name)
                ex = engine.exec_true(sleepers[name])
                if measured:
                    samples["docker run --rm"][name].append(asdict(run_rm))
                    samples["docker exec"][name].append(asdict(ex))
        result["samples"] = samples
    except (BenchError, RuntimeError, AssertionError) as exc:
        result["skipped"] = f"docker failed: {exc}"
    finally:
        try:
            res = engine.remove_all()
            if res.rc != 0:
                result["problems"].append(f"docker rm: {res.stderr.strip()}")
        except (AssertionError, OSError) as exc:
            result["problems"].append(f"docker rm: {exc}")
        engine.stop()
        docker_engine.restore_sysctls(before)
    return result


if __name__ == "__main__":
    sys.exit(child_main(phase))
