"""The busybox bundles both runtimes run.

The config is the shape of `runc spec`'s default (what a user starting from scratch gets):
pid/network/ipc/uts/mount namespaces, a read-only root, proc/dev/devpts/shm/mqueue/sysfs
and a read-only cgroup mount, three capabilities, an RLIMIT_NOFILE, noNewPrivileges, the
masked and read-only /proc paths and a deny-all device rule (so the device cgroup is
written). Two differences: no terminal (there is no console socket to send it to) and no
ambient capabilities (not inheritable either, so the kernel refuses them; runc drops them
silently, pyoci warns, and the warning would be measured).

No cgroupsPath: each runtime puts the container at `<own cgroup>/<id>` in every hierarchy
(runc's rule for the default), below the harness's own cgroups.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def config(args: list[str]) -> dict[str, Any]:
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "bench",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                         "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }


def build_rootfs(repo: Path, dest: Path) -> None:
    """examples/mkrootfs.sh: Debian's static busybox and one symlink per applet."""
    res = subprocess.run(["sh", str(repo / "examples" / "mkrootfs.sh"), str(dest)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"mkrootfs.sh failed: {res.stderr.strip()}")


def make_bundle(template: Path, dest: Path, args: list[str]) -> Path:
    """A bundle of its own: directories copied, files hard-linked (nothing writes into
    a read-only busybox root), config.json written."""
    dest.mkdir(parents=True)
    os.chmod(dest, 0o755)
    shutil.copytree(template, dest / "rootfs", symlinks=True, copy_function=os.link)
    (dest / "config.json").write_text(json.dumps(config(args), indent=1))
    return dest


class Bundles:
    """Per runtime: one bundle whose process is /bin/true, one that sleeps."""

    def __init__(self, template: Path, base: Path) -> None:
        self.true = make_bundle(template, base / "true", ["/bin/true"])
        self.sleep = make_bundle(template, base / "sleep", ["/bin/sleep", "3600"])
