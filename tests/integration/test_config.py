"""What the user's process sees inside a real container, field by field of config.json
(runtime-spec config.md and config-linux.md): each test runs busybox commands in a
container and checks their output, then that the run left nothing behind."""

from __future__ import annotations

import copy
import fcntl
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    REFERENCE_CONFIGS,
    Bundle,
    Runtime,
    assert_nothing_left,
    base_config,
)

pytestmark = pytest.mark.integration

NS_PROC = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt",
           "cgroup": "cgroup", "user": "user", "time": "time"}


# ---------------------------------------------------------------------------- helpers

def sh(script: str, **process: Any) -> dict[str, Any]:
    """A base config whose process is `sh -c script`."""
    return base_config(args=["sh", "-c", script], **process)


def run_ok(runtime: Runtime, bundle: Bundle, cfg: dict[str, Any], cid: str = "cfg",
           *run_args: str, **kw: Any) -> str:
    """Run the config to completion; it must exit 0 and leave nothing behind."""
    bundle.write(cfg)
    res = runtime("run", *run_args, "-b", str(bundle.path), cid, **kw)
    assert res.returncode == 0, f"exit {res.returncode}\nstdout:\n{res.stdout}\n" \
                                f"stderr:\n{res.stderr}"
    assert_nothing_left(runtime, cid, bundle)
    return res.stdout


def add_namespace(cfg: dict[str, Any], nstype: str, **extra: Any) -> dict[str, Any]:
    nss = cfg["linux"]["namespaces"]
    nss[:] = [ns for ns in nss if ns["type"] != nstype]
    nss.append({"type": nstype, **extra})
    return cfg


def replace_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Write a rootfs file without touching the template: the rootfs is hard-linked to
    it, so the old link is removed first."""
    if path.exists() or path.is_symlink():
        path.unlink()
    path.write_text(text)
    os.chmod(path, mode)


def mountinfo(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        pre, _, post = line.partition(" - ")
        f = pre.split()
        fstype, source, superopts = (post.split() + ["", "", ""])[:3]
        out.append({"root": f[3], "mountpoint": f[4], "options": f[5].split(","),
                    "optional": f[6:], "fstype": fstype, "source": source,
                    "superopts": superopts.split(",")})
    return out


def mount_at(text: str, mountpoint: str) -> dict[str, Any]:
    """The topmost mount at ``mountpoint`` in a mountinfo text."""
    found = [m for m in mountinfo(text) if m["mountpoint"] == mountpoint]
    assert found, f"nothing mounted at {mountpoint}:\n{text}"
    return found[-1]


@pytest.fixture
def holder() -> Iterator[subprocess.Popen]:
    """A process sitting in fresh uts, ipc and network namespaces, to be joined by path."""
    proc = subprocess.Popen(["unshare", "--uts", "--ipc", "--net", "sleep", "300"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if all(os.readlink(f"/proc/{proc.pid}/ns/{ns}") != os.readlink(
                        f"/proc/self/ns/{ns}") for ns in ("uts", "ipc", "net")):
                    break
            except OSError:
                pass
            time.sleep(0.02)
        else:
            raise AssertionError("the namespace holder never unshared")
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


# ---------------------------------------------------------------------------- isolation

def test_own_hostname(runtime: Runtime, bundle: Bundle) -> None:
    """config.md "Hostname": the process sees the configured hostname in its new UTS
    namespace; the host's is unchanged."""
    host = os.uname().nodename
    cfg = base_config(args=["hostname"])
    cfg["hostname"] = "isolated-box"
    assert run_ok(runtime, bundle, cfg) == "isolated-box\n"
    assert os.uname().nodename == host


def test_process_is_pid_1(runtime: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Namespaces" (pid): the container process is PID 1 of its new
    pid namespace, and sees only its own processes."""
    out = run_ok(runtime, bundle, sh("echo $$; ls /proc | grep -c '^[0-9]'"))
    pid, nprocs = out.split()
    assert pid == "1"
    # sh (1) and the `ls` of the pipeline, perhaps grep: never the host's processes.
    assert int(nprocs) <= 3


def test_own_mount_table(runtime: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Namespaces" (mount) and config.md "Root": the process has its
    own mount table whose / is the bundle's rootfs, and the host's mounts are gone."""
    out = run_ok(runtime, bundle, base_config(args=["cat", "/proc/self/mountinfo"]))
    host = Path("/proc/self/mountinfo").read_text()
    assert out != host
    inside = mountinfo(out)
    root = mount_at(out, "/")
    assert root["root"].endswith("/bundle/rootfs"), root
    points = {m["mountpoint"] for m in inside}
    assert {"/proc", "/dev", "/dev/pts", "/dev/shm", "/sys"} <= points
    assert not any(p.startswith(str(bundle.path)) for p in points), points
    host_only = {m["mountpoint"] for m in mountinfo(host)} - points
    assert host_only, "the host's mount table leaked in"


@pytest.mark.parametrize("nstype", list(NS_PROC))
def test_new_namespace_differs_from_host(runtime: Runtime, bundle: Bundle,
                                         nstype: str) -> None:
    """config-linux.md "Namespaces": a namespace without a path is new, so the
    process's /proc/self/ns/<type> is not the host's."""
    name = NS_PROC[nstype]
    cfg = add_namespace(base_config(args=["readlink", f"/proc/self/ns/{name}"]), nstype)
    if nstype == "user":
        # An identity map of the first ids: the rootfs stays reachable.
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    out = run_ok(runtime, bundle, cfg).strip()
    host = os.readlink(f"/proc/self/ns/{name}")
    assert out.startswith(f"{name}:[")
    assert out != host


def test_join_namespaces_by_path(runtime: Runtime, bundle: Bundle,
                                 holder: subprocess.Popen) -> None:
    """config-linux.md "Namespaces": a namespace with a path is joined, so the process
    is in the very namespace the path names (same inode), for uts, ipc and network."""
    cfg = base_config(args=["sh", "-c", "for n in uts ipc net; do readlink /proc/self/ns/$n;"
                                        " done"])
    cfg.pop("hostname", None)
    for nstype, name in (("uts", "uts"), ("ipc", "ipc"), ("network", "net")):
        add_namespace(cfg, nstype, path=f"/proc/{holder.pid}/ns/{name}")
    out = run_ok(runtime, bundle, cfg).split()
    want = [os.readlink(f"/proc/{holder.pid}/ns/{n}") for n in ("uts", "ipc", "net")]
    assert out == want
    assert all(w != os.readlink(f"/proc/self/ns/{n}")
               for w, n in zip(want, ("uts", "ipc", "net"), strict=True))


# ---------------------------------------------------------------------------- user ns

def _userns_config(script: str) -> dict[str, Any]:
    cfg = add_namespace(sh(script), "user")
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    return cfg


def test_user_namespace_mappings(runtime: Runtime, open_bundle: Bundle) -> None:
    """config-linux.md "User namespace mappings": uidMappings/gidMappings are the maps
    the process sees, and it runs as the mapped root (uid 0 inside)."""
    out = run_ok(runtime, open_bundle, _userns_config(
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; "
        "echo x > /dev/null && stat -c '%t %T' /dev/null"))
    lines = [line.split() for line in out.splitlines()]
    assert lines == [["0", "100000", "65536"], ["0", "100000", "65536"], ["0"], ["0"],
                     ["1", "3"]]


def test_user_namespace_file_ownership(runtime: Runtime, open_bundle: Bundle) -> None:
    """config-linux.md "User namespace mappings": a file the container's root creates in
    a bind-mounted host directory belongs to the mapped host ids (100000)."""
    shared = open_bundle.path.parent / "shared"
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)
    # The rootfs belongs to host root, which the container's root is not: the mount point
    # must exist already (runc could not create it either).
    (open_bundle.rootfs / "shared").mkdir()
    cfg = _userns_config("touch /shared/made-inside && stat -c '%u %g' /shared/made-inside")
    cfg["mounts"].append({"destination": "/shared", "type": "bind", "source": str(shared),
                          "options": ["rbind"]})
    out = run_ok(runtime, open_bundle, cfg)
    assert out == "0 0\n"
    st = os.stat(shared / "made-inside")
    assert (st.st_uid, st.st_gid) == (100000, 100000)


# ---------------------------------------------------------------------------- time ns

def test_time_namespace_offsets(runtime: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Offset for Time Namespace": the boottime offset shows in the
    container's /proc/uptime, and both offsets in /proc/self/timens_offsets."""
    boot, mono = 1_000_000, 2_000_000
    cfg = add_namespace(sh("cat /proc/uptime; cat /proc/self/timens_offsets"), "time")
    cfg["linux"]["timeOffsets"] = {"boottime": {"secs": boot, "nanosecs": 0},
                                   "monotonic": {"secs": mono, "nanosecs": 0}}
    before = float(Path("/proc/uptime").read_text().split()[0])
    out = run_ok(runtime, bundle, cfg).splitlines()
    after = float(Path("/proc/uptime").read_text().split()[0])
    inside = float(out[0].split()[0])
    assert before + boot - 1 <= inside <= after + boot + 1
    offsets = {line.split()[0]: line.split()[1:] for line in out[1:]}
    assert offsets["boottime"] == [str(boot), "0"]
    assert offsets["monotonic"] == [str(mono), "0"]


# ---------------------------------------------------------------------------- process

def test_process_args(runtime: Runtime, bundle: Bundle) -> None:
    """config.md "Process" (args): the argv is passed exactly, one element per arg."""
    cfg = base_config(args=["sh", "-c", 'for a in "$@"; do echo "[$a]"; done', "zero",
                            "a b", "", "c*"])
    assert run_ok(runtime, bundle, cfg) == "[a b]\n[]\n[c*]\n"


def test_process_env(runtime: Runtime, bundle: Bundle) -> None:
    """config.md "Process" (env): exactly the configured variables, values kept as is."""
    cfg = base_config(args=["env"], env=["PATH=/bin", "FOO=bar baz", "EMPTY=",
                                         "EQ=a=b", "HOME=/custom"])
    out = sorted(run_ok(runtime, bundle, cfg).splitlines())
    assert out == ["EMPTY=", "EQ=a=b", "FOO=bar baz", "HOME=/custom", "PATH=/bin"]


def test_process_path_lookup(runtime: Runtime, bundle: Bundle) -> None:
    """config.md "Process" (args[0] is looked up in the process env's PATH, like
    execvp), in the container's filesystem."""
    opt = bundle.rootfs / "opt" / "tools"
    opt.mkdir(parents=True)
    replace_file(opt / "hello", "#!/bin/sh\necho hello-from-path\n", 0o755)
    cfg = base_config(args=["hello"], env=["PATH=/nonexistent:/opt/tools:/bin"])
    assert run_ok(runtime, bundle, cfg) == "hello-from-path\n"


@pytest.mark.parametrize(("cwd", "uid"), [("/tmp", 0), ("/made/by/runtime", 0),
                                         ("/made/for/user", 1000)])
def test_process_cwd(runtime: Runtime, bundle: Bundle, cwd: str, uid: int) -> None:
    """config.md "Process" (cwd): the process starts there; a missing cwd is created
    (as runc does), usable by a non-root user too."""
    cfg = base_config(args=["pwd"], cwd=cwd, user={"uid": uid, "gid": uid})
    assert run_ok(runtime, bundle, cfg) == cwd + "\n"


def test_process_user(runtime: Runtime, bundle: Bundle) -> None:
    """config.md "POSIX process" user: uid, gid and additionalGids are the process's
    credentials (and nothing else: no leftover root group)."""
    cfg = sh("id -u; id -g; grep -E '^(Uid|Gid|Groups):' /proc/self/status",
             user={"uid": 1000, "gid": 1001, "additionalGids": [10, 20, 1001]})
    lines = run_ok(runtime, bundle, cfg).splitlines()
    assert lines[:2] == ["1000", "1001"]
    status = {line.split(":")[0]: line.split(":")[1].split() for line in lines[2:]}
    assert status["Uid"] == ["1000"] * 4
    assert status["Gid"] == ["1001"] * 4
    assert sorted(status["Groups"], key=int) == ["10", "20", "1001"]


def test_process_user_without_additional_gids(runtime: Runtime, bundle: Bundle) -> None:
    """config.md "POSIX process" user: without additionalGids the process has no
    supplementary groups (the runtime's own root group is dropped)."""
    cfg = sh("grep '^Groups:' /proc/self/status", user={"uid": 1000, "gid": 1000})
    assert run_ok(runtime, bundle, cfg).split() == ["Groups:"]


@pytest.mark.parametrize(("umask", "expected"), [(0o027, "0027"), (0o077, "0077"),
                                                 (None, "0022")])
def test_process_umask(runtime: Runtime, bundle: Bundle, umask: int | None,
                       expected: str) -> None:
    """config.md "POSIX process" user.umask: the process's umask (0022 when unset, as
    runc)."""
    user: dict[str, Any] = {"uid": 0, "gid": 0}
    if umask is not None:
        user["umask"] = umask
    cfg = sh("umask; touch /tmp/f; stat -c %a /tmp/f", user=user)
    out = run_ok(runtime, bundle, cfg).split()
    assert out == [expected, oct(0o666 & ~int(expected, 8))[2:]]


def test_process_rlimits(runtime: Runtime, bundle: Bundle) -> None:
    """config.md "POSIX process" rlimits: soft and hard limits as configured."""
    cfg = sh("ulimit -n; ulimit -Hn; ulimit -s; ulimit -Hs",
             rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000},
                      {"type": "RLIMIT_STACK", "soft": 4096 * 1024, "hard": 8192 * 1024}])
    assert run_ok(runtime, bundle, cfg).split() == ["1000", "2000", "4096", "8192"]


@pytest.mark.parametrize(("nnp", "expected"), [(True, "1"), (False, "0")])
def test_process_no_new_privileges(runtime: Runtime, bundle: Bundle, nnp: bool,
                                   expected: str) -> None:
    """config.md "Linux process" noNewPrivileges: the no_new_privs bit of the process."""
    cfg = base_config(args=["grep", "NoNewPrivs", "/proc/self/status"],
                      noNewPrivileges=nnp)
    assert run_ok(runtime, bundle, cfg).split() == ["NoNewPrivs:", expected]


def _have_cap(num: int) -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> num & 1)
    return False


@pytest.mark.parametrize("adj", [500, -100])
def test_process_oom_score_adj(runtime: Runtime, bundle: Bundle, adj: int) -> None:
    """config.md "Linux process" oomScoreAdj: the process's /proc/self/oom_score_adj."""
    host = Path("/proc/self/oom_score_adj").read_text()
    if adj < int(host) and not _have_cap(24):
        pytest.skip("lowering oom_score_adj needs CAP_SYS_RESOURCE, which this host lacks")
    cfg = base_config(args=["cat", "/proc/self/oom_score_adj"], oomScoreAdj=adj)
    assert run_ok(runtime, bundle, cfg) == f"{adj}\n"
    assert Path("/proc/self/oom_score_adj").read_text() == host


@pytest.mark.parametrize(("uid", "home"), [(0, "/root"), (1234, "/home/alice"),
                                           (4321, "/")])
def test_process_home_from_passwd(runtime: Runtime, bundle: Bundle, uid: int,
                                  home: str) -> None:
    """config.md "POSIX process" env (HOME): without HOME in env, HOME is the user's
    home in the container's /etc/passwd, else '/' (runc's behaviour)."""
    passwd = bundle.rootfs / "etc" / "passwd"
    replace_file(passwd, passwd.read_text() + "alice:x:1234:1234::/home/alice:/bin/sh\n")
    cfg = base_config(args=["sh", "-c", 'echo "$HOME"'], user={"uid": uid, "gid": uid})
    assert run_ok(runtime, bundle, cfg) == home + "\n"


def test_hostname_and_domainname(runtime: Runtime, bundle: Bundle) -> None:
    """config.md "Hostname" and "Domainname": both are set in the container's UTS
    namespace; the host's stay."""
    host = (os.uname().nodename, Path("/proc/sys/kernel/domainname").read_text())
    cfg = sh("hostname; cat /proc/sys/kernel/domainname")
    cfg["hostname"] = "web1"
    cfg["domainname"] = "example.org"
    assert run_ok(runtime, bundle, cfg) == "web1\nexample.org\n"
    assert (os.uname().nodename, Path("/proc/sys/kernel/domainname").read_text()) == host


# ---------------------------------------------------------------------------- mounts

def _bind(source: Path | str, destination: str, *options: str) -> dict[str, Any]:
    return {"destination": destination, "type": "bind", "source": str(source),
            "options": ["rbind", *options]}


def test_bind_mount_host_dir(runtime: Runtime, bundle: Bundle, host_dir: Path) -> None:
    """config.md "Mounts" (bind): a host directory is visible at the destination, both
    ways."""
    (host_dir / "from-host").write_text("hello\n")
    cfg = sh("cat /shared/from-host; echo back > /shared/from-container")
    cfg["mounts"].append(_bind(host_dir, "/shared"))
    assert run_ok(runtime, bundle, cfg) == "hello\n"
    assert (host_dir / "from-container").read_text() == "back\n"


def test_bind_mount_relative_source(runtime: Runtime, bundle: Bundle) -> None:
    """config.md "Mounts" (source): a relative bind source is relative to the bundle."""
    (bundle.path / "data").mkdir()
    (bundle.path / "data" / "f").write_text("from bundle\n")
    cfg = base_config(args=["cat", "/mnt/data/f"])
    cfg["mounts"].append({"destination": "/mnt/data", "type": "bind", "source": "data",
                          "options": ["rbind"]})
    assert run_ok(runtime, bundle, cfg) == "from bundle\n"


@pytest.mark.parametrize(("mtype", "options"), [("bind", ["rbind", "ro"]), ("bind", ["ro"]),
                                                ("none", ["bind", "ro"])])
def test_readonly_bind_mount(runtime: Runtime, bundle: Bundle, host_dir: Path, mtype: str,
                             options: list[str]) -> None:
    """config.md "Mounts" options (ro): the bind is read-only inside; the host dir
    stays writable on the host."""
    (host_dir / "f").write_text("x")
    cfg = sh("cat /shared/f; if touch /shared/new 2>/dev/null; then echo wrote; "
             "else echo refused; fi; grep ' /shared ' /proc/self/mountinfo")
    cfg["mounts"].append({"destination": "/shared", "type": mtype, "source": str(host_dir),
                          "options": options})
    out = run_ok(runtime, bundle, cfg)
    assert out.startswith("xrefused\n")
    assert "ro" in mount_at(out.split("\n", 1)[1], "/shared")["options"]
    assert not (host_dir / "new").exists()
    (host_dir / "still-writable").write_text("")


def test_tmpfs_size_and_mode(runtime: Runtime, bundle: Bundle) -> None:
    """config.md "Mounts" (type and data options): a tmpfs with size= and mode= has
    that size and that mode."""
    cfg = sh("stat -c %a /data; df -k /data | tail -n 1; grep ' /data ' /proc/self/mountinfo")
    cfg["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                          "options": ["size=2m", "mode=1770"]})
    mode, df, info = run_ok(runtime, bundle, cfg).splitlines()
    assert mode == "1770"
    assert df.split()[1] == "2048"
    assert mount_at(info, "/data")["fstype"] == "tmpfs"


@pytest.mark.parametrize("order", ["tmpfs-over-bind", "bind-over-tmpfs"])
def test_mounts_applied_in_order(runtime: Runtime, bundle: Bundle, host_dir: Path,
                                 order: str) -> None:
    """config.md "Mounts": mounts are applied in the listed order, so a later mount on
    the same destination hides an earlier one."""
    (host_dir / "from-host").write_text("")
    bind = _bind(host_dir, "/shared")
    tmpfs = {"destination": "/shared", "type": "tmpfs", "source": "tmpfs"}
    cfg = base_config(args=["ls", "-A", "/shared"])
    cfg["mounts"] += [bind, tmpfs] if order == "tmpfs-over-bind" else [tmpfs, bind]
    out = run_ok(runtime, bundle, cfg)
    assert out == ("" if order == "tmpfs-over-bind" else "from-host\n")


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_mount_destination_symlink_stays_in_rootfs(runtime: Runtime, bundle: Bundle,
                                                   tmp_path: Path, kind: str) -> None:
    """config.md "Mounts" (destination is relative to the container's root): a symlink
    in the rootfs pointing outside is resolved inside the rootfs, never on the host."""
    outside = tmp_path / "outside"
    outside.mkdir()
    target = str(outside) if kind == "absolute" else "../" * 20 + str(outside).lstrip("/")
    (bundle.rootfs / "evil").symlink_to(target)
    cfg = sh("echo inside > /evil/mnt/file; cat /evil/mnt/file; stat -f -c %T /evil/mnt")
    cfg["mounts"].append({"destination": "/evil/mnt", "type": "tmpfs", "source": "tmpfs"})
    assert run_ok(runtime, bundle, cfg) == "inside\ntmpfs\n"
    assert list(outside.iterdir()) == [], "the mount escaped the rootfs"
    # It went to the same path under the rootfs instead.
    assert (bundle.rootfs / str(outside).lstrip("/") / "mnt").is_dir()


def test_bind_mount_file_onto_file(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """config.md "Mounts" (bind of a file): a host file is bound onto a file, existing
    or created by the runtime."""
    src = tmp_path / "greeting"
    src.write_text("hi there\n")
    cfg = sh("cat /etc/hostname /etc/greeting; stat -c %F /etc/hostname /etc/greeting")
    cfg["mounts"] += [_bind(src, "/etc/hostname"), _bind(src, "/etc/greeting")]
    out = run_ok(runtime, bundle, cfg)
    assert out == "hi there\nhi there\nregular file\nregular file\n"
    assert (bundle.rootfs / "etc" / "hostname").read_text() == ""


def test_mount_flags_in_mountinfo(runtime: Runtime, bundle: Bundle, host_dir: Path) -> None:
    """config.md "Mounts" options (nosuid, noexec, nodev): the flags are on the mounts
    the process sees, and noexec refuses to run a binary."""
    cfg = sh("cat /proc/self/mountinfo; cp /bin/busybox /data/bb; "
             "if /data/bb true 2>/dev/null; then echo ran; else echo refused; fi")
    cfg["mounts"] += [
        {"destination": "/data", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "noexec", "nodev"]},
        _bind(host_dir, "/shared", "nosuid", "noexec"),
    ]
    out = run_ok(runtime, bundle, cfg)
    info, verdict = out.rsplit("\n", 2)[0], out.splitlines()[-1]
    assert verdict == "refused"
    data = mount_at(info, "/data")["options"]
    assert {"nosuid", "noexec", "nodev"} <= set(data)
    shared = mount_at(info, "/shared")["options"]
    assert {"nosuid", "noexec"} <= set(shared)
    assert "ro" not in shared


def _host_cgroup_entries() -> list[str]:
    """What a cgroup mount must show: cgroup.controllers on a unified host, else one
    directory per v1 controller hierarchy (the v2 "unified" one of a hybrid host is
    optional: runc 1.1 leaves it out)."""
    host = mountinfo(Path("/proc/self/mountinfo").read_text())
    if any(m["mountpoint"] == "/sys/fs/cgroup" and m["fstype"] == "cgroup2" for m in host):
        return ["cgroup.controllers"]
    names = [os.path.basename(m["mountpoint"]) for m in host
             if m["fstype"] == "cgroup" and m["mountpoint"].startswith("/sys/fs/cgroup/")]
    assert names, "the host has no cgroup hierarchy"
    return names


def test_cgroup_mount_lists_controllers(runtime: Runtime, bundle: Bundle) -> None:
    """config.md "Mounts" (type cgroup): /sys/fs/cgroup shows the host's cgroup
    hierarchies (each controller directory the host has), read-only when asked."""
    cfg = sh("ls -1 /sys/fs/cgroup; echo --; grep ' /sys/fs/cgroup' /proc/self/mountinfo")
    cfg["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup",
                          "source": "cgroup",
                          "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
    listing, _, info = run_ok(runtime, bundle, cfg).partition("--\n")
    assert set(_host_cgroup_entries()) <= set(listing.split())
    fstypes = {m["fstype"] for m in mountinfo(info)}
    assert fstypes & {"cgroup", "cgroup2"}
    for m in mountinfo(info):
        if m["fstype"] in ("cgroup", "cgroup2"):
            assert "ro" in m["options"], m


def test_cgroup_mount_in_user_namespace(runtime: Runtime, bundle: Bundle) -> None:
    """config.md "Mounts" (type cgroup) with config-linux.md "User namespace mappings":
    the hierarchies are still listed (runc's rootless spec has this mount)."""
    cfg = add_namespace(sh("ls -1 /sys/fs/cgroup"), "user")
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    cfg["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup",
                          "source": "cgroup",
                          "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
    listing = run_ok(runtime, bundle, cfg).split()
    assert set(_host_cgroup_entries()) <= set(listing)


def test_readonly_root(runtime: Runtime, bundle: Bundle) -> None:
    """config.md "Root" (readonly): writing to the root filesystem fails; a tmpfs
    mounted in it is still writable."""
    cfg = sh("if touch /newfile 2>/dev/null; then echo wrote; else echo refused; fi; "
             "touch /dev/shm/ok && echo shm-ok; awk '$5 == \"/\" {print $6}' /proc/self/mountinfo")
    cfg["root"]["readonly"] = True
    out = run_ok(runtime, bundle, cfg).splitlines()
    assert out[:2] == ["refused", "shm-ok"]
    assert "ro" in out[-1].split(",")
    assert not (bundle.rootfs / "newfile").exists()


@pytest.mark.parametrize("propagation", ["private", "slave"])
def test_rootfs_propagation(runtime: Runtime, bundle: Bundle, propagation: str) -> None:
    """config-linux.md "Rootfs Mount Propagation": the container runs with it, and its
    root mount never propagates back (not shared)."""
    cfg = sh("awk '$5 == \"/\"' /proc/self/mountinfo")
    cfg["linux"]["rootfsPropagation"] = propagation
    root = mount_at(run_ok(runtime, bundle, cfg), "/")
    assert not any(o.startswith("shared:") for o in root["optional"]), root
    if propagation == "private":
        assert not any(o.startswith("master:") for o in root["optional"]), root


@pytest.mark.parametrize(("propagation", "tag"), [("shared", "shared:"),
                                                  ("unbindable", "unbindable")])
def test_rootfs_propagation_on_root(runtime: Runtime, bundle: Bundle, propagation: str,
                                    tag: str) -> None:
    """config-linux.md "Rootfs Mount Propagation": "sets the rootfs's mount
    propagation", so the container's / carries it (runc applies it after pivot_root)."""
    cfg = sh("awk '$5 == \"/\"' /proc/self/mountinfo")
    cfg["linux"]["rootfsPropagation"] = propagation
    root = mount_at(run_ok(runtime, bundle, cfg), "/")
    assert any(o.startswith(tag) for o in root["optional"]), root


# ---------------------------------------------------------------------------- devices

def test_linux_devices(runtime: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Devices": a char device with its major/minor, fileMode, uid and
    gid; a fifo; a device in a directory the runtime creates."""
    cfg = sh("stat -c '%F %t %T %a %u %g' /dev/mynull /dev/sub/dir/zero; "
             "stat -c '%F %a' /dev/myfifo; head -c 3 /dev/sub/dir/zero | wc -c")
    cfg["linux"]["devices"] = [
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640,
         "uid": 1000, "gid": 1001},
        {"path": "/dev/sub/dir/zero", "type": "c", "major": 1, "minor": 5,
         "fileMode": 0o600, "uid": 0, "gid": 0},
        {"path": "/dev/myfifo", "type": "p", "fileMode": 0o620},
    ]
    # runc's device cgroup denies what resources.devices does not allow.
    cfg["linux"]["resources"] = {"devices": [{"allow": True, "type": "c", "major": 1,
                                              "minor": 5, "access": "rwm"}]}
    out = run_ok(runtime, bundle, cfg).splitlines()
    assert out == ["character special file 1 3 640 1000 1001",
                   "character special file 1 5 600 0 0",
                   "fifo 620", "3"]


def test_default_devices_and_symlinks(runtime: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Default Devices" and "Default /dev symlinks"."""
    names = ["null", "zero", "full", "random", "urandom", "tty"]
    links = ["fd", "stdin", "stdout", "stderr", "ptmx"]
    script = (f"for d in {' '.join(names)}; do stat -c '%n %F %t %T' /dev/$d; done; "
              f"for l in {' '.join(links)}; do echo /dev/$l=$(readlink /dev/$l); done; "
              "head -c 4 /dev/zero | wc -c")
    out = run_ok(runtime, bundle, sh(script)).splitlines()
    numbers = {"null": "1 3", "zero": "1 5", "full": "1 7", "random": "1 8",
               "urandom": "1 9", "tty": "5 0"}
    assert out[:6] == [f"/dev/{n} character special file {numbers[n]}" for n in names]
    assert out[6:11] == ["/dev/fd=/proc/self/fd", "/dev/stdin=/proc/self/fd/0",
                         "/dev/stdout=/proc/self/fd/1", "/dev/stderr=/proc/self/fd/2",
                         "/dev/ptmx=pts/ptmx"]
    assert out[11].strip() == "4"


# ---------------------------------------------------------------------------- paths

def test_masked_paths(runtime: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Masked Paths": a masked file reads empty, a masked directory is
    empty, a missing masked path is ignored."""
    replace_file(bundle.rootfs / "etc" / "secret", "top secret\n")
    (bundle.rootfs / "secretdir").mkdir()
    (bundle.rootfs / "secretdir" / "inner").write_text("hidden\n")
    cfg = sh("cat /etc/secret | wc -c; ls -A /secretdir | wc -l; "
             "cat /proc/timer_list | wc -c; cat /proc/keys | wc -c")
    cfg["linux"]["maskedPaths"] = ["/etc/secret", "/secretdir", "/proc/timer_list",
                                   "/proc/keys", "/does/not/exist"]
    out = [int(x) for x in run_ok(runtime, bundle, cfg).split()]
    assert out == [0, 0, 0, 0]
    assert (bundle.rootfs / "etc" / "secret").read_text() == "top secret\n"


def test_readonly_paths(runtime: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Readonly Paths": writing under a read-only path fails; its
    content is still readable and other paths stay writable."""
    (bundle.rootfs / "rodir").mkdir()
    (bundle.rootfs / "rodir" / "f").write_text("content\n")
    cfg = sh("cat /rodir/f; if touch /rodir/new 2>/dev/null; then echo wrote; "
             "else echo refused; fi; "
             "if echo x > /proc/sys/kernel/hostname 2>/dev/null; then echo sys-wrote; "
             "else echo sys-refused; fi; touch /tmp/ok && echo tmp-ok")
    cfg["linux"]["readonlyPaths"] = ["/rodir", "/proc/sys", "/does/not/exist"]
    out = run_ok(runtime, bundle, cfg).splitlines()
    assert out == ["content", "refused", "sys-refused", "tmp-ok"]
    assert not (bundle.rootfs / "rodir" / "new").exists()


# ---------------------------------------------------------------------------- sysctl, net

def test_sysctl_net_in_new_netns(runtime: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Sysctl": a net.* key is set in the container's network
    namespace; the host's value is untouched."""
    host = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    want = "0" if host.strip() == "1" else "1"
    cfg = base_config(args=["cat", "/proc/sys/net/ipv4/ip_forward"])
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": want}
    assert run_ok(runtime, bundle, cfg) == want + "\n"
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host


def test_sysctl_with_readonly_proc_sys(runtime: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Sysctl" with "Readonly Paths" /proc/sys (as podman and
    containerd configs have): the sysctl is set, and /proc/sys is read-only afterwards."""
    cfg = sh("cat /proc/sys/net/ipv4/ip_forward; "
             "if echo 0 > /proc/sys/net/ipv4/ip_forward 2>/dev/null; then echo wrote; "
             "else echo refused; fi")
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    cfg["linux"]["readonlyPaths"] = ["/proc/sys"]
    assert run_ok(runtime, bundle, cfg) == "1\nrefused\n"


def test_sysctl_ipc_in_new_ipcns(runtime: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Sysctl": kernel.shmmax is set in the container's ipc
    namespace; the host's value is untouched."""
    host = Path("/proc/sys/kernel/shmmax").read_text()
    cfg = base_config(args=["cat", "/proc/sys/kernel/shmmax"])
    cfg["linux"]["sysctl"] = {"kernel.shmmax": "12345678"}
    assert run_ok(runtime, bundle, cfg) == "12345678\n"
    assert Path("/proc/sys/kernel/shmmax").read_text() == host


def test_loopback_up_in_new_netns(runtime: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Network" namespace: the runtime brings the loopback up (as runc
    does), and it is the only interface."""
    cfg = sh("ls /sys/class/net; echo --; cat /sys/class/net/lo/operstate; "
             "ip addr show lo")
    ifaces, _, out = run_ok(runtime, bundle, cfg).partition("--\n")
    assert ifaces.split() == ["lo"]
    state, link = out.splitlines()[:2]
    assert state in ("unknown", "up")
    flags = link.split("<", 1)[1].split(">", 1)[0].split(",")
    assert "UP" in flags, link
    # The kernel gives an up loopback its address.
    assert "inet 127.0.0.1/8" in out


# ---------------------------------------------------------------------------- run options

def test_no_pivot(runtime: Runtime, bundle: Bundle) -> None:
    """runc's --no-pivot (runtime.md "create": the root is config.md "Root"): the root
    is still the rootfs, with MS_MOVE+chroot instead of pivot_root."""
    (bundle.rootfs / "marker-no-pivot").write_text("")
    cfg = sh("ls /; echo --; awk '$5 == \"/\" {print $4}' /proc/self/mountinfo")
    listing, _, root = run_ok(runtime, bundle, cfg, "np", "--no-pivot").partition("--\n")
    assert sorted(listing.split()) == sorted(os.listdir(bundle.rootfs))
    assert root.strip().endswith("/bundle/rootfs")


def _fds_3_and_4() -> tuple[list[int], Callable[[], None]]:
    """Two pipes holding "three" and "four", and a preexec_fn that puts them at fds 3
    and 4 of the runtime (the caller closes the returned fds)."""
    fds = []
    for text in (b"three\n", b"four\n"):
        r, w = os.pipe()
        os.write(w, text)
        os.close(w)
        fds.append(fcntl.fcntl(r, fcntl.F_DUPFD_CLOEXEC, 100))
        os.close(r)

    def place() -> None:
        os.dup2(fds[0], 3)
        os.dup2(fds[1], 4)

    return fds, place


def test_preserve_fds(runtime: Runtime, bundle: Bundle) -> None:
    """runc's --preserve-fds (runtime.md "create"; config.md "Process"): fd 3 reaches
    the process; fd 4, not preserved, does not."""
    fds, place = _fds_3_and_4()

    cfg = sh('read x <&3; echo "3:$x"; if read y <&4 2>/dev/null; then echo "4:$y"; '
             'else echo 4:closed; fi')
    try:
        out = run_ok(runtime, bundle, cfg, "pf", "--preserve-fds", "1",
                     preexec_fn=place, close_fds=False).splitlines()
    finally:
        for fd in fds:
            os.close(fd)
    assert out == ["3:three", "4:closed"]


def test_listen_fds_come_first(runtime: Runtime, bundle: Bundle) -> None:
    """systemd socket activation as runc honours it: LISTEN_FDS=1 puts fd 3 through ahead
    of the --preserve-fds ones (fd 4 here), and the process sees LISTEN_FDS=1 and
    LISTEN_PID=1."""
    fds, place = _fds_3_and_4()

    cfg = sh('read x <&3; read y <&4; echo "$x $y $LISTEN_FDS $LISTEN_PID"')
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    # As systemd does: LISTEN_PID names the process it execs (the shell's pid, kept by exec).
    runtime.cmd = ["sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh", *runtime.cmd]
    try:
        out = run_ok(runtime, bundle, cfg, "lfd", "--preserve-fds", "1", preexec_fn=place,
                     close_fds=False, env=env | {"LISTEN_FDS": "1"})
    finally:
        for fd in fds:
            os.close(fd)
    assert out.split() == ["three", "four", "1", "1"]


def test_listen_fds_without_listen_pid_are_not_passed(runtime: Runtime, bundle: Bundle) -> None:
    """sd_listen_fds(3) and runc: the fds are ours only when LISTEN_PID is our pid. Without
    it, a caller's stray fd 3 (here a host directory) must not reach the container."""
    fds, place = _fds_3_and_4()
    cfg = sh('{ if read x <&3; then echo "got-$x"; else echo none; fi; } 2>/dev/null; '
             'echo "[$LISTEN_FDS]"')
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    try:
        out = run_ok(runtime, bundle, cfg, "nolfd", preexec_fn=place, close_fds=False,
                     env=env | {"LISTEN_FDS": "1"})
    finally:
        for fd in fds:
            os.close(fd)
    assert out.split() == ["none", "[]"]


# ---------------------------------------------------------------------------- references

def _reference_configs() -> list[Path]:
    if not REFERENCE_CONFIGS.is_dir():
        return []
    return sorted(p for p in REFERENCE_CONFIGS.glob("*.json")
                  if not p.name.endswith("-process.json"))


def _is_bind(m: dict[str, Any]) -> bool:
    return m.get("type") == "bind" or any(o in ("bind", "rbind")
                                          for o in m.get("options") or [])


def adapt_reference(doc: dict[str, Any], bundle: Bundle, scratch: Path) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["root"]["path"] = str(bundle.rootfs)
    doc["process"]["terminal"] = False
    doc["process"]["args"] = ["/bin/true"]
    for ns in doc.get("linux", {}).get("namespaces") or []:
        ns.pop("path", None)
    for i, m in enumerate(doc.get("mounts") or []):
        if _is_bind(m) and not os.path.exists(m["source"]):
            src = scratch / f"src{i}"
            if m["destination"].rstrip("/") == "/dev/shm":
                src.mkdir()
            else:
                src.write_text("")
            m["source"] = str(src)
    return doc


def _reference_params() -> list[Any]:
    refs = _reference_configs()
    if not refs:
        return [pytest.param(None, id="absent")]
    return [pytest.param(p, id=p.name) for p in refs]


@pytest.mark.parametrize("ref", _reference_params())
def test_reference_config_runs(runtime: Runtime, bundle: Bundle, tmp_path: Path,
                               ref: Path | None) -> None:
    """config.md / config-linux.md as real engines write them (runc spec, containerd,
    podman): the config runs to exit 0 and leaves nothing behind. Sections pyoci does
    not apply yet (seccomp, resources, cgroupsPath) must not stop it."""
    if ref is None:
        pytest.skip(f"no reference configs in {REFERENCE_CONFIGS}")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    cfg = adapt_reference(json.loads(ref.read_text()), bundle, scratch)
    run_ok(runtime, bundle, cfg, "ref")
