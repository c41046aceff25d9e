"""Docker 20.10 (Debian's docker.io), confined to a temp dir: a dockerd of the test's own
with its own --data-root, --exec-root, unix socket, pidfile and daemon.json, no bridge, no
iptables, no IP forwarding, the vfs storage driver, a --cgroup-parent below our own cgroup,
and its own containerd (the one of containerd_engine.py: config, state and sockets in the
temp dir, the CRI and /opt plugins off), passed with --containerd so that dockerd does not
start one whose /opt plugin writes /opt/containerd. Both are stopped at the end by the pids
we started.

The docker CLI is Debian's /usr/bin/docker, called by absolute path: another `docker`
(e.g. a newer /usr/local/bin/docker) may come first on PATH and speak a newer API.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from tests.engines.containerd_engine import Containerd
from tests.engines.support import TIMEOUT, OciRuntime, Result, run, wait_for

DOCKERD = Path("/usr/sbin/dockerd")
DOCKER = Path("/usr/bin/docker")
DOCKER_INIT = Path("/usr/bin/docker-init")
IMAGE = "pyoci-engines-busybox:test"

# dockerd's name for each runtime under test. "runc" is reserved for dockerd's built-in
# entry (whatever `runc` is first on its PATH), so the reference is registered by path.
DOCKER_RUNTIME_NAMES = {"runc": "runc-debian", "pyoci": "pyoci"}

# What dockerd 20.10 writes outside the directories it is given, whatever its flags:
# /run/docker/plugins (the plugin discovery dir; created even with --exec-root elsewhere).
# /etc/docker/key.json is moved by daemon.json's "deprecated-key-path" (no flag exists);
# /opt/containerd comes only from a dockerd-managed containerd (ours has /opt disabled).
HOST_PATHS = (Path("/run/docker/plugins"), Path("/run/docker"), Path("/etc/docker/key.json"))

# Files whose content dockerd may change and that must be as they were found. dockerd
# raises the root key quota (ModifyRootKeyLimit) to 1000000 keys when it is lower.
SYSCTLS = (Path("/proc/sys/kernel/keys/root_maxkeys"), Path("/proc/sys/kernel/keys/root_maxbytes"),
           Path("/proc/sys/net/ipv4/ip_forward"))


def missing() -> str | None:
    """Why the Docker tests cannot run here, or None."""
    for path in (DOCKERD, DOCKER):
        if not os.access(path, os.X_OK):
            return f"{path} is not installed (apt-get install docker.io)"
    for tool in ("containerd", "containerd-shim-runc-v2"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install containerd)"
    return None


def host_snapshot() -> dict[str, object]:
    """What of the host Docker could change and the tests must find unchanged: network
    links (no docker0), iptables rules (--iptables=false), the sysctls above, the contents
    of /etc/docker and /var/lib/docker."""
    snap: dict[str, object] = {}
    snap["links"] = sorted(os.listdir("/sys/class/net"))
    for cmd in ("iptables-save", "ip6tables-save"):
        exe = shutil.which(cmd)
        if exe:
            res = run([exe], timeout=30)
            # counters and the generation comments change by themselves
            snap[cmd] = [ln.split(" [")[0] for ln in res.stdout.splitlines()
                         if not ln.startswith("#") and not ln.startswith(":")]
    for path in SYSCTLS:
        try:
            snap[str(path)] = path.read_text().strip()
        except OSError:
            pass
    for d in (Path("/etc/docker"), Path("/var/lib/docker"), Path("/var/run/docker.sock"),
              Path("/run/docker.sock"), Path("/run/docker.pid")):
        snap[str(d)] = sorted(os.listdir(d)) if d.is_dir() else os.path.lexists(d)
    return snap


def restore_sysctls(before: dict[str, object]) -> None:
    """Put back a sysctl dockerd changed (the key quota), so the host ends as it began."""
    for path in SYSCTLS:
        want = before.get(str(path))
        try:
            if want is not None and path.read_text().strip() != want:
                path.write_text(f"{want}\n")
        except OSError:
            pass


class Docker:
    """A dockerd of our own and the CLI that talks to it."""

    def __init__(self, base: Path, cgroup_parent: str, runtimes: dict[str, Path]) -> None:
        self.base = base
        self.cgroup_parent = cgroup_parent
        self.data_root = base / "data"
        self.exec_root = base / "exec"
        self.cli_config = base / "cli"  # DOCKER_CONFIG: not ~/.docker
        for d in (self.data_root, self.exec_root, self.cli_config):
            d.mkdir(parents=True, exist_ok=True)
        self.socket = base / "docker.sock"
        self.pidfile = base / "docker.pid"
        self.log = base / "dockerd.log"
        self.config = base / "daemon.json"
        self.config.write_text(json.dumps({
            "runtimes": {DOCKER_RUNTIME_NAMES[name]: {"path": str(path)}
                         for name, path in runtimes.items()},
            "deprecated-key-path": str(base / "key.json"),
        }, indent=1))
        self.containerd = Containerd(base / "containerd", f"{cgroup_parent}-containerd")
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {**os.environ, "DOCKER_CONFIG": str(self.cli_config)}
        self.env.pop("DOCKER_HOST", None)
        self.env.pop("DOCKER_CONTEXT", None)

    def start(self, timeout: float = 60) -> None:
        self.containerd.start()
        args = [str(DOCKERD), "--config-file", str(self.config),
                "--containerd", str(self.containerd.address),
                "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                "-H", f"unix://{self.socket}", "--pidfile", str(self.pidfile),
                "--bridge=none", "--iptables=false", "--ip6tables=false",
                "--ip-forward=false", "--ip-masq=false", "--userland-proxy=false",
                "--storage-driver", "vfs", "--cgroup-parent", self.cgroup_parent,
                "--exec-opt", "native.cgroupdriver=cgroupfs", "--log-level", "warn"]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd="/")
        ready = wait_for(lambda: self("version", timeout=10).rc == 0
                         or self.proc.poll() is not None, timeout=timeout, step=0.2)
        if not ready or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"dockerd did not come up:\n{self.log_tail()}")

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM to the dockerd we started and wait for it (it unmounts its data root's
        bind mount and removes its pidfile), then our containerd."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        # A dockerd that had to be killed (a loaded machine) leaves the bind mount of its
        # data root: it is ours, so take it down rather than leave it on the host.
        from tests.helpers import mounts_under

        for mp in reversed(mounts_under(self.base)):
            subprocess.run(["umount", "--lazy", mp], capture_output=True, check=False)
        self.containerd.stop()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __call__(self, *args: str, timeout: float = TIMEOUT, stdin: bytes | None = None) -> Result:
        argv = [str(DOCKER), "-H", f"unix://{self.socket}", *args]
        if stdin is None:
            return run(argv, timeout=timeout, env=self.env)
        return run_with_input(argv, stdin, timeout=timeout, env=self.env)

    def run(self, runtime: OciRuntime, *args: str, timeout: float = TIMEOUT,
            stdin: bytes | None = None) -> Result:
        """`docker run` through ``runtime`` with no network (the netns is still made by
        dockerd and joined by path)."""
        return self("run", "--runtime", DOCKER_RUNTIME_NAMES[runtime.name],
                    "--network", "none", *args, timeout=timeout, stdin=stdin)

    def import_image(self, tar: Path) -> None:
        res = self("import", str(tar), IMAGE, timeout=120)
        assert res.rc == 0, res.describe()

    def inspect(self, name: str, fmt: str) -> str:
        res = self("inspect", "--format", fmt, name)
        return res.stdout.strip() if res.rc == 0 else f"inspect failed: {res.stderr.strip()}"

    def state(self, name: str) -> dict[str, object]:
        """The State fields a Docker user reads, without times and pids."""
        res = self("inspect", "--format", "{{json .State}}", name)
        if res.rc != 0:
            return {"inspect failed": res.stderr.strip()}
        state = json.loads(res.stdout)
        return {k: state.get(k) for k in ("Status", "Running", "Paused", "Restarting",
                                           "OOMKilled", "Dead", "ExitCode", "Error")}

    def ids(self) -> list[str]:
        res = self("ps", "-a", "-q", "--no-trunc")
        assert res.rc == 0, res.describe()
        return res.stdout.split()

    def container_cgroup(self, cid: str) -> str:
        """dockerd's cgroupfs driver: <cgroup-parent>/<id>."""
        return f"{self.cgroup_parent}/{cid}"

    def runtime_root(self) -> Path:
        """Where the shim tells every runtime to keep state (`--root`), one dir per id."""
        return self.exec_root / "runtime-runc" / "moby"

    def remove_all(self) -> Result:
        ids = self.ids()
        if not ids:
            return Result(("docker", "rm"), 0, "", "")
        return self("rm", "--force", "--volumes", *ids, timeout=120)


def run_with_input(args: list[str], data: bytes, *, timeout: float = TIMEOUT,
                   env: dict[str, str] | None = None) -> Result:
    """support.run with ``data`` on stdin (a file, so no pipe stays open in a monitor)."""
    with tempfile.TemporaryFile() as inp, tempfile.TemporaryFile() as out, \
            tempfile.TemporaryFile() as err:
        inp.write(data)
        inp.seek(0)
        try:
            proc = subprocess.run(args, stdin=inp, stdout=out, stderr=err, env=env,
                                  timeout=timeout, cwd="/")
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"timed out after {timeout}s: {' '.join(args)}") from exc
        out.seek(0)
        err.seek(0)
        return Result(tuple(args), proc.returncode, out.read().decode(errors="replace"),
                      err.read().decode(errors="replace"))
