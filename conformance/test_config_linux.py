"""config-linux.md: Namespaces, User namespace mappings, Offset for Time
Namespace, Devices, Default Devices, Sysctl, Rootfs Mount Propagation,
Masked Paths, Readonly Paths; runtime-linux.md "Dev symbolic links"."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .harness import assert_gone, host_ns, make_bundle, short_tmpdir, wait_until

# spec namespace type -> name under /proc/<pid>/ns and unshare(1) flag
NS = {
    "pid": ("pid", "--pid"),
    "network": ("net", "--net"),
    "ipc": ("ipc", "--ipc"),
    "uts": ("uts", "--uts"),
    "mount": ("mnt", "--mount"),
    "cgroup": ("cgroup", "--cgroup"),
    "user": ("user", "--user"),
    "time": ("time", "--time"),
}


def run_ok(runtime, bundle, script: str) -> str:
    bundle.sh(script)
    res = runtime.run(bundle)
    assert res.rc == 0, str(res)
    return res.out


def ns_links(out: str) -> dict[str, str]:
    """Parse ``name=link`` lines."""
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def read_ns_script(*names: str) -> str:
    return "; ".join(f'echo "{n}=$(readlink /proc/self/ns/{n})"' for n in names)


# ---------------------------------------------------------------- namespaces


@pytest.mark.parametrize("ntype", ["pid", "network", "ipc", "uts", "mount", "cgroup"])
def test_new_namespace(runtime, bundle, ntype):
    """config-linux.md "Namespaces": "If path is not specified, the runtime
    MUST create a new container namespace of type type." The container's
    /proc/self/ns link differs from the runtime's (host's)."""
    if bundle.namespace(ntype) is None:
        bundle.linux["namespaces"].append({"type": ntype})
    name = NS[ntype][0]
    got = ns_links(run_ok(runtime, bundle, read_ns_script(name)))
    assert got[name] != host_ns(name), f"{ntype}: container shares the host namespace"


@pytest.mark.parametrize("ntype", ["network", "ipc", "pid", "cgroup"])
def test_namespace_inherited_when_absent(runtime, bundle, ntype):
    """config-linux.md "Namespaces": "If a namespace type is not specified in
    the namespaces array, the container MUST inherit the runtime namespace
    of that type.\""""
    bundle.linux["namespaces"] = [ns for ns in bundle.linux["namespaces"] if ns["type"] != ntype]
    name = NS[ntype][0]
    got = ns_links(run_ok(runtime, bundle, read_ns_script(name)))
    assert got[name] == host_ns(name)


# The runtime runs in a private mount namespace of the test's own: a runtime that mounts
# anything in "its" namespace (runc 1.1.5 does) never reaches the host's.
PRIVATE_WRAPPER = ("unshare", "--mount", "--propagation", "private", "sh", "-c",
                   'readlink /proc/self/ns/mnt; exec "$@"', "wrapper")


@pytest.mark.runc_differs("runc 1.1.5 fails without a mount namespace "
                          "(\"error closing exec fds: open /proc/self/fd\")")
def test_mount_namespace_inherited_when_absent(runtime, bundle):
    """config-linux.md "Namespaces": "If a namespace type is not specified in the
    namespaces array, the container MUST inherit the runtime namespace of that type."
    Without a mount namespace and without mounts, the container's process is in the
    runtime's mount namespace."""
    bundle.linux["namespaces"] = [ns for ns in bundle.linux["namespaces"]
                                  if ns["type"] != "mount"]
    bundle.config["mounts"] = []
    for key in ("maskedPaths", "readonlyPaths", "devices", "sysctl", "rootfsPropagation"):
        bundle.linux.pop(key, None)
    bundle.config.setdefault("root", {})["readonly"] = False
    bundle.sh("sleep 30")
    bundle.write()
    runtime.ids.append(bundle.cid)
    argv = [*PRIVATE_WRAPPER, *runtime.argv, "--root", str(runtime.root), "--log",
            str(runtime.log_path), "create", "--bundle", str(bundle.path), bundle.cid]
    out = bundle.path / "create.out"
    with open(out, "w") as f:  # a file: the created init keeps its stdout open
        proc = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, timeout=30,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    assert proc.returncode == 0, f"{argv}\n{out.read_text()}"
    runtime_ns = out.read_text().splitlines()[0]
    pid = runtime.state(bundle.cid)["pid"]
    assert os.readlink(f"/proc/{pid}/ns/mnt") == runtime_ns
    assert runtime_ns != host_ns("mnt")


@pytest.mark.parametrize("ntype", ["uts", "ipc", "network", "cgroup", "pid"])
def test_join_namespace_by_path(runtime, bundle, ns_holder, ntype):
    """config-linux.md "Namespaces": "path (string, OPTIONAL) - namespace
    file. This value MUST be an absolute path in the runtime mount namespace.
    The runtime MUST place the container process in the namespace associated
    with that path." The target is held by ``unshare ... sleep``."""
    name, flag = NS[ntype]
    holder = ns_holder(flag)
    target = f"/proc/{holder}/ns/{name}"
    expected = os.readlink(target)
    entry = bundle.namespace(ntype)
    if entry is None:
        entry = {"type": ntype}
        bundle.linux["namespaces"].append(entry)
    entry["path"] = target
    got = ns_links(run_ok(runtime, bundle, read_ns_script(name)))
    assert got[name] == expected


def test_join_namespace_of_wrong_type_fails(runtime, bundle, ns_holder):
    """config-linux.md "Namespaces": "The runtime MUST generate an error if
    path is not associated with a namespace of type type." (a uts entry
    pointing at an ipc namespace)."""
    holder = ns_holder("--ipc")
    bundle.namespace("uts")["path"] = f"/proc/{holder}/ns/ipc"
    res = runtime.create(bundle, check=False)
    assert not res.ok, f"create joined an ipc namespace as uts\n{res}"
    assert_gone(runtime, bundle.cid)


def test_duplicate_namespace_type_fails(runtime, bundle):
    """config-linux.md "Namespaces": "If a namespaces field contains
    duplicated namespaces with same type, the runtime MUST generate an
    error.\""""
    bundle.linux["namespaces"].append({"type": "ipc"})
    res = runtime.create(bundle, check=False)
    assert not res.ok, f"duplicated namespace accepted\n{res}"
    assert_gone(runtime, bundle.cid)


def test_pid_namespace_process_is_pid_1(runtime, bundle):
    """config-linux.md "Namespaces": "pid processes inside the container will
    only be able to see other processes inside the same container or inside
    the same pid namespace." The container process is PID 1 and /proc shows
    only the container's processes."""
    out = run_ok(runtime, bundle, "echo $$; ls -d /proc/[0-9]*")
    lines = out.split()
    assert lines[0] == "1"
    pids = sorted(int(p.rsplit("/", 1)[1]) for p in lines[1:])
    assert pids[0] == 1 and max(pids) < 10, pids


@pytest.fixture
def open_bundle(rootfs_src):
    """A bundle under a world-traversable directory (user-namespaced
    processes cannot traverse pytest's 0700 temp directories)."""
    base = short_tmpdir("oci-bundle-")
    os.chmod(base, 0o755)
    bundle = make_bundle(base, rootfs_src)
    os.chmod(bundle.path, 0o755)
    yield bundle
    shutil.rmtree(base, ignore_errors=True)


def test_user_namespace_mappings(runtime, open_bundle):
    """config-linux.md "User namespace mappings": "uidMappings (array of
    objects, OPTIONAL) describes the user namespace uid mappings from the
    host to the container." -- containerID 0 maps to hostID 100000: root
    inside, uid 100000 as seen by the host."""
    bundle = open_bundle
    bundle.linux["namespaces"].append({"type": "user"})
    bundle.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.out.mkdir()
    os.chmod(bundle.out, 0o777)
    (bundle.rootfs / "out").mkdir()  # mapped root may not create it in a host-owned dir
    bundle.add_mount("/out", str(bundle.out), "bind", ["rbind", "rw"])
    bundle.sh("id -u > /out/id; cat /proc/self/uid_map > /out/map; "
              "readlink /proc/self/ns/user > /out/ns; while [ ! -e /out/go ]; do sleep 0.05; done")
    runtime.create(bundle)
    runtime.start(bundle.cid)
    assert wait_until(lambda: (bundle.out / "ns").exists() and (bundle.out / "ns").stat().st_size)
    pid = runtime.state(bundle.cid)["pid"]
    host_uid = Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0]
    (bundle.out / "go").touch()
    assert (bundle.out / "id").read_text().strip() == "0"
    assert (bundle.out / "map").read_text().split() == ["0", "100000", "65536"]
    assert (bundle.out / "ns").read_text().strip() != host_ns("user")
    assert host_uid == "100000"


@pytest.mark.runc_differs("runc 1.1 does not support time namespaces or timeOffsets")
def test_time_namespace_offsets(runtime, bundle):
    """config-linux.md "Offset for Time Namespace": "timeOffsets (object,
    OPTIONAL) sets the offset for Time Namespace." and "Namespaces": "time
    the container will be able to have its own clocks." A boottime offset of
    one day shows in /proc/uptime. (runc 1.1 rejects the "time" namespace
    type; the spec supports it.)"""
    if not os.path.exists("/proc/self/ns/time"):
        pytest.skip("kernel without time namespaces")
    day = 86400
    bundle.linux["namespaces"].append({"type": "time"})
    bundle.linux["timeOffsets"] = {"boottime": {"secs": day, "nanosecs": 0},
                                   "monotonic": {"secs": day, "nanosecs": 0}}
    before = float(Path("/proc/uptime").read_text().split()[0])
    out = run_ok(runtime, bundle, "cat /proc/uptime; readlink /proc/self/ns/time")
    after = float(Path("/proc/uptime").read_text().split()[0])
    lines = out.splitlines()
    inside = float(lines[0].split()[0])
    assert before + day - 1 <= inside <= after + day + 1, (before, inside, after)
    assert lines[1] != host_ns("time")


# ---------------------------------------------------------------- devices


def stat_line(path: str) -> str:
    return f"stat -c '{path} %F %t %T %a %u %g' {path}"


def test_devices_created(runtime, bundle):
    """config-linux.md "Devices": "devices (array of objects, OPTIONAL) lists
    devices that MUST be available in the container." with type, path,
    major/minor, fileMode, uid and gid ("id of device owner in the container
    namespace"); "The path MAY be anywhere in the container filesystem,
    notably outside of /dev.\""""
    bundle.linux["devices"] = [
        {"path": "/dev/conf-char", "type": "c", "major": 1, "minor": 7,
         "fileMode": 0o640, "uid": 1234, "gid": 5678},
        {"path": "/dev/conf-block", "type": "b", "major": 7, "minor": 0,
         "fileMode": 0o600, "uid": 0, "gid": 0},
        {"path": "/dev/conf-fifo", "type": "p", "fileMode": 0o620, "uid": 0, "gid": 0},
        {"path": "/etc/conf-null", "type": "c", "major": 1, "minor": 3,
         "fileMode": 0o666, "uid": 0, "gid": 0},
    ]
    paths = ["/dev/conf-char", "/dev/conf-block", "/dev/conf-fifo", "/etc/conf-null"]
    out = run_ok(runtime, bundle, "; ".join(stat_line(p) for p in paths))
    got = {ln.split()[0]: ln.split(None, 1)[1] for ln in out.splitlines()}
    assert got["/dev/conf-char"] == "character special file 1 7 640 1234 5678"
    assert got["/dev/conf-block"] == "block special file 7 0 600 0 0"
    assert got["/dev/conf-fifo"].startswith("fifo ") and got["/dev/conf-fifo"].endswith(
        " 620 0 0"), got
    assert got["/etc/conf-null"] == "character special file 1 3 666 0 0"


@pytest.mark.runc_differs(
    "runc 1.1 keeps an existing regular file at a device path instead of failing"
)
def test_device_path_conflict_fails(runtime, bundle):
    """config-linux.md "Devices": "If a file already exists at path that does
    not match the requested device, the runtime MUST generate an error."
    (runc 1.1 silently keeps the file; the spec supports the error.)"""
    (bundle.rootfs / "etc" / "not-a-device").write_text("plain file\n")
    bundle.linux["devices"] = [
        {"path": "/etc/not-a-device", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666}
    ]
    res = runtime.create(bundle, check=False)
    assert not res.ok, f"device over a regular file accepted\n{res}"
    assert_gone(runtime, bundle.cid)


DEFAULT_DEVICES = {
    "/dev/null": "1 3",
    "/dev/zero": "1 5",
    "/dev/full": "1 7",
    "/dev/random": "1 8",
    "/dev/urandom": "1 9",
    "/dev/tty": "5 0",
}


def test_default_devices(runtime, bundle):
    """config-linux.md "Default Devices": "In addition to any devices
    configured with this setting, the runtime MUST also supply: /dev/null,
    /dev/zero, /dev/full, /dev/random, /dev/urandom, /dev/tty ... /dev/ptmx. A
    bind-mount or symlink of the container's /dev/pts/ptmx." They are
    character devices with the standard numbers, and usable."""
    script = "; ".join(f"stat -L -c '{p} %F %t %T' {p}" for p in DEFAULT_DEVICES)
    script += (
        "; echo x > /dev/null && echo null-ok"
        "; [ $(head -c 4 /dev/zero | wc -c) = 4 ] && echo zero-ok"
        "; [ $(head -c 4 /dev/urandom | wc -c) = 4 ] && echo urandom-ok"
        "; echo x 2>/dev/null > /dev/full || echo full-ok"
        "; echo ptmx=$(readlink /dev/ptmx) $(stat -L -c '%F %t %T' /dev/ptmx)"
    )
    out = run_ok(runtime, bundle, script)
    lines = out.splitlines()
    for path, numbers in DEFAULT_DEVICES.items():
        assert f"{path} character special file {numbers}" in lines, out
    for word in ("null-ok", "zero-ok", "urandom-ok", "full-ok"):
        assert word in lines, out
    ptmx = next(ln for ln in lines if ln.startswith("ptmx="))
    link, _, kind = ptmx[len("ptmx="):].partition(" ")
    assert kind == "character special file 5 2", ptmx
    assert link in ("", "pts/ptmx", "/dev/pts/ptmx"), ptmx


def test_dev_symlinks(runtime, bundle):
    """runtime-linux.md "Dev symbolic links": "While creating the container
    (step 2 in the lifecycle), runtimes MUST create the following symlinks if
    the source file exists after processing mounts: /proc/self/fd -> /dev/fd,
    /proc/self/fd/0 -> /dev/stdin, /proc/self/fd/1 -> /dev/stdout,
    /proc/self/fd/2 -> /dev/stderr.\""""
    names = ["fd", "stdin", "stdout", "stderr"]
    out = run_ok(runtime, bundle, "; ".join(f"echo {n}=$(readlink /dev/{n})" for n in names))
    got = ns_links(out)
    assert got == {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
                   "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}, out


# ---------------------------------------------------------------- paths


def test_masked_paths(runtime, bundle):
    """config-linux.md "Masked Paths": "maskedPaths (array of strings,
    OPTIONAL) will mask over the provided paths inside the container so that
    they cannot be read." A masked file reads empty, a masked directory
    lists empty (also /proc/timer_list)."""
    etc = bundle.rootfs / "etc"
    (etc / "secret").write_text("top secret\n")
    (etc / "secretdir").mkdir()
    (etc / "secretdir" / "inner").write_text("hidden\n")
    bundle.linux["maskedPaths"] = ["/etc/secret", "/etc/secretdir", "/proc/timer_list"]
    out = run_ok(
        runtime, bundle,
        "echo \"file=$(cat /etc/secret 2>/dev/null)\"; echo \"dir=$(ls -A /etc/secretdir)\"; "
        "echo \"proc=$(head -c 100 /proc/timer_list 2>/dev/null)\"",
    )
    assert ns_links(out) == {"file": "", "dir": "", "proc": ""}, out


def test_readonly_paths(runtime, bundle):
    """config-linux.md "Readonly Paths": "readonlyPaths (array of strings,
    OPTIONAL) will set the provided paths as readonly inside the container."
    Writes fail, reads still work, the rest of the rootfs stays writable."""
    data = bundle.rootfs / "data"
    data.mkdir()
    (data / "f").write_text("keep\n")
    bundle.linux["readonlyPaths"] = ["/data"]
    out = run_ok(
        runtime, bundle,
        "cat /data/f; if echo x > /data/f 2>/dev/null; then echo wrote; else echo ro; fi; "
        "if touch /data/new 2>/dev/null; then echo wrote; else echo ro; fi; "
        "if touch /elsewhere 2>/dev/null; then echo rw; else echo ro; fi",
    )
    assert out.split() == ["keep", "ro", "ro", "rw"]
    assert (data / "f").read_text() == "keep\n"


# ---------------------------------------------------------------- sysctl


@pytest.mark.parametrize(
    "key,value,ns",
    [("net.ipv4.ip_forward", "1", "network"), ("kernel.shmmax", "12345678", "ipc")],
)
def test_sysctl(runtime, bundle, key, value, ns):
    """config-linux.md "Sysctl": "sysctl (object, OPTIONAL) allows kernel
    parameters to be modified at runtime for the container." Applied inside
    the container's own (new) namespace; the host value is untouched."""
    assert bundle.namespace(ns) is not None
    proc = Path("/proc/sys") / key.replace(".", "/")
    host_before = proc.read_text()
    bundle.linux["sysctl"] = {key: value}
    try:
        out = run_ok(runtime, bundle, f"cat {proc}")
    finally:
        host_after = proc.read_text()
        if host_after != host_before:  # a broken runtime: put the host back
            proc.write_text(host_before)
    assert host_after == host_before, f"the runtime changed the host's {key}"
    assert out.strip() == value


# ---------------------------------------------------------------- propagation

# Run the runtime in a private mount namespace of our own whose mounts are
# shared, so that the rootfs has a peer group to be slave of.  The host's mount
# propagation is never changed.
SHARED_WRAPPER = ("unshare", "--mount", "--propagation", "private",
                  "sh", "-c", 'mount --make-rshared / && exec "$@"', "wrapper")


def root_mount_tags(runtime, bundle, propagation: str) -> list[str]:
    bundle.linux["rootfsPropagation"] = propagation
    bundle.sh("awk '$5 == \"/\"' /proc/self/mountinfo")
    bundle.write()
    runtime.ids.append(bundle.cid)
    argv = [*SHARED_WRAPPER, *runtime.argv, "--root", str(runtime.root), "--log",
            str(runtime.log_path), "run", "--bundle", str(bundle.path), bundle.cid]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, start_new_session=True)
    assert proc.returncode == 0, f"{argv}\n{proc.stdout}{proc.stderr}"
    lines = proc.stdout.splitlines()
    assert lines, proc.stdout
    fields = lines[-1].split()
    return fields[6:fields.index("-")]


@pytest.mark.runc_differs("runc 1.1 leaves the rootfs mount private for 'shared'")
def test_rootfs_propagation_shared(runtime, bundle):
    """config-linux.md "Rootfs Mount Propagation": "shared: the rootfs mount
    belongs to a new peer group." (runc 1.1 leaves / without a peer group;
    the spec supports a shared root.)"""
    tags = root_mount_tags(runtime, bundle, "shared")
    assert any(t.startswith("shared:") for t in tags), tags


def test_rootfs_propagation_slave(runtime, bundle):
    """config-linux.md "Rootfs Mount Propagation": "slave: the rootfs mount
    receives propagation events from the host (e.g. if something is mounted
    on the host it will also appear in the container) but not the other way
    around." -- the container's / has a master and no peer group."""
    tags = root_mount_tags(runtime, bundle, "slave")
    assert any(t.startswith("master:") for t in tags), tags
    assert not any(t.startswith("shared:") for t in tags), tags


def test_rootfs_propagation_private(runtime, bundle):
    """config-linux.md "Rootfs Mount Propagation": "private: the rootfs mount
    doesn't receive mount propagation events from the host" -- no master, no
    peer group."""
    tags = root_mount_tags(runtime, bundle, "private")
    assert not any(t.startswith(("master:", "shared:")) for t in tags), tags


@pytest.mark.runc_differs("runc 1.1 fails create with rootfsPropagation 'unbindable'")
def test_rootfs_propagation_unbindable(runtime, bundle):
    """config-linux.md "Rootfs Mount Propagation": "unbindable: the rootfs
    mount is a private mount that cannot be bind-mounted." (runc 1.1 fails
    create with EINVAL; the spec supports the value.)"""
    tags = root_mount_tags(runtime, bundle, "unbindable")
    assert "unbindable" in tags, tags
    assert not any(t.startswith(("master:", "shared:")) for t in tags), tags
