"""Writes into the container's /proc redirected by mounts or links (CVE-2019-19921,
CVE-2023-27561, CVE-2025-52881 classes; found by the review of issue 11's fixes), and
container-controlled text reaching the caller's terminal. Harmless targets only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import Bundle, Runtime, assert_nothing_left

pytestmark = pytest.mark.integration


def _refused(runtime: Runtime, bundle: Bundle, cid: str) -> str:
    proc = runtime("create", "--bundle", str(bundle.path), cid)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert_nothing_left(runtime, cid, bundle)
    return proc.stderr


def test_bind_through_an_image_link_into_proc_sys_is_refused(runtime: Runtime, bundle: Bundle,
                                                            tmp_path: Path) -> None:
    """The image's /data -> /proc/sys/net/ipv4 and an ordinary volume at /data/ip_forward:
    the bind landed over procfs's ip_forward, and pyoci's sysctl write then went into the
    host file. runc: "cannot be mounted because it is inside /proc"."""
    host_file = tmp_path / "harmless.txt"
    host_file.write_text("ORIGINAL\n")
    (bundle.rootfs / "data").symlink_to("/proc/sys/net/ipv4")
    bundle.config["mounts"].append({"destination": "/data/ip_forward", "type": "bind",
                                    "source": str(host_file), "options": ["bind"]})
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    bundle.write()
    err = _refused(runtime, bundle, "procbind")
    assert "resolves to /proc/sys/net/ipv4/ip_forward" in err
    assert "inside /proc" in err
    assert host_file.read_text() == "ORIGINAL\n"


def test_a_volume_over_proc_through_a_link_is_refused(runtime: Runtime, bundle: Bundle,
                                                      tmp_path: Path) -> None:
    volume = tmp_path / "vol"
    (volume / "sys" / "net" / "ipv4").mkdir(parents=True)
    (volume / "sys" / "net" / "ipv4" / "ip_forward").write_text("0\n")
    (bundle.rootfs / "data").symlink_to("/proc")
    # After the proc mount, so the bind would cover it.
    bundle.config["mounts"].append({"destination": "/data", "type": "bind",
                                    "source": str(volume), "options": ["rbind"]})
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    bundle.write()
    err = _refused(runtime, bundle, "procvol")
    assert "resolves to /proc: cannot be mounted there because it is not of type proc" in err
    assert (volume / "sys" / "net" / "ipv4" / "ip_forward").read_text() == "0\n"


def test_sysctl_never_written_into_an_image_file(runtime: Runtime, bundle: Bundle) -> None:
    """No proc mount: /proc is the image's directory, and its 'sys/net/ipv4/ip_forward' a
    plain file. The sysctl write truncated and wrote it before create failed."""
    fake = bundle.rootfs / "proc" / "sys" / "net" / "ipv4" / "ip_forward"
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text("0\n")
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["type"] != "proc"]
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    bundle.write()
    err = _refused(runtime, bundle, "fakeproc")
    assert "is not procfs" in err
    assert fake.read_text() == "0\n"


def test_escaping_capabilities_are_refused_without_a_mount_namespace(
        runtime: Runtime, bundle: Bundle) -> None:
    """Without a mount namespace the rootfs is only a chroot: CAP_SYS_CHROOT climbs out of
    it, CAP_SYS_ADMIN mounts in the caller's namespace."""
    bundle.config["linux"]["namespaces"] = [ns for ns in bundle.config["linux"]["namespaces"]
                                            if ns["type"] != "mount"]
    bundle.config["mounts"] = []
    caps = ["CAP_SYS_CHROOT", "CAP_SYS_ADMIN", "CAP_KILL"]
    bundle.config["process"]["capabilities"] = {"bounding": caps, "permitted": caps,
                                                "effective": caps}
    bundle.write()
    err = _refused(runtime, bundle, "chrootcaps")
    assert "CAP_SYS_CHROOT" in err and "CAP_SYS_ADMIN" in err and "CAP_KILL" not in err
    proc = runtime("validate", "--bundle", str(bundle.path))
    assert proc.returncode == 1 and "CAP_SYS_CHROOT" in proc.stdout + proc.stderr


def test_hook_output_is_escaped(runtime: Runtime, bundle: Bundle) -> None:
    """A failing hook's last line reached the caller's terminal raw: a title change, a
    forged line after \\r. Now escaped, as runc's logrus quoting does."""
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": [
        "sh", "-c", r"printf 'oops \033]0;PWNED\007 \033[31mRED\rfake: started fine\n' >&2;"
                    " exit 1"]}]}
    bundle.write()
    err = _refused(runtime, bundle, "hookesc")
    assert "\x1b" not in err and "\r" not in err
    assert "oops \\x1b]0;PWNED\\x07 \\x1b[31mRED\\rfake: started fine" in err
    assert os.path.exists(bundle.path)
