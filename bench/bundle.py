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


def config(args: list[str]) -> dict[str, Any]:
    """pyoci's `spec` default (runc's shape) with the two differences above."""
    from pyoci.operations.spec import default_spec

    cfg = default_spec()
    cfg["process"].update(terminal=False, args=args)
    cfg["process"]["capabilities"].pop("ambient", None)
    cfg["hostname"] = "bench"
    return cfg


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
