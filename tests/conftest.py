from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Bundle, Runtime, base_config, build_rootfs, clone_rootfs


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = None
    if os.geteuid() != 0:
        reason = "integration tests run real containers and need root"
    elif not shutil.which("busybox") and not os.path.exists("/bin/busybox"):
        reason = "busybox-static is not installed (apt-get install busybox-static)"
    if reason is None:
        return
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def rootfs_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "rootfs"
    build_rootfs(path)
    return path


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(tmp_path / "state")
    yield rt
    # Remove whatever a failing test left, by the runtime itself.
    for cid in rt.ids() if rt.root.exists() else []:
        rt("delete", "--force", cid)


@pytest.fixture
def bundle(tmp_path: Path, rootfs_template: Path) -> Bundle:
    path = tmp_path / "bundle"
    path.mkdir()
    clone_rootfs(rootfs_template, path / "rootfs")
    return Bundle(path, base_config()).write()


@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    """A host directory a test can bind into a container to observe side effects."""
    path = tmp_path / "shared"
    path.mkdir()
    os.chmod(path, 0o777)
    return path


@pytest.fixture
def open_bundle(tmp_path: Path, rootfs_template: Path) -> Iterator[Bundle]:
    """A bundle every user can traverse (pytest's tmp dirs are 0700 root): a user
    namespace's root is an unprivileged host uid that must still reach the rootfs and
    bind sources, as with runc."""
    top = Path(tempfile.mkdtemp(prefix="pyoci-cfg-"))
    try:
        os.chmod(top, 0o755)
        path = top / "bundle"
        path.mkdir(mode=0o755)
        clone_rootfs(rootfs_template, path / "rootfs")
        os.chmod(path / "rootfs", 0o755)
        yield Bundle(path, base_config()).write()
    finally:
        shutil.rmtree(top, ignore_errors=True)
