"""containerd, started by the test session: its own root, state, sockets and config (no
CRI plugin, no /opt plugin dir), stopped at the end by its pid. Each runtime under test
keeps its state in a dir of ours (`ctr run --runc-root`); the shim calls it with
`--root DIR --log BUNDLE/log.json --log-format json` and reads that log for errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from tests.engines.support import TIMEOUT, OciRuntime, Result, run, wait_for

IMAGE = "localhost/pyoci-engines-busybox:test"
NAMESPACE = "default"

# Plugins that would reach outside the temp dir or that the tests do not need.
DISABLED = ("io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt",
            "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
            "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
            "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing")


def missing() -> str | None:
    for tool, pkg in (("containerd", "containerd"), ("ctr", "containerd"),
                      ("containerd-shim-runc-v2", "containerd")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install {pkg})"
    return None


class Containerd:
    def __init__(self, base: Path, cgroup_parent: str) -> None:
        self.base = base
        self.cgroup_parent = cgroup_parent
        self.address = base / "containerd.sock"
        self.fifo_dir = base / "fifo"
        self.roots = base / "runtime-roots"
        for d in (self.fifo_dir, self.roots):
            d.mkdir(parents=True, exist_ok=True)
        self.config = base / "config.toml"
        self.config.write_text(
            "version = 2\n"
            f'root = "{base / "root"}"\n'
            f'state = "{base / "state"}"\n'
            f"disabled_plugins = {json.dumps(list(DISABLED))}\n"
            "[grpc]\n"
            f'  address = "{self.address}"\n'
            "[ttrpc]\n"
            f'  address = "{self.address}.ttrpc"\n')
        self.log = base / "containerd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["containerd", "--config", str(self.config), "--log-level", "warn"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd="/")
        ready = wait_for(lambda: self.ctr("version", timeout=5).rc == 0
                         or self.proc.poll() is not None, timeout=timeout, step=0.1)
        if not ready or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"containerd did not come up:\n{self.log_tail()}")

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to the daemon we started, and wait for it (SIGKILL if it hangs)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=timeout)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def ctr(self, *args: str, timeout: float = TIMEOUT) -> Result:
        return run(["ctr", "--address", str(self.address), "--namespace", NAMESPACE, *args],
                   timeout=timeout)

    def runtime_root(self, runtime: OciRuntime) -> Path:
        """What `ctr run --runc-root` gets; the shim appends the namespace."""
        root = self.roots / runtime.name
        root.mkdir(exist_ok=True)
        return root

    def runtime_state(self, runtime: OciRuntime) -> Path:
        """The runtime's --root as the shim passes it: one dir per container id in it."""
        return self.runtime_root(runtime) / NAMESPACE

    def run(self, runtime: OciRuntime, cid: str, *args: str, detach: bool = False,
            opts: tuple[str, ...] = (), timeout: float = TIMEOUT) -> Result:
        """`ctr run` of the test image through ``runtime``: the shim gets the binary
        (--runc-binary) and a state dir of ours (--runc-root); the cgroup is below ours."""
        mode = ["--detach"] if detach else ["--rm"]
        return self.ctr("run", *mode, "--runc-binary", str(runtime.path),
                        "--runc-root", str(self.runtime_root(runtime)),
                        "--fifo-dir", str(self.fifo_dir),
                        "--cgroup", self.container_cgroup(cid), *opts, IMAGE, cid, *args,
                        timeout=timeout)

    def container_cgroup(self, cid: str) -> str:
        return f"{self.cgroup_parent}/{cid}"

    def import_image(self, archive: Path) -> None:
        res = self.ctr("images", "import", str(archive), timeout=120)
        assert res.rc == 0, res.describe() + "\n" + self.log_tail()

    def tasks(self) -> dict[str, tuple[int, str]]:
        """task id -> (pid, STATUS) from `ctr task ls`."""
        res = self.ctr("task", "ls")
        assert res.rc == 0, res.describe()
        out = {}
        for line in res.stdout.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 3:
                out[parts[0]] = (int(parts[1]), parts[2])
        return out

    def task_status(self, cid: str) -> str:
        return self.tasks().get(cid, (0, "absent"))[1]

    def containers(self) -> list[str]:
        res = self.ctr("containers", "ls", "-q")
        assert res.rc == 0, res.describe()
        return res.stdout.split()

    def runtime_log(self, cid: str) -> str:
        """The runtime's --log file for a task that still exists (the shim removes the
        bundle with the task)."""
        path = self.base / "state" / "io.containerd.runtime.v2.task" / NAMESPACE / cid / "log.json"
        try:
            return path.read_text(errors="replace")
        except OSError:
            return ""

    def remove_all(self) -> list[str]:
        """Kill and delete every task, delete every container; returns what failed."""
        problems = []
        for cid, (_pid, status) in self.tasks().items():
            if status != "STOPPED":
                self.ctr("task", "kill", "--signal", "SIGKILL", cid)
                wait_for(lambda c=cid: self.task_status(c) in ("STOPPED", "absent"), 10)
            res = self.ctr("task", "rm", "--force", cid)
            if res.rc != 0:
                problems.append(res.describe())
        for cid in self.containers():
            res = self.ctr("containers", "rm", cid)
            if res.rc != 0:
                problems.append(res.describe())
        return problems


EXIT_CODE = re.compile(r"exit code (\d+)")


def exit_code_of_rm(res: Result) -> int | None:
    """`ctr task rm` reports a non-zero exit status only as a warning on stderr."""
    m = EXIT_CODE.search(res.stderr)
    return int(m.group(1)) if m else (0 if res.rc == 0 else None)
