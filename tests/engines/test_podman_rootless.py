"""Rootless podman (issue 15): podman 4.3 run by an ordinary user, with runc and with pyoci.

A user of the test's own (with a 65536-id /etc/subuid range, removed at the end) runs
podman with its own storage (vfs), run root, tmp dir, events file and containers.conf in
a temp dir it owns, and XDG_RUNTIME_DIR there too. podman makes its user namespace
(newuidmap: 0 -> the user, 1..65536 -> the subordinate range) and calls the runtime in it
as that namespace's root, without --root: runc and pyoci keep their state in
``$XDG_RUNTIME_DIR/runc`` and ``$XDG_RUNTIME_DIR/pyoci`` (pyoci/rootless.py). On this
cgroup v1/hybrid host nothing is delegated, so both runtimes run without a cgroup.
Scenarios: run --rm (stdout, exit 3, the maps seen inside), run -d then exec (root and
--user), stop (SIGTERM), rm; pyoci's exit codes and stdout must equal runc's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines.support import Observation, OciRuntime, Reference, Result, run
from tests.integration.test_rootless import User, _missing

pytestmark = [pytest.mark.integration, pytest.mark.engines]

IMAGE = "localhost/pyoci-rootless-busybox:test"
SERVE = 'trap "exit 0" TERM; while :; do sleep 0.1; done'


class RootlessPodman:
    def __init__(self, top: Path, user: User) -> None:
        self.top, self.user = top, user
        self.xdg = top / "xdg"
        for d in ("xdg", "home", "root", "runroot", "tmp", "vartmp", "networks", "config",
                  "data"):
            (top / d).mkdir(mode=0o700)
            os.chown(top / d, user.uid, user.gid)
        conf = top / "containers.conf"
        conf.write_text(
            "[containers]\n"
            'netns = "none"\n'
            "default_ulimits = []\n"
            "[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{top / "tmp" / "events.log"}"\n'
            'lock_type = "file"\n'
            f'tmp_dir = "{top / "tmp"}"\n'
            "[network]\n"
            f'network_config_dir = "{top / "networks"}"\n')
        conf.chmod(0o644)
        self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(top / "home"),
                    "USER": user.name, "XDG_RUNTIME_DIR": str(self.xdg),
                    "XDG_CONFIG_HOME": str(top / "config"),
                    "XDG_DATA_HOME": str(top / "data"), "CONTAINERS_CONF": str(conf),
                    "TMPDIR": str(top / "vartmp"), "LANG": "C.UTF-8"}

    def __call__(self, *args: str, runtime: OciRuntime | None = None,
                 timeout: float = 120) -> Result:
        setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
        argv = [setpriv, f"--reuid={self.user.uid}", f"--regid={self.user.gid}",
                "--clear-groups", "--", "podman", "--root", str(self.top / "root"),
                "--runroot", str(self.top / "runroot"), "--tmpdir", str(self.top / "tmp"),
                "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
                "--events-backend", "file"]
        if runtime is not None:
            argv += ["--runtime", str(runtime.path)]
        return run([*argv, *args], timeout=timeout, env=self.env)

    def ids(self) -> list[str]:
        res = self("ps", "-a", "-q", "--no-trunc")
        assert res.rc == 0, res.describe()
        return res.stdout.split()

    def state_entries(self, runtime: OciRuntime) -> list[str]:
        root = self.xdg / runtime.name
        return sorted(os.listdir(root)) if root.is_dir() else []


@pytest.fixture(scope="module")
def rootless_podman(rootfs_template: Path) -> Iterator[RootlessPodman]:
    why = _missing()
    if why:
        pytest.skip(why)
    if shutil.which("podman") is None or shutil.which("conmon") is None and \
            not os.path.exists("/usr/libexec/podman/conmon"):
        pytest.skip("podman/conmon are not installed (apt-get install podman)")
    top = Path(tempfile.mkdtemp(prefix="pyoci-rootless-podman-"))
    os.chmod(top, 0o755)
    user = User(f"pyrp{uuid.uuid4().hex[:6]}", subids=True)
    try:
        pm = RootlessPodman(top, user)
        tar = top / "rootfs.tar"
        with tarfile.open(tar, "w") as t:
            t.add(rootfs_template, arcname=".")
        tar.chmod(0o644)
        res = pm("import", str(tar), IMAGE)
        assert res.rc == 0, res.describe()
        yield pm
        pm("rm", "--all", "--force", "--time", "0")
    finally:
        # podman's pause process and conmons belong to the user: ended by User.remove.
        user.remove()
        subprocess.run(["rm", "-rf", str(top)], capture_output=True)


@pytest.fixture
def podman(rootless_podman: RootlessPodman, oci_runtime: OciRuntime,
           ) -> Iterator[RootlessPodman]:
    if not _user_can_run(rootless_podman, oci_runtime):
        pytest.skip(f"the test user cannot execute {oci_runtime.path} (is the venv "
                    "readable by others?)")
    yield rootless_podman
    left = rootless_podman.ids()
    rootless_podman("rm", "--all", "--force", "--time", "0", runtime=oci_runtime)
    assert left == [], f"containers left: {left}"
    assert rootless_podman.state_entries(oci_runtime) == [], "runtime state left"


def _user_can_run(pm: RootlessPodman, rt: OciRuntime) -> bool:
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    res = run([setpriv, f"--reuid={pm.user.uid}", f"--regid={pm.user.gid}", "--clear-groups",
               "--", str(rt.path), "--version"], env=pm.env)
    return res.rc == 0


def scenario(pm: RootlessPodman, rt: OciRuntime) -> Observation:
    name = "pyoci-rootless-serve"  # the same for both runtimes: podman prints it
    obs: Observation = {
        "run --rm": pm("run", "--rm", "--network", "none", "--pull", "never", IMAGE, "sh",
                       "-c", "id; cat /proc/self/uid_map; echo hi; exit 3", runtime=rt),
        "run -d": pm("run", "-d", "--name", name, "--network", "none", "--pull", "never",
                     IMAGE, "sh", "-c", SERVE, runtime=rt),
    }
    obs["_run -d id"] = obs.pop("run -d")
    try:
        obs["exec"] = pm("exec", name, "sh", "-c", "id; echo in", runtime=rt)
        obs["exec --user"] = pm("exec", "--user", "1000:1000", name, "id", runtime=rt)
        obs["stop"] = pm("stop", "--time", "10", name, runtime=rt)
        obs["status"] = pm("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}",
                           name, runtime=rt)
    finally:
        obs["rm"] = pm("rm", "--force", "--time", "0", name, runtime=rt)
    obs["containers left"] = pm.ids()
    return obs


def test_rootless_podman(podman: RootlessPodman, oci_runtime: OciRuntime,
                         reference: Reference) -> None:
    obs = scenario(podman, oci_runtime)
    run_rm = obs["run --rm"]
    assert isinstance(run_rm, Result)
    assert run_rm.rc == 3, run_rm.describe()
    assert run_rm.stdout.startswith("uid=0(root) gid=0(root)"), run_rm.describe()
    maps = [line.split() for line in run_rm.stdout.splitlines()[1:3]]
    assert maps[0] == ["0", str(podman.user.uid), "1"], run_rm.describe()
    assert podman.user.subuid is not None
    assert maps[1] == ["1", str(podman.user.subuid[0]), "65536"], run_rm.describe()
    for key in ("exec", "exec --user", "stop", "rm"):
        res = obs[key]
        assert isinstance(res, Result) and res.rc == 0, res
    status = obs["status"]
    assert isinstance(status, Result) and status.stdout.strip() == "exited 0"
    assert obs["containers left"] == []
    reference.compare("rootless podman", oci_runtime, obs, lambda rt: scenario(podman, rt))
