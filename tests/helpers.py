"""Shared test helpers: a bundle builder, a runtime wrapper and leak checks."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MKROOTFS = REPO / "examples" / "mkrootfs.sh"
REFERENCE_CONFIGS = REPO.parent / "shared" / "reference" / "configs"

BASE_CONFIG: dict[str, Any] = {
    "ociVersion": "1.3.0",
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": ["/bin/true"],
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
        "cwd": "/",
    },
    "root": {"path": "rootfs"},
    "hostname": "pyoci-test",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
    ],
    "linux": {
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
    },
}


def base_config(**process: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(BASE_CONFIG)
    cfg["process"].update(process)
    return cfg


def build_rootfs(dest: Path) -> None:
    subprocess.run(["sh", str(MKROOTFS), str(dest)], check=True, capture_output=True)


def clone_rootfs(template: Path, dest: Path) -> None:
    """Cheap copy: hard links for files (nothing writes into busybox), real dirs."""
    shutil.copytree(template, dest, symlinks=True, copy_function=os.link)


class Bundle:
    def __init__(self, path: Path, config: dict[str, Any]) -> None:
        self.path = path
        self.config = config

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs"

    def write(self, config: dict[str, Any] | None = None) -> Bundle:
        if config is not None:
            self.config = config
        (self.path / "config.json").write_text(json.dumps(self.config, indent=1))
        return self


class Runtime:
    """Runs `python -m pyoci` with a private --root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cmd = [sys.executable, "-m", "pyoci"]

    def __call__(self, *args: str, check: bool = False, timeout: float = 60,
                 global_args: tuple[str, ...] = (), input: str | None = None,
                 **kw: Any) -> subprocess.CompletedProcess:
        """Output goes through files, not pipes: a created container's init inherits
        stdio and keeps a pipe open long after `create` returns (runc's too)."""
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = subprocess.run(
                [*self.cmd, "--root", str(self.root), *global_args, *args],
                stdout=out, stderr=err, text=True, timeout=timeout,
                input=input,
                stdin=kw.pop("stdin", None if input is not None else subprocess.DEVNULL), **kw)
            out.seek(0)
            err.seek(0)
            proc.stdout, proc.stderr = out.read(), err.read()
        if check and proc.returncode != 0:
            raise AssertionError(f"pyoci {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def state(self, cid: str) -> dict[str, Any]:
        return json.loads(self("state", cid, check=True).stdout)

    def ids(self) -> list[str]:
        return self("list", "-q", check=True).stdout.split()


def mounts_under(path: Path) -> list[str]:
    prefix = str(path)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            if mp == prefix or mp.startswith(prefix + "/"):
                out.append(mp)
    return out


def processes_rooted_in(path: Path) -> list[int]:
    """Pids whose root or cwd is inside ``path`` (a container left running)."""
    prefix = str(path)
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        for link in ("root", "cwd"):
            try:
                target = os.readlink(f"/proc/{name}/{link}")
            except OSError:
                continue
            if target == prefix or target.startswith(prefix + "/"):
                found.append(int(name))
                break
    return found


def assert_nothing_left(runtime: Runtime, cid: str, bundle: Bundle) -> None:
    assert not (runtime.root / cid).exists(), f"state dir of {cid} left behind"
    assert cid not in runtime.ids()
    assert mounts_under(bundle.path) == [], "mounts left behind"
    assert processes_rooted_in(bundle.path) == [], "container processes left behind"
    path = bundle.config.get("linux", {}).get("cgroupsPath") or cid
    assert_no_cgroup(path)


def _cgroup_mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fstype, super options) of every cgroup mount of this process."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            fstype, _source, superopts = right.split()[:3]
            if fstype in ("cgroup", "cgroup2"):
                out.append((left.split()[4], fstype, set(superopts.split(","))))
    return out


def own_cgroups() -> list[tuple[str, str]]:
    """(mount point, this process's own cgroup) of each hierarchy it is in."""
    mounts = _cgroup_mounts()
    out = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, own = line.rstrip("\n").split(":", 2)
            for mp, fstype, opts in mounts:
                if (not ctrls and fstype == "cgroup2") or (
                        ctrls and fstype == "cgroup" and set(ctrls.split(",")) <= opts):
                    out.append((mp, own))
                    break
    return out


def cgroup_dirs(path: str) -> list[Path]:
    """Where a container with linux.cgroupsPath ``path`` lives in each hierarchy of this
    host (runc's rule: relative paths hang below the caller's own cgroup), existing or not."""
    return [Path(mp + (own if not path.startswith("/") else "/").rstrip("/") + "/"
                 + path.lstrip("/")) for mp, own in own_cgroups()]


def cgroup_dir(path: str, controller: str) -> Path:
    """The directory of ``path`` in the hierarchy holding ``controller`` ("" = unified)."""
    for d in cgroup_dirs(path):
        hierarchy = d.relative_to("/sys/fs/cgroup").parts[0]
        if controller in hierarchy.split(",") or (not controller and hierarchy == "unified"):
            return d
    raise LookupError(f"no {controller or 'unified'} hierarchy mounted")


def own_cgroup(controller: str) -> str:
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, own = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(",") or (not controller and not ctrls):
                return own
    raise LookupError(controller)


def assert_no_cgroup(path: str) -> None:
    left = [str(d) for d in cgroup_dirs(path) if d.exists()]
    assert left == [], f"cgroup left behind: {left}"


def write_config(bundle_dir: Path, config: dict[str, Any]) -> None:
    (bundle_dir / "config.json").write_text(json.dumps(config, indent=1))
