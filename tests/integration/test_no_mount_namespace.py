"""A config without a mount namespace (issue 13, "Spec v1.3 wording").

config-linux.md "Namespaces": "If a namespace type is not specified in the namespaces
array, the container MUST inherit the runtime namespace of that type." pyoci used to refuse
such a config ("a mount namespace is required"). Now the init makes no mount at all and
only chroots into the rootfs (runc's choice without CLONE_NEWNS); what would need a mount
-- mounts, masked or read-only paths, a read-only root, rootfsPropagation, devices,
sysctls -- is refused with the reason, since it would land in the caller's mount namespace
(runc 1.1.5 makes them there and leaves them after delete: its rootfs bind mount, device
nodes, `rslave /`).

These tests never make a mount in the host's namespace: the accepted configs have no
mounts, and the refused ones are refused before anything is forked. Each checks the
caller's mount table is unchanged.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.helpers import Bundle, Runtime, assert_nothing_left, base_config

pytestmark = pytest.mark.integration

NO_MNTNS = [{"type": t} for t in ("pid", "ipc", "uts")]


def _mountinfo() -> list[str]:
    """What a runtime acting in the caller's mount namespace would change: the entries
    for / and /tmp (propagation, flags) and any mount below the test's temp dirs, without
    the ids. (Not the whole table: other tests on the machine mount elsewhere.)"""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mp = fields[4]
            if mp in ("/", "/tmp") or mp.startswith("/tmp/"):
                out.append(" ".join(fields[2:]))
    return sorted(out)


def _config(args: list[str], **extra: object) -> dict:
    cfg = base_config(args=args)
    cfg["mounts"] = []
    cfg["linux"]["namespaces"] = NO_MNTNS
    cfg.update(extra)
    return cfg


def _cid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_runs_chrooted_in_the_rootfs_without_mounts(runtime: Runtime, bundle: Bundle) -> None:
    """No mount namespace, no mounts: the process runs, its / is the rootfs (a file only
    the rootfs has is there, the host's are not), it shares the runtime's mount
    namespace, and no mount appears or disappears in the caller's namespace."""
    (bundle.rootfs / "only-in-rootfs").write_text("yes\n")
    bundle.write(_config(["sh", "-c", "cat /only-in-rootfs; ls /; "
                                      "echo written > /tmp/from-container"]))
    before = _mountinfo()
    cid = _cid("nomnt")
    res = runtime("run", "--bundle", str(bundle.path), cid)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.split()
    assert lines[0] == "yes"
    assert sorted(lines[1:]) == sorted(p.name for p in bundle.rootfs.iterdir())
    assert (bundle.rootfs / "tmp" / "from-container").read_text() == "written\n"
    assert _mountinfo() == before, "the caller's mount table changed"
    assert_nothing_left(runtime, cid, bundle)


def test_shares_the_runtime_mount_namespace_and_exec_is_chrooted(
        runtime: Runtime, bundle: Bundle) -> None:
    """The init is in the runtime's mount namespace (inherited, as the spec says), chroot'ed
    into the rootfs; an `exec`'d process joins it there (its root is the init's)."""
    bundle.write(_config(["sleep", "60"]))
    (bundle.rootfs / "marker").write_text("rootfs\n")
    before = _mountinfo()
    cid = _cid("nomntx")
    assert runtime("create", "--bundle", str(bundle.path), cid).returncode == 0
    try:
        pid = runtime.state(cid)["pid"]
        assert Path(f"/proc/{pid}/ns/mnt").stat().st_ino == Path("/proc/self/ns/mnt").stat().st_ino
        assert Path(f"/proc/{pid}/root").resolve() == bundle.rootfs.resolve()
        assert runtime("start", cid).returncode == 0
        res = runtime("exec", cid, "cat", "/marker")
        assert res.returncode == 0 and res.stdout == "rootfs\n", res
        assert _mountinfo() == before
    finally:
        runtime("delete", "--force", cid)
    assert _mountinfo() == before
    assert_nothing_left(runtime, cid, bundle)


@pytest.mark.parametrize(("extra", "path"), [
    ({"mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}]}, "mounts"),
    ({"linux": {"namespaces": NO_MNTNS, "maskedPaths": ["/proc/kcore"]}},
     "linux.maskedPaths"),
    ({"linux": {"namespaces": NO_MNTNS, "readonlyPaths": ["/proc/sys"]}},
     "linux.readonlyPaths"),
    ({"root": {"path": "rootfs", "readonly": True}}, "root.readonly"),
    ({"linux": {"namespaces": NO_MNTNS, "rootfsPropagation": "private"}},
     "linux.rootfsPropagation"),
    ({"linux": {"namespaces": NO_MNTNS, "devices": [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]}}, "linux.devices"),
    ({"linux": {"namespaces": [*NO_MNTNS, {"type": "network"}],
                "sysctl": {"net.ipv4.ip_forward": "1"}}}, "linux.sysctl"),
])
def test_what_needs_a_mount_is_refused(runtime: Runtime, bundle: Bundle, extra: dict,
                                       path: str) -> None:
    """Without a mount namespace these would be made in the caller's namespace (and stay
    after delete): refused with the JSON path and the reason, exit 1, nothing left, no
    mount made; `validate` says the same."""
    bundle.write(_config(["true"], **extra))
    before = _mountinfo()
    cid = _cid("nomntbad")
    for cmd in ("create", "run"):
        res = runtime(cmd, "--bundle", str(bundle.path), cid)
        assert res.returncode == 1, res
        assert f"{path}: there is no mount namespace" in res.stderr, res.stderr
        assert "mount namespace" in res.stderr and "Traceback" not in res.stderr
        assert_nothing_left(runtime, cid, bundle)
    res = runtime("validate", "--bundle", str(bundle.path))
    assert res.returncode == 1 and path in res.stderr
    assert _mountinfo() == before


def test_a_requested_mount_namespace_still_gets_its_mounts(runtime: Runtime,
                                                           bundle: Bundle) -> None:
    """The other side of the safety rule: with a mount namespace in the config, mounts
    are made (in the container's namespace, never the caller's) and pivot_root is used."""
    cfg = base_config(args=["sh", "-c", "grep -c ' /proc ' /proc/self/mountinfo"])
    bundle.write(cfg)
    before = _mountinfo()
    cid = _cid("withmnt")
    res = runtime("run", "--bundle", str(bundle.path), cid)
    assert res.returncode == 0 and res.stdout.strip() == "1", res
    assert _mountinfo() == before
    assert_nothing_left(runtime, cid, bundle)


def test_state_of_a_container_without_mount_namespace(runtime: Runtime, bundle: Bundle) -> None:
    bundle.write(_config(["sleep", "60"]))
    cid = _cid("nomnts")
    assert runtime("create", "--bundle", str(bundle.path), cid).returncode == 0
    try:
        doc = json.loads(runtime("state", cid).stdout)
        assert doc["status"] == "created"
    finally:
        runtime("delete", "--force", cid)
    assert_nothing_left(runtime, cid, bundle)
