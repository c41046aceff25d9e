"""buildah 1.28, confined like podman (podman_engine.py): its own storage (vfs), run root and
tmp dir, a containers.conf of the test's own through CONTAINERS_CONF (rlimits it can grant,
file locks, and a network config dir of ours: even `--network none` takes netavark's lock
file in it, else /etc/containers/networks/netavark.lock is made), --cgroup-parent below our
own cgroup, no network.

Each RUN step is one container: buildah calls the runtime with no global flags (state in
its default root, /run/runc or /run/pyoci) as `create --bundle DIR --pid-file F ID`,
`start ID`, `state ID` and `delete ID`, the runtime's stdio being the build's output.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.engines.podman_engine import confined_env
from tests.engines.support import TIMEOUT, OciRuntime, Result, run

BUILDAH = "buildah"
IMAGE = "localhost/pyoci-engines-busybox:test"


def missing() -> str | None:
    if shutil.which(BUILDAH) is None:
        return "buildah is not installed (apt-get install buildah)"
    return None


class Buildah:
    def __init__(self, base: Path, cgroup_parent: str) -> None:
        self.base = base
        self.cgroup_parent = cgroup_parent
        self.dirs = {name: base / name for name in ("root", "runroot", "tmp", "networks",
                                                   "vartmp")}
        for d in self.dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        self.env = confined_env(base, self.dirs)

    def __call__(self, *args: str, timeout: float = TIMEOUT) -> Result:
        return run([BUILDAH, "--root", str(self.dirs["root"]),
                    "--runroot", str(self.dirs["runroot"]), "--storage-driver", "vfs", *args],
                   timeout=timeout, env=self.env)

    def import_image(self, tar: Path) -> None:
        """No registry: a scratch container, the rootfs tar added (extracted) into it,
        committed; no runtime is involved."""
        res = self("from", "--name", "pyoci-import", "scratch")
        assert res.rc == 0, res.describe()
        try:
            for step in (("add", "pyoci-import", str(tar), "/"),
                         ("commit", "--quiet", "pyoci-import", IMAGE)):
                res = self(*step, timeout=120)
                assert res.rc == 0, res.describe()
        finally:
            self("rm", "pyoci-import")

    def bud(self, runtime: OciRuntime, context: Path, tag: str) -> Result:
        """`buildah bud` with the runtime by path, OCI isolation, no network, the base image
        never pulled, and a fixed timestamp (--timestamp 0: files and history get the same
        times), so that equal RUN effects give the same image id."""
        return self("bud", "--runtime", str(runtime.path), "--isolation", "oci",
                    "--network", "none", "--pull-never", "--layers=false", "--timestamp", "0",
                    "--cgroup-parent", self.cgroup_parent, "-t", tag,
                    "-f", str(context / "Containerfile"), str(context), timeout=180)

    def image_id(self, tag: str) -> str:
        res = self("images", "--no-trunc", "--quiet", tag)
        return res.stdout.strip() if res.rc == 0 else f"no image: {res.stderr.strip()}"

    def files(self, tag: str, top: str) -> dict[str, str]:
        """path -> "mode uid:gid content-or-target" of everything below ``top`` in the
        image, read through a working container's (vfs: plain directory) mount."""
        name = "pyoci-files"
        res = self("from", "--pull-never", "--name", name, tag)
        assert res.rc == 0, res.describe()
        try:
            res = self("mount", name)
            assert res.rc == 0, res.describe()
            root = Path(res.stdout.strip())
            out: dict[str, str] = {}
            base = root / top.lstrip("/")
            for dirpath, dirnames, filenames in os.walk(base):
                for entry in sorted(dirnames + filenames):
                    p = Path(dirpath, entry)
                    st = p.lstat()
                    if p.is_symlink():
                        what = "-> " + os.readlink(p)
                    elif p.is_file():
                        what = p.read_text(errors="replace")
                    else:
                        what = "dir"
                    out["/" + str(p.relative_to(root))] = (
                        f"{st.st_mode:o} {st.st_uid}:{st.st_gid} {what}")
            self("umount", name)
            return out
        finally:
            self("rm", name)

    def containers(self) -> list[str]:
        res = self("containers", "--all", "--quiet", "--notruncate")
        return res.stdout.split()

    def rmi(self, *tags: str) -> None:
        self("rmi", "--force", *tags)
