"""Attacks on the mount setup, mounted for real against pyoci (issue 11, items 3, 4, 6).

- Mount-destination race (CVE-2021-30465, GHSA-c3xm-pvg7-gh7r): a sibling container
  swaps a directory and a symlink to a host path (renameat2 RENAME_EXCHANGE) inside a
  volume shared with the container being created, hoping the runtime checks the path
  while it is a directory and mounts onto it once it is the symlink.
- Masked paths bound from a fake /dev/null (CVE-2025-31133, GHSA-9493-h29p-rfm2): the
  image's /dev/null is a symlink to a file the container must not write (a harmless host
  temp file stands in for /proc/sys/kernel/core_pattern).
- /proc or /sys of the image a symlink (runc: "must be mounted on ordinary directory").

Each test observes the host side: where the mounts of the container's namespace landed
(read by a createRuntime hook from /proc/<init>/mountinfo before pivot_root, while every
mount of the namespace is still listed), and what the host temp file holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Bundle, Runtime, assert_nothing_left, base_config

pytestmark = pytest.mark.integration

# A process, not a thread: it must swap at full speed on another CPU while pyoci runs.
_RACER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[2])
AT_FDCWD, RENAME_EXCHANGE = -100, 2
if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
    sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))
print("racing", flush=True)
while True:
    libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)
"""

# createRuntime hook: runs in the runtime's namespaces while the init waits before
# pivot_root, so /proc/<pid>/mountinfo still lists every mount the init made.
_WATCH = """\
pid=$(sed -n 's/.*"pid": *\\([0-9][0-9]*\\).*/\\1/p')
awk -v o="$OUTSIDE" '$5 == o || index($5, o "/") == 1 {print $5}' /proc/$pid/mountinfo \
    >> "$LOG"
"""


def _watch_hook(outside: Path, log: Path) -> dict[str, Any]:
    return {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", _WATCH],
                               "env": [f"OUTSIDE={outside}", f"LOG={log}",
                                       "PATH=/usr/bin:/bin"]}]}


@pytest.fixture
def racer(tmp_path: Path) -> Any:
    procs: list[subprocess.Popen] = []

    def start(a: Path, b: Path) -> None:
        proc = subprocess.Popen([sys.executable, "-c", _RACER, str(a), str(b)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        line = proc.stdout.readline()
        if line.strip() != "racing":
            proc.wait(5)
            pytest.skip(f"renameat2(RENAME_EXCHANGE) unavailable: {proc.stderr.read()}")

    yield start
    for proc in procs:  # only the racer this test started, by its pid
        proc.kill()
        proc.wait()


# ------------------------------------------------------------- mount-destination race

def test_mount_destination_swap_race_never_mounts_outside(
        runtime: Runtime, bundle: Bundle, tmp_path: Path, racer: Any) -> None:
    """CVE-2021-30465 class: /vol is a volume shared with a "sibling" (here a host
    process) that swaps /vol/x between a directory and a symlink to a host directory.
    The tmpfs for /vol/x must land inside the rootfs every time (runc 1.0.0-rc95:
    0 escapes, "possibly malicious path detected"); pyoci resolves it to an O_PATH fd
    inside the rootfs and mounts onto that fd, so the swap cannot redirect it."""
    vol = tmp_path / "vol"
    vol.mkdir()
    outside = tmp_path / "outside"  # the "host" directory the attacker aims at
    outside.mkdir()
    (vol / "x").mkdir()
    (vol / "y").symlink_to(outside)
    log = tmp_path / "escapes.log"
    log.touch()
    cfg = base_config()
    cfg["mounts"] += [
        {"destination": "/vol", "type": "bind", "source": str(vol), "options": ["rbind"]},
        {"destination": "/vol/x", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
    ]
    cfg["hooks"] = _watch_hook(outside, log)
    bundle.write(cfg)
    racer(vol / "x", vol / "y")

    attempts, created, failures = 0, 0, []
    deadline = time.monotonic() + 90
    while attempts < 60 and time.monotonic() < deadline:
        attempts += 1
        res = runtime("create", "-b", str(bundle.path), "race")
        if res.returncode == 0:
            created += 1
        else:
            failures.append(res.stderr.strip())
        runtime("delete", "--force", "race")
        if log.read_text():
            break  # one escape is enough to fail
    escaped = log.read_text().split()
    assert escaped == [], (f"mount landed outside the rootfs in {len(escaped)} of "
                           f"{attempts} creates: {escaped[:3]}")
    assert attempts >= 20, "too few creates in the time budget to mean anything"
    # A refused create is acceptable (with a clear message), a traceback never.
    assert all("Traceback" not in f for f in failures), failures[:1]
    assert created >= attempts // 2, f"{created}/{attempts} creates worked: {failures[:3]}"
    assert list(outside.iterdir()) == []
    assert_nothing_left(runtime, "race", bundle)


# ------------------------------------------------------------------ masked paths

def _no_dev_mounts(cfg: dict[str, Any]) -> dict[str, Any]:
    cfg["mounts"] = [m for m in cfg["mounts"] if not m["destination"].startswith("/dev")]
    return cfg


def _fake_dev_null(bundle: Bundle) -> None:
    dev = bundle.rootfs / "dev"
    if (dev / "null").exists() or (dev / "null").is_symlink():
        (dev / "null").unlink()
    (dev / "null").symlink_to("/canary")


def test_masked_path_not_bound_from_fake_dev_null(runtime: Runtime, bundle: Bundle,
                                                  tmp_path: Path) -> None:
    """CVE-2025-31133 class, /dev not a fresh tmpfs: the image's /dev/null is a symlink
    to a file standing in for /proc/sys/kernel/core_pattern (a host temp file bound in
    at /canary). The masks must not become binds of it: pyoci replaces the image's fake
    /dev/null by the real device (it owns /dev here) and binds masks from a /dev/null
    verified as the character device 1:3, read-only."""
    canary = tmp_path / "core_pattern"
    canary.write_text("original\n")
    _fake_dev_null(bundle)
    (bundle.rootfs / "etc" / "secret").write_text("")
    cfg = _no_dev_mounts(base_config(args=["sh", "-c",
        "echo pwned > /etc/secret; echo pwned > /proc/timer_list; "
        "stat -c '%F %t %T' /dev/null; "
        "awk '$5 == \"/etc/secret\" || $5 == \"/proc/timer_list\" {print $5, $6}' "
        "/proc/self/mountinfo"]))
    cfg["mounts"].append({"destination": "/canary", "type": "bind", "source": str(canary),
                          "options": ["bind"]})
    cfg["linux"]["maskedPaths"] = ["/etc/secret", "/proc/timer_list"]
    bundle.write(cfg)
    res = runtime("run", "-b", str(bundle.path), "mask-fake-null")
    assert canary.read_text() == "original\n", "a masked path was a writable bind of it"
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "character special file 1 3"
    masks = dict(line.split() for line in lines[1:])
    assert set(masks) == {"/etc/secret", "/proc/timer_list"}
    for where, opts in masks.items():
        assert "ro" in opts.split(","), f"mask of {where} is not read-only: {opts}"
    assert_nothing_left(runtime, "mask-fake-null", bundle)


def test_masked_path_refuses_fake_dev_null_in_bound_dev(runtime: Runtime, bundle: Bundle,
                                                        tmp_path: Path) -> None:
    """CVE-2025-31133 class, /dev bound from the host ("dev bind"): the runtime does not
    own that /dev, so a /dev/null there that is not the null device is refused with a
    clear error (as runc >= 1.2.8 does), never used to mask; nothing is left behind."""
    canary = tmp_path / "core_pattern"
    canary.write_text("original\n")
    devdir = tmp_path / "devdir"
    devdir.mkdir()
    (devdir / "null").symlink_to("/canary")
    cfg = _no_dev_mounts(base_config(args=["sh", "-c", "echo pwned > /etc/secret"]))
    cfg["mounts"] += [
        {"destination": "/dev", "type": "bind", "source": str(devdir), "options": ["rbind"]},
        {"destination": "/canary", "type": "bind", "source": str(canary), "options": ["bind"]},
    ]
    (bundle.rootfs / "etc" / "secret").write_text("")
    cfg["linux"]["maskedPaths"] = ["/etc/secret"]
    bundle.write(cfg)
    res = runtime("run", "-b", str(bundle.path), "mask-bound-dev")
    assert canary.read_text() == "original\n"
    assert res.returncode == 1, res.stdout + res.stderr
    assert "mask /etc/secret" in res.stderr and "/dev/null" in res.stderr, res.stderr
    assert "not the null device" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert_nothing_left(runtime, "mask-bound-dev", bundle)


def test_masks_are_read_only(runtime: Runtime, bundle: Bundle) -> None:
    """runc mounts file masks as read-only binds of /dev/null and directory masks as
    read-only tmpfs: a masked file or directory cannot be written through the mask."""
    (bundle.rootfs / "etc" / "secret").write_text("")
    (bundle.rootfs / "secretdir").mkdir()
    cfg = base_config(args=["sh", "-c",
        "touch /secretdir/new 2>/dev/null && echo dir-wrote || echo dir-refused; "
        "awk '$5 == \"/etc/secret\" || $5 == \"/secretdir\" {print $5, $6}' "
        "/proc/self/mountinfo"])
    cfg["linux"]["maskedPaths"] = ["/etc/secret", "/secretdir"]
    bundle.write(cfg)
    res = runtime("run", "-b", str(bundle.path), "mask-ro")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "dir-refused"
    masks = dict(line.split() for line in lines[1:])
    assert set(masks) == {"/etc/secret", "/secretdir"}
    assert all("ro" in o.split(",") for o in masks.values()), masks
    assert_nothing_left(runtime, "mask-ro", bundle)


# ------------------------------------------------------------ /proc, /sys redirected

@pytest.mark.parametrize("where", ["proc", "sys"])
def test_symlinked_proc_or_sys_is_refused(runtime: Runtime, bundle: Bundle,
                                          where: str) -> None:
    """Issue 11 item 6: an image whose /proc (or /sys) is a symlink would get procfs
    (sysfs) elsewhere, and masked/readonly paths under it silently skipped. Refused
    with runc's wording, nothing left behind, nothing mounted at the symlink's target."""
    target = bundle.rootfs / f"fake{where}"
    target.mkdir()
    (bundle.rootfs / where).rmdir()
    (bundle.rootfs / where).symlink_to(f"/fake{where}")
    cfg = base_config()
    cfg["linux"]["maskedPaths"] = ["/proc/kcore", "/sys/firmware"]
    cfg["linux"]["readonlyPaths"] = ["/proc/sys"]
    bundle.write(cfg)
    res = runtime("create", "-b", str(bundle.path), f"sym-{where}")
    assert res.returncode == 1, res.stdout
    fstype = {"proc": "proc", "sys": "sysfs"}[where]
    assert f'filesystem "{fstype}" must be mounted on ordinary directory' in res.stderr, \
        res.stderr
    assert f"/{where}" in res.stderr and "Traceback" not in res.stderr
    assert list(target.iterdir()) == []
    assert_nothing_left(runtime, f"sym-{where}", bundle)


def test_proc_must_be_a_directory_not_a_file(runtime: Runtime, bundle: Bundle) -> None:
    """A regular file at /proc is no better than a symlink: refused the same way."""
    (bundle.rootfs / "proc").rmdir()
    (bundle.rootfs / "proc").write_text("")
    bundle.write(base_config())
    res = runtime("create", "-b", str(bundle.path), "file-proc")
    assert res.returncode == 1
    assert 'filesystem "proc" must be mounted on ordinary directory' in res.stderr, res.stderr
    assert_nothing_left(runtime, "file-proc", bundle)


def test_masked_and_readonly_paths_of_real_proc_apply(runtime: Runtime,
                                                      bundle: Bundle) -> None:
    """With /proc a real procfs (the only kind now accepted), a masked /proc file and a
    read-only /proc/sys are in force, not skipped."""
    cfg = base_config(args=["sh", "-c",
        "wc -c < /proc/timer_list; echo x > /proc/sys/kernel/hostname 2>/dev/null "
        "&& echo wrote || echo refused; stat -f -c %T /proc"])
    cfg["linux"]["maskedPaths"] = ["/proc/timer_list"]
    cfg["linux"]["readonlyPaths"] = ["/proc/sys"]
    bundle.write(cfg)
    res = runtime("run", "-b", str(bundle.path), "real-proc")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["0", "refused", "proc"], res.stdout
    assert_nothing_left(runtime, "real-proc", bundle)


def test_static_escapes_stay_inside(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """Issue 11 "what stays": static symlinks (absolute, relative, chained) and '..' in
    mount destinations resolve inside the rootfs; nothing is created or mounted outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    root = bundle.rootfs
    (root / "abs").symlink_to(outside)
    (root / "rel").symlink_to("../" * 30 + str(outside).lstrip("/"))
    (root / "chain").symlink_to("/rel")
    (root / "d").mkdir()
    (root / "d" / "up").symlink_to("../../../../..")
    cfg = base_config(args=["sh", "-c", "cat /proc/self/mountinfo"])
    for i, dest in enumerate(["/abs/m1", "/rel/m2", "/chain/m3", "/../../../m4",
                              "/d/up/m5", "/d/../../m6/sub"]):
        cfg["mounts"].append({"destination": dest, "type": "tmpfs", "source": f"t{i}"})
    bundle.write(cfg)
    res = runtime("run", "-b", str(bundle.path), "static")
    assert res.returncode == 0, res.stderr
    assert list(outside.iterdir()) == []
    inside = str(outside).lstrip("/")
    for name in ("m1", "m2", "m3"):
        assert (root / inside / name).is_dir(), name
    for name in ("m4", "m5", "m6/sub"):
        assert (root / name).is_dir(), name
    points = {line.split()[4] for line in res.stdout.splitlines()}
    assert {f"/{inside}/m1", f"/{inside}/m2", f"/{inside}/m3", "/m4", "/m5",
            "/m6/sub"} <= points
    assert_nothing_left(runtime, "static", bundle)


def test_dev_null_replaced_when_runtime_owns_dev(runtime: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Default Devices": the runtime MUST supply /dev/null; a symlink or
    regular file the image has there is replaced by the device, not kept."""
    _fake_dev_null(bundle)
    (bundle.rootfs / "dev" / "zero").write_text("not a device")
    cfg = _no_dev_mounts(base_config(args=["sh", "-c",
                                           "stat -c '%F %t %T' /dev/null /dev/zero"]))
    bundle.write(cfg)
    res = runtime("run", "-b", str(bundle.path), "devnull")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["character special file 1 3",
                                       "character special file 1 5"]
    assert_nothing_left(runtime, "devnull", bundle)


def test_racer_helper_swaps(tmp_path: Path, racer: Any) -> None:
    """The race test's attacker really swaps: both names flip between dir and symlink."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").symlink_to(tmp_path / "elsewhere")
    racer(tmp_path / "a", tmp_path / "b")
    seen = set()
    for _ in range(20000):
        seen.add(os.path.islink(tmp_path / "a"))
        if len(seen) == 2:
            break
    assert seen == {True, False}


@pytest.mark.parametrize("readonly", [False, True])
def test_tmpcopyup_copies_the_image_dir(runtime: Runtime, bundle: Bundle,
                                        readonly: bool) -> None:
    """runc's tmpcopyup: the tmpfs starts with a copy of the image's directory (files,
    subdirectories, symlinks, modes, owners), made fd to fd in the init, which may import
    nothing by then (the copy used shutil before)."""
    src = bundle.rootfs / "data"
    (src / "sub").mkdir(parents=True)
    (src / "f").write_text("hello\n")
    os.chmod(src / "f", 0o604)
    os.chown(src / "f", 1000, 1001)
    (src / "sub" / "g").write_text("x" * 100000)
    (src / "link").symlink_to("sub/g")
    os.chmod(src / "sub", 0o710)
    os.chmod(src, 0o751)
    options = ["tmpcopyup", "mode=755"] + (["ro"] if readonly else [])
    cfg = base_config(args=["sh", "-c",
        "cat /data/f; wc -c < /data/link; stat -c '%n %a %u %g %F' /data /data/f /data/sub "
        "/data/link; stat -f -c %T /data; touch /data/new 2>/dev/null && echo rw || echo ro"])
    cfg["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                          "options": options})
    bundle.write(cfg)
    res = runtime("run", "-b", str(bundle.path), "copyup")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "hello", "100000",
        "/data 751 0 0 directory", "/data/f 604 1000 1001 regular file",
        "/data/sub 710 0 0 directory", "/data/link 777 0 0 symbolic link",
        "tmpfs", "ro" if readonly else "rw"]
    assert not (src / "new").exists()
    assert_nothing_left(runtime, "copyup", bundle)


def test_masks_without_proc_mount_are_refused(runtime: Runtime, bundle: Bundle) -> None:
    """Without a procfs at /proc after pivot_root no fd can be named through it (and the
    image's /proc/self/fd/N could be symlinks anywhere): an existing masked path is then
    refused clearly, never masked by name; a masked path that does not exist is still
    skipped (a runc default like /proc/kcore in an image with an empty /proc)."""
    (bundle.rootfs / "etc" / "secret").write_text("top secret\n")
    cfg = base_config()
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/proc"]
    cfg["linux"]["maskedPaths"] = ["/proc/kcore", "/etc/secret"]
    bundle.write(cfg)
    res = runtime("create", "-b", str(bundle.path), "mask-noproc")
    assert res.returncode == 1, res.stdout
    assert "mask /etc/secret" in res.stderr and "no procfs at /proc" in res.stderr, res.stderr
    assert (bundle.rootfs / "etc" / "secret").read_text() == "top secret\n"
    assert_nothing_left(runtime, "mask-noproc", bundle)
