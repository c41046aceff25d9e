"""What machine the figures came from, and how much CPU the hypervisor stole meanwhile.

Steal time (the 8th value of the `cpu` line of /proc/stat, proc(5)) is why absolute times
on shared VMs are not comparable between runs; it is recorded so a reader can tell a
quiet run from a noisy one.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _meminfo_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def _os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return ""


def _git(repo: Path, *args: str) -> str:
    res = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                         timeout=30)
    return res.stdout.strip() if res.returncode == 0 else ""


def describe(repo: Path) -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "nproc": os.cpu_count(),
        "memory_bytes": _meminfo_total(),
        "kernel": platform.release(),
        "os": _os_release(),
        "cpu_model": _cpu_model(),
        "harness_python": sys.version.split()[0],
        "git_head": _git(repo, "rev-parse", "--short", "HEAD"),
        "git_dirty": bool(_git(repo, "status", "--porcelain", "--untracked-files=no")),
    }


@dataclass(frozen=True)
class CpuTimes:
    total: int
    steal: int

    @classmethod
    def now(cls) -> CpuTimes:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal guest guest_nice; guest time is
        # already inside user/nice.
        return cls(sum(values[:8]), values[7] if len(values) > 7 else 0)

    def steal_since(self, before: CpuTimes) -> float:
        """Share (0..1) of all CPU time that was stolen between two readings."""
        total = self.total - before.total
        return (self.steal - before.steal) / total if total > 0 else 0.0
