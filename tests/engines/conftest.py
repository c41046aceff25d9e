"""Fixtures of the engine tests: one temp dir, one cgroup area, one podman and one
containerd per session; every test runs once per runtime (runc, pyoci) and leaves no
container, cgroup, mount or runtime state behind (checked after each test)."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines import buildah_engine, containerd_engine, docker_engine, podman_engine
from tests.engines.buildah_engine import Buildah
from tests.engines.containerd_engine import Containerd
from tests.engines.docker_engine import Docker
from tests.engines.podman_engine import Podman
from tests.engines.support import (
    CgroupArea,
    HostResidue,
    OciRuntime,
    Reference,
    new_state_entries,
    run,
    runtime_by_name,
    state_entries,
    wait_for,
)
from tests.helpers import build_rootfs, mounts_under, processes_rooted_in

RUNTIME_NAMES = ("runc", "pyoci")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "engines: runs podman/containerd/Docker/buildah with runc and with pyoci "
        "(root, engines)")


@pytest.fixture(params=RUNTIME_NAMES)
def oci_runtime(request: pytest.FixtureRequest) -> OciRuntime:
    rt = runtime_by_name(request.param)
    if rt is None:
        pytest.skip(f"{request.param} is not installed")
    return rt


@pytest.fixture(scope="session")
def reference() -> Reference:
    return Reference()


@pytest.fixture(scope="session")
def engines_base() -> Iterator[Path]:
    """The session's temp dir; removed at the end unless something is still mounted in it
    (rmtree would then delete through the mount)."""
    if os.geteuid() != 0:
        pytest.skip("engine tests run real containers and need root")
    residue = HostResidue()
    base = Path(tempfile.mkdtemp(prefix="pyoci-engines-"))
    os.chmod(base, 0o755)
    yield base
    residue.clean()
    left = mounts_under(base)
    assert not left, f"mounts left under {base}: {left} (not removed)"
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def cgroup_area(engines_base: Path) -> Iterator[CgroupArea]:
    try:
        area = CgroupArea(f"pyoci-engines-{os.getpid()}")
    except LookupError as exc:
        pytest.skip(str(exc))
    yield area
    stuck = area.remove()
    assert not stuck, f"cgroups left: {stuck}"


@pytest.fixture(scope="session")
def image_tar(engines_base: Path) -> Path:
    """The busybox rootfs of the other tests, as a tar for `podman import`."""
    rootfs = engines_base / "rootfs"
    build_rootfs(rootfs)
    tar = engines_base / "rootfs.tar"
    with tarfile.open(tar, "w") as t:
        for entry in sorted(rootfs.iterdir()):
            t.add(entry, arcname=entry.name)
    shutil.rmtree(rootfs)
    return tar


@pytest.fixture(scope="session")
def podman_session(request: pytest.FixtureRequest, engines_base: Path,
                   cgroup_area: CgroupArea) -> Iterator[Podman]:
    reason = podman_engine.missing()
    if reason:
        pytest.skip(reason)
    podman = Podman(engines_base / "podman", cgroup_area.sub("podman"))
    podman.import_image(request.getfixturevalue("image_tar"))
    yield podman
    for name in RUNTIME_NAMES:
        rt = runtime_by_name(name)
        if rt is not None and podman.ids():
            podman.remove_all(rt)
    left = podman.ids()
    podman("rmi", "--all", "--force")
    assert not left, f"podman containers left: {left}"


@pytest.fixture(scope="session")
def containerd_session(request: pytest.FixtureRequest, engines_base: Path,
                       cgroup_area: CgroupArea) -> Iterator[Containerd]:
    """Needs podman too: the image archive is `podman save --format docker-archive`."""
    reason = containerd_engine.missing() or podman_engine.missing()
    if reason:
        pytest.skip(f"{reason} (containerd's image is made with podman)"
                    if not containerd_engine.missing() else reason)
    podman_session: Podman = request.getfixturevalue("podman_session")
    ctrd = Containerd(engines_base / "containerd", cgroup_area.sub("containerd"))
    ctrd.start()
    try:
        archive = engines_base / "image.tar"
        podman_session.save_image(archive)
        ctrd.import_image(archive)
        yield ctrd
        problems = ctrd.remove_all()
        ctrd.ctr("images", "rm", containerd_engine.IMAGE)
    finally:
        ctrd.stop()
    # Shims exit with their last task; their cwd is a bundle below the state dir.
    state = ctrd.base / "state"
    wait_for(lambda: not processes_rooted_in(state), 10)
    assert not problems, "\n".join(problems)
    assert not processes_rooted_in(state), "containerd shims left running"


def _force_delete(rt: OciRuntime, root: Path | None, ids: list[str]) -> None:
    """A runtime that did not delete its container: delete it with runc-compatible CLI
    so the next test starts clean (the test has already failed)."""
    prefix = [str(rt.path)] + (["--root", str(root)] if root else [])
    for cid in ids:
        run([*prefix, "delete", "--force", cid], timeout=30)


def _rmdir_tree(top: Path) -> None:
    for sub, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
        try:
            os.rmdir(sub)
        except OSError:
            pass  # still has processes: reported by the assertion below


@pytest.fixture
def podman(podman_session: Podman, oci_runtime: OciRuntime,
           cgroup_area: CgroupArea) -> Iterator[Podman]:
    before = state_entries(oci_runtime.default_root)
    yield podman_session
    res = podman_session.remove_all(oci_runtime)
    parent = podman_session.cgroup_parent

    def clean() -> bool:
        return not (podman_session.ids() or cgroup_area.children(parent, ignore=("conmon",))
                    or new_state_entries(oci_runtime.default_root, before))

    wait_for(clean, 10, 0.2)
    left = podman_session.ids()
    cgroups = cgroup_area.children(parent, ignore=("conmon",))
    states = new_state_entries(oci_runtime.default_root, before)
    mounts = mounts_under(podman_session.base)
    _force_delete(oci_runtime, None, states)
    for d in cgroups:
        _rmdir_tree(Path(d))
    assert not (left or cgroups or states or mounts), (
        f"{oci_runtime.name} under podman left: containers {left}, cgroups {cgroups}, "
        f"runtime state {states} in {oci_runtime.default_root}, mounts {mounts}\n"
        + res.describe())


@pytest.fixture
def containerd(containerd_session: Containerd, oci_runtime: OciRuntime,
               cgroup_area: CgroupArea) -> Iterator[Containerd]:
    yield containerd_session
    problems = containerd_session.remove_all()
    root = containerd_session.runtime_state(oci_runtime)
    parent = containerd_session.cgroup_parent
    state = containerd_session.base / "state"

    def clean() -> bool:
        return not (state_entries(root) or cgroup_area.children(parent)
                    or processes_rooted_in(state))

    wait_for(clean, 10, 0.2)
    states = sorted(state_entries(root))
    cgroups = cgroup_area.children(parent)
    shims = processes_rooted_in(state)
    mounts = mounts_under(containerd_session.base)
    containers = containerd_session.containers()
    _force_delete(oci_runtime, root, states)
    for d in cgroups:
        _rmdir_tree(Path(d))
    assert not (problems or states or cgroups or shims or mounts or containers), (
        f"{oci_runtime.name} under containerd left: runtime state {states} in {root}, "
        f"cgroups {cgroups}, processes {shims}, mounts {mounts}, containers {containers}\n"
        + "\n".join(problems))


@pytest.fixture(scope="session")
def docker_session(request: pytest.FixtureRequest, engines_base: Path,
                   cgroup_area: CgroupArea) -> Iterator[Docker]:
    """One dockerd (with its own containerd) for the session, both runtimes registered in
    its daemon.json; afterwards the host must be as before: no docker0, no iptables rule,
    /etc/docker and /var/lib/docker untouched, the key quota sysctl restored."""
    reason = docker_engine.missing()
    if reason:
        pytest.skip(reason)
    runtimes = {n: rt.path for n in RUNTIME_NAMES if (rt := runtime_by_name(n)) is not None}
    residue = HostResidue(docker_engine.HOST_PATHS)
    before = docker_engine.host_snapshot()
    docker = Docker(engines_base / "docker", cgroup_area.sub("docker"), runtimes)
    try:
        docker.start()
        docker.import_image(request.getfixturevalue("image_tar"))
        yield docker
        res = docker.remove_all()
        docker("rmi", "--force", docker_engine.IMAGE)
    finally:
        docker.stop()
        docker_engine.restore_sysctls(before)
        residue.clean()
    state = docker.containerd.base / "state"
    wait_for(lambda: not processes_rooted_in(state), 10)
    after = docker_engine.host_snapshot()
    changed = {k: (before[k], after.get(k)) for k in before if before[k] != after.get(k)}
    assert res.rc == 0, res.describe()
    assert not processes_rooted_in(state), "containerd shims left running"
    assert not mounts_under(docker.base), f"dockerd left mounts: {mounts_under(docker.base)}"
    assert not changed, f"the Docker session changed the host: {changed}"


@pytest.fixture
def docker(docker_session: Docker, oci_runtime: OciRuntime,
           cgroup_area: CgroupArea) -> Iterator[Docker]:
    yield docker_session
    res = docker_session.remove_all()
    root = docker_session.runtime_root()
    parent = docker_session.cgroup_parent
    # the data root is bind-mounted onto itself while dockerd runs (shared propagation)
    keep = {str(docker_session.data_root)}

    def mounts() -> list[str]:
        return [m for m in mounts_under(docker_session.base) if m not in keep]

    def clean() -> bool:
        return not (docker_session.ids() or state_entries(root)
                    or cgroup_area.children(parent) or mounts())

    wait_for(clean, 10, 0.2)
    left = docker_session.ids()
    states = sorted(state_entries(root))
    cgroups = cgroup_area.children(parent)
    mnts = mounts()
    _force_delete(oci_runtime, root, states)
    for d in cgroups:
        _rmdir_tree(Path(d))
    assert not (left or states or cgroups or mnts), (
        f"{oci_runtime.name} under Docker left: containers {left}, runtime state {states} "
        f"in {root}, cgroups {cgroups}, mounts {mnts}\n" + res.describe())


@pytest.fixture(scope="session")
def buildah_session(request: pytest.FixtureRequest, engines_base: Path,
                    cgroup_area: CgroupArea) -> Iterator[Buildah]:
    reason = buildah_engine.missing()
    if reason:
        pytest.skip(reason)
    buildah = Buildah(engines_base / "buildah", cgroup_area.sub("buildah"))
    buildah.import_image(request.getfixturevalue("image_tar"))
    yield buildah
    left = buildah.containers()
    buildah("rm", "--all")
    buildah("rmi", "--all", "--force")
    assert not left, f"buildah containers left: {left}"


@pytest.fixture
def buildah(buildah_session: Buildah, oci_runtime: OciRuntime,
            cgroup_area: CgroupArea) -> Iterator[Buildah]:
    """After each build: no working container, no runtime state in the runtime's default
    root (buildah passes no --root), no cgroup, no mount."""
    before = state_entries(oci_runtime.default_root)
    yield buildah_session
    parent = buildah_session.cgroup_parent

    def new_states() -> list[str]:
        return sorted(state_entries(oci_runtime.default_root) - before)

    wait_for(lambda: not (new_states() or cgroup_area.children(parent)), 10, 0.2)
    left = buildah_session.containers()
    states = new_states()
    cgroups = cgroup_area.children(parent)
    mounts = mounts_under(buildah_session.base)
    _force_delete(oci_runtime, None, states)
    for d in cgroups:
        _rmdir_tree(Path(d))
    buildah_session("rm", "--all")
    assert not (left or states or cgroups or mounts), (
        f"{oci_runtime.name} under buildah left: containers {left}, runtime state {states} "
        f"in {oci_runtime.default_root}, cgroups {cgroups}, mounts {mounts}")
