"""podman, confined to a temp dir: its own storage (vfs), run root, libpod tmp dir, volume
and network config dirs, file locks and file events, a cgroupfs parent below our own
cgroup, no network (`--network none` never creates the bridge nor firewall rules), and a
containers.conf of the test's own through CONTAINERS_CONF (never /etc/containers)."""

from __future__ import annotations

import os
import resource
import shutil
from collections.abc import Mapping
from pathlib import Path

from tests.engines.support import TIMEOUT, OciRuntime, Result, run

IMAGE = "localhost/pyoci-engines-busybox:test"


def missing() -> str | None:
    """Why podman tests cannot run here, or None."""
    for tool in ("podman", "conmon"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/libexec/podman/{tool}"):
            return f"{tool} is not installed (apt-get install podman)"
    return None


def _ulimit(kind: int, wanted: int = 20000) -> str:
    """podman asks for nofile/nproc 1048576 by default, and raising a hard limit above the
    caller's is refused even to root on this machine kind (EPERM): ask for what we have."""
    hard = resource.getrlimit(kind)[1]
    value = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    return f"{value}:{value}"


def confined_env(base: Path, dirs: Mapping[str, Path],
                 env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment that confines podman or buildah to ``dirs``: a containers.conf of
    the test's own through CONTAINERS_CONF (rlimits it can grant, no network namespace by
    default, file locks and events in our dirs, a network config dir of ours: even
    `--network none` takes netavark's lock file there), TMPDIR for image copies and
    `update --resources` files (else /var/tmp)."""
    conf = base / "containers.conf"
    volumes = f'volume_path = "{dirs["volumes"]}"\n' if "volumes" in dirs else ""
    conf.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={_ulimit(resource.RLIMIT_NOFILE)}", '
        f'"nproc={_ulimit(resource.RLIMIT_NPROC)}"]\n'
        'netns = "none"\n'
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'events_logfile_path = "{base / "events.log"}"\n'
        # shm locks would live in /dev/shm/libpod_lock; file locks go to tmp_dir.
        'lock_type = "file"\n'
        f'tmp_dir = "{dirs["tmp"]}"\n'
        f"{volumes}"
        "[network]\n"
        f'network_config_dir = "{dirs["networks"]}"\n')
    return {**(os.environ if env is None else env), "CONTAINERS_CONF": str(conf),
            "TMPDIR": str(dirs["vartmp"])}


class Podman:
    """``env``: the environment podman runs with (default: ours); the benchmark harness
    (bench/podman.py) passes its own and reuses this confinement."""

    def __init__(self, base: Path, cgroup_parent: str,
                 env: Mapping[str, str] | None = None) -> None:
        self.base = base
        self.cgroup_parent = cgroup_parent
        dirs = {name: base / name for name in
                ("root", "runroot", "tmp", "volumes", "networks", "vartmp")}
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        self.dirs = dirs
        self.env = confined_env(base, dirs, env)

    def global_args(self, runtime: OciRuntime | Path | None) -> list[str]:
        args = ["podman", "--root", str(self.dirs["root"]), "--runroot", str(self.dirs["runroot"]),
                "--tmpdir", str(self.dirs["tmp"]), "--volumepath", str(self.dirs["volumes"]),
                "--network-config-dir", str(self.dirs["networks"]),
                "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
                "--events-backend", "file"]
        if runtime is not None:
            args += ["--runtime", str(getattr(runtime, "path", runtime))]
        return args

    def __call__(self, *args: str, runtime: OciRuntime | None = None,
                 timeout: float = TIMEOUT) -> Result:
        return run([*self.global_args(runtime), *args], timeout=timeout, env=self.env)

    def run(self, runtime: OciRuntime, *args: str, timeout: float = TIMEOUT) -> Result:
        """`podman run` with what every test container needs: no network, no pull, the
        test's cgroup parent."""
        return self("run", "--network", "none", "--pull", "never",
                    "--cgroup-parent", self.cgroup_parent, *args,
                    runtime=runtime, timeout=timeout)

    def import_image(self, tar: Path) -> None:
        res = self("import", str(tar), IMAGE, timeout=120)
        assert res.rc == 0, res.describe()

    def save_image(self, dest: Path) -> None:
        res = self("save", "--format", "docker-archive", "-o", str(dest), IMAGE, timeout=120)
        assert res.rc == 0, res.describe()

    def ids(self) -> list[str]:
        res = self("ps", "-a", "-q", "--no-trunc")
        assert res.rc == 0, res.describe()
        return res.stdout.split()

    def status(self, name: str, runtime: OciRuntime) -> str:
        res = self("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name,
                   runtime=runtime)
        return res.stdout.strip() if res.rc == 0 else f"inspect failed: {res.stderr.strip()}"

    def container_cgroup(self, cid: str) -> str:
        return f"{self.cgroup_parent}/libpod-{cid}"

    def remove_all(self, runtime: OciRuntime | None = None) -> Result:
        """Pods first: a pod's infra container goes only with its pod."""
        self("pod", "rm", "--all", "--force", runtime=runtime, timeout=120)
        return self("rm", "--all", "--force", "--time", "0", runtime=runtime, timeout=120)

    def pods(self) -> list[str]:
        res = self("pod", "ps", "-q", "--no-trunc")
        assert res.rc == 0, res.describe()
        return res.stdout.split()

    def pid(self, name: str) -> int:
        res = self("inspect", "--format", "{{.State.Pid}}", name)
        return int(res.stdout.strip()) if res.rc == 0 and res.stdout.strip().isdigit() else 0

    def play_kube(self, runtime: OciRuntime, yaml: Path, *, down: bool = False) -> Result:
        """`podman play kube` (no network: --network none); --down stops and removes the
        pods the file describes."""
        if down:
            return self("play", "kube", "--down", str(yaml), runtime=runtime)
        return self("play", "kube", "--network", "none", str(yaml), runtime=runtime)
