"""The Kubernetes pod lifecycle through containerd's CRI plugin, runc against pyoci
(issue 16): a sandbox and one container, as kubelet drives them over gRPC `runtime.v1`
— RunPodSandbox, CreateContainer, StartContainer, ExecSync (/bin/true),
ContainerStatus, StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox — timed
from the first call to the last reply.

containerd is the engine tests' own (tests/engines/cri_engine.py: root, state, sockets
and CNI config in the harness's temp dir, a CNI plugin that never touches the host's
network, pods' cgroups below ours, one runtime handler per runtime with its own Root),
driven by their gRPC client (tests/engines/cri_client.py). The phase runs as a child in
a private mount namespace (`unshare -m --propagation private python -m bench.cri SPEC`,
bench/phase.py): the pods' netns bind mounts and the shims' rootfs mounts vanish with
it. Only wall time is measured (the runtimes are children of the shims, not of the
harness).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from bench.phase import child_main, measured_rounds, rootfs_tar
from bench.runtimes import DROPPED_ENV
from tests.engines import cri_engine
from tests.engines.cri_client import CriError, CriUnavailable
from tests.engines.cri_engine import PAUSE, CriContainerd, write_oci_archive
from tests.engines.support import OciRuntime

SCENARIO = "CRI pod lifecycle"
CRI_HOST_PATHS = cri_engine.CRI_HOST_PATHS


def missing() -> str | None:
    return cri_engine.missing()


def lifecycle(cri: CriContainerd, rt: OciRuntime, name: str) -> float:
    """One pod, one container, exec, status, stop, remove; seconds."""
    start = time.perf_counter()
    pod, config = cri.run_pod(name, rt)
    cid = cri.create(pod, config, "app", ["/bin/sleep", "3600"])
    cri.cri("StartContainer", container_id=cid)
    ex = cri.cri("ExecSync", container_id=cid, cmd=["/bin/true"], deadline=20)
    if ex.exit_code != 0:
        raise CriError("ExecSync", "exit", f"/bin/true exited {ex.exit_code}")
    cri.status(cid)
    cri.cri("StopContainer", container_id=cid, timeout=0)  # grace period 0: SIGKILL
    cri.cri("RemoveContainer", container_id=cid)
    cri.cri("StopPodSandbox", pod_sandbox_id=pod)
    cri.cri("RemovePodSandbox", pod_sandbox_id=pod)
    return time.perf_counter() - start


def phase(spec: dict[str, Any]) -> dict[str, Any]:
    import os

    for k in DROPPED_ENV:  # containerd and its shims pass their environment on
        os.environ.pop(k, None)
    base = Path(spec["base"])
    runtimes = [OciRuntime(k, Path(v), Path(f"/run/{k}")) for k, v in spec["runtimes"].items()]
    result: dict[str, Any] = {"problems": []}
    tar = rootfs_tar(Path(spec["template"]), base / "rootfs.tar")
    archive = base / "cri-image.tar"
    write_oci_archive(tar, archive, cri_engine.IMAGE, PAUSE)
    cri = CriContainerd(base / "cri", spec["cgroup_parent"], runtimes)
    try:
        cri.start()
    except (CriUnavailable, RuntimeError) as exc:
        result["skipped"] = f"containerd (CRI) did not start: {exc}"
        return result
    try:
        cri.import_image(archive)
        samples: dict[str, list[float]] = {rt.name: [] for rt in runtimes}
        for i, measured in measured_rounds("cri", spec["warmup"], spec["rounds"]):
            for rt in runtimes:
                wall = lifecycle(cri, rt, f"bench-{rt.name}-{i}")
                if measured:
                    samples[rt.name].append(wall)
        result["samples"] = samples
    except (CriError, AssertionError, RuntimeError) as exc:
        result["skipped"] = f"CRI lifecycle failed: {exc}\n{cri.log_tail()}"
    finally:
        result["problems"] += cri.teardown()
    return result


if __name__ == "__main__":
    sys.exit(child_main(phase))
