"""Whole containers on the cgroup layouts this host does not have.

The host is hybrid. For pure cgroup v2, pyoci runs in a private mount namespace where
cgroup2 is mounted over /sys/fs/cgroup (the host's one unified hierarchy, which offers
only hugetlb, but freezing, killing and the eBPF device filter are core v2 features).
For pure v1, a tmpfs goes there with the host's v1 hierarchies mounted again beneath it.
pyoci detects the layout itself; the shell script below drives it like a user would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import Bundle, assert_no_cgroup, base_config, write_config

pytestmark = pytest.mark.integration

V2_SETUP = "mount -t cgroup2 cgroup2 /sys/fs/cgroup"


def _v1_setup() -> str:
    lines = ["mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup"]
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            fstype, _src, opts = right.split()[:3]
            mp = left.split()[4]
            if fstype == "cgroup" and mp.startswith("/sys/fs/cgroup/"):
                keep = ",".join(o for o in opts.split(",") if o not in ("rw", "ro"))
                name = mp.rsplit("/", 1)[1]
                lines.append(f"mkdir /sys/fs/cgroup/{name} && "
                             f"mount -t cgroup -o {keep} cgroup /sys/fs/cgroup/{name}")
    return "\n".join(lines)


def _in_layout(setup: str, script: str, root: Path) -> subprocess.CompletedProcess:
    pyoci = f"{sys.executable} -m pyoci --root {root}"
    full = f"set -u\n{setup}\nP='{pyoci}'\n{script}"
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", full],
                          capture_output=True, text=True, timeout=120)


DEVICES_AND_PAUSE = r"""
cd "$1"
$P run -b . dev-probe; echo "run=$?"
$P create -b sleeper sl && $P start sl
$P pause sl && $P state sl | grep -o '"status": "[a-z]*"'
cat /sys/fs/cgroup/sl/cgroup.freeze 2>/dev/null || cat /sys/fs/cgroup/freezer/sl/freezer.state
$P resume sl && $P state sl | grep -o '"status": "[a-z]*"'
$P ps -f json sl
$P delete -f sl; echo "delete=$?"
"""

PROBE = ("mknod /tmp/sda b 8 0 && head -c1 /tmp/sda >/dev/null; echo sda=$?; "
         "head -c1 /dev/zero >/dev/null; echo zero=$?")


def _bundles(bundle: Bundle) -> Path:
    caps = ["CAP_MKNOD", "CAP_DAC_OVERRIDE"]
    probe = base_config(args=["sh", "-c", PROBE])
    probe["process"]["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
    probe["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    bundle.write(probe)
    sleeper = bundle.path / "sleeper"
    sleeper.mkdir()
    (sleeper / "rootfs").symlink_to(bundle.rootfs)
    write_config(sleeper, base_config(args=["sleep", "300"]))
    return bundle.path


@pytest.mark.parametrize("layout", ["v2", "v1"])
def test_container_on_layout(layout: str, bundle: Bundle, tmp_path: Path) -> None:
    setup = V2_SETUP if layout == "v2" else _v1_setup()
    res = _in_layout(setup, DEVICES_AND_PAUSE.replace('"$1"', str(_bundles(bundle))),
                     tmp_path / "state")
    out = res.stdout
    # The device filter (eBPF on v2, the devices controller on v1) denies the block device
    # CAP_MKNOD made; runc's default allow-list keeps /dev/zero readable.
    assert "sda=1" in out and "zero=0" in out and "run=0" in out, out + res.stderr
    assert "Operation not permitted" in res.stderr
    statuses = [line for line in out.splitlines() if line.startswith('"status"')]
    assert statuses == ['"status": "paused"', '"status": "running"'], out + res.stderr
    assert ("1" if layout == "v2" else "FROZEN") in out.splitlines()
    assert "delete=0" in out, res.stderr
    assert_no_cgroup("sl")
    assert_no_cgroup("dev-probe")


def test_v2_controller_it_lacks_is_a_clear_error(bundle: Bundle, tmp_path: Path) -> None:
    cfg = base_config()
    cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}}
    bundle.write(cfg)
    res = _in_layout(V2_SETUP, f"cd {bundle.path}\n$P create -b . nomem; echo rc=$?\n"
                     "ls /sys/fs/cgroup | grep -c nomem",
                     tmp_path / "state")
    assert "rc=1" in res.stdout, res.stdout + res.stderr
    assert "linux.resources.memory.limit" in res.stderr and "memory" in res.stderr
    assert res.stdout.splitlines()[-1] == "0"  # no cgroup left behind
    assert not (tmp_path / "state" / "nomem").exists()
