"""config.md: Root, Mounts, Process (args, env, cwd, user, umask, rlimits,
capabilities, noNewPrivileges, oomScoreAdj), Hostname, Domainname,
Annotations, Extensibility; plus the exit status of ``run``."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from .harness import PATH_ENV, assert_gone, wait_until


def run_ok(runtime, bundle, script: str) -> str:
    """Run ``sh -c script`` in the container; it must exit 0; returns stdout."""
    bundle.sh(script)
    res = runtime.run(bundle)
    assert res.rc == 0, str(res)
    return res.out


def mount_options(mountinfo: str, target: str) -> set[str]:
    """Per-mount options of the last mount at ``target`` in mountinfo text."""
    found = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[4] == target:
            found = fields
    assert found is not None, f"{target} is not a mount point:\n{mountinfo}"
    sep = found.index("-")
    return set(found[5].split(",")) | set(found[sep + 3].split(","))


# ---------------------------------------------------------------- root


def test_root_path_relative_to_bundle(runtime, bundle):
    """config.md "Root": "On POSIX platforms, path is either an absolute path
    or a relative path to the bundle." The runtime is invoked from a
    different working directory, and the rootfs has a non-default name."""
    (bundle.path / "rootfs").rename(bundle.path / "myroot")
    (bundle.path / "myroot" / "marker").write_text("relative-ok\n")
    bundle.config["root"]["path"] = "myroot"
    assert not (runtime.workdir / "myroot").exists()
    assert run_ok(runtime, bundle, "cat /marker") == "relative-ok\n"


def test_root_path_absolute(runtime, bundle, tmp_path):
    """config.md "Root": "path is either an absolute path or a relative path
    to the bundle." (absolute, outside the bundle)."""
    elsewhere = tmp_path / "elsewhere"
    (bundle.path / "rootfs").rename(elsewhere)
    (elsewhere / "marker").write_text("absolute-ok\n")
    bundle.config["root"]["path"] = str(elsewhere)
    assert run_ok(runtime, bundle, "cat /marker") == "absolute-ok\n"


def test_root_readonly(runtime, bundle):
    """config.md "Root": "readonly (bool, OPTIONAL) If true then the root
    filesystem MUST be read-only inside the container, defaults to false.\""""
    bundle.config["root"]["readonly"] = True
    out = run_ok(runtime, bundle, "if touch /probe 2>/dev/null; then echo wrote; else echo ro; fi")
    assert out.strip() == "ro"
    assert not (bundle.rootfs / "probe").exists()


def test_root_writable_by_default(runtime, bundle):
    """config.md "Root": "readonly ... defaults to false." (readonly absent:
    a write to / succeeds and lands in the rootfs directory)."""
    del bundle.config["root"]["readonly"]
    run_ok(runtime, bundle, "echo hi > /probe")
    assert (bundle.rootfs / "probe").read_text() == "hi\n"


# ---------------------------------------------------------------- mounts


def test_mounts_in_listed_order(runtime, bundle, tmp_path):
    """config.md "Mounts": "The runtime MUST mount entries in the listed
    order." Nested mounts (tmpfs /mnt/a, tmpfs /mnt/a/b, bind /mnt/a/b/c) are
    only all visible if mounted in order; of two tmpfs at one destination the
    later one (size=2m) is on top."""
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "file").write_text("inner\n")
    bundle.add_mount("/mnt/a", "tmpfs", "tmpfs", ["size=1m"])
    bundle.add_mount("/mnt/a/b", "tmpfs", "tmpfs", ["size=1m"])
    bundle.add_mount("/mnt/a/b/c", str(host), "bind", ["bind"])
    bundle.add_mount("/mnt/top", "tmpfs", "tmpfs", ["size=1m"])
    bundle.add_mount("/mnt/top", "tmpfs", "tmpfs", ["size=2m"])
    out = run_ok(runtime, bundle, "cat /mnt/a/b/c/file; df -k /mnt/top | tail -n 1")
    lines = out.splitlines()
    assert lines[0] == "inner", out
    assert lines[1].split()[1] == "2048", out


@pytest.mark.runc_differs(
    "runc 1.1 chmods a tmpfs mounted on an existing directory back to that "
    "directory's mode, overriding the mode= option"
)
def test_tmpfs_mode_option_on_existing_directory(runtime, bundle):
    """config.md "Mounts": "options (array of strings, OPTIONAL) Mount
    options of the filesystem to be used." and "Runtimes SHOULD treat unknown
    options as filesystem-specific ones and pass those as a comma-separated
    string to the fifth (const void *data) argument of mount(2)." -- a tmpfs
    with mode=1733 over the rootfs's existing /home (0755) has mode 1733.
    (runc 1.1 resets it to 0755; the spec supports the option.)"""
    os.chmod(bundle.rootfs / "home", 0o755)
    bundle.add_mount("/home", "tmpfs", "tmpfs", ["mode=1733"])
    assert run_ok(runtime, bundle, "stat -c %a /home") == "1733\n"


def test_bind_mount_visible_and_writable(runtime, bundle, tmp_path):
    """config.md "Mounts": "source (string, OPTIONAL) A device name, but can
    also be a file or directory name for bind mounts" and "A mount is a bind
    mount if it has either bind or rbind in the options." Host content is
    visible inside; a write from inside reaches the host directory."""
    host = tmp_path / "shared"
    host.mkdir()
    (host / "in").write_text("from-host\n")
    bundle.add_mount("/data", str(host), "bind", ["rbind", "rw"])
    out = run_ok(runtime, bundle, "cat /data/in; echo from-container > /data/out")
    assert out == "from-host\n"
    assert (host / "out").read_text() == "from-container\n"


def test_bind_mount_read_only(runtime, bundle, tmp_path):
    """config.md "Linux mount options": "ro | MUST" -- a read-only bind mount
    refuses writes inside the container and the host copy is unchanged."""
    host = tmp_path / "rodata"
    host.mkdir()
    (host / "in").write_text("keep\n")
    bundle.add_mount("/data", str(host), "bind", ["bind", "ro"])
    out = run_ok(
        runtime, bundle,
        "cat /data/in; if echo x > /data/in 2>/dev/null; then echo wrote; else echo ro; fi; "
        "cat /proc/self/mountinfo",
    )
    lines = out.splitlines()
    assert lines[:2] == ["keep", "ro"], out
    assert "ro" in mount_options("\n".join(lines[2:]), "/data")
    assert (host / "in").read_text() == "keep\n"


def test_bind_mount_source_relative_to_bundle(runtime, bundle):
    """config.md "Mounts": "Path values for bind mounts are either absolute
    or relative to the bundle.\""""
    (bundle.path / "data").mkdir()
    (bundle.path / "data" / "in").write_text("bundle-relative\n")
    bundle.add_mount("/data", "data", "bind", ["bind"])
    assert run_ok(runtime, bundle, "cat /data/in") == "bundle-relative\n"


def test_bind_mount_of_a_file(runtime, bundle, tmp_path):
    """config.md "Mounts": "source ... can also be a file or directory name
    for bind mounts" (a single file)."""
    host = tmp_path / "single"
    host.write_text("one-file\n")
    bundle.add_mount("/etc/single", str(host), "bind", ["bind", "ro"])
    assert run_ok(runtime, bundle, "cat /etc/single") == "one-file\n"


def test_tmpfs_size_and_mode(runtime, bundle):
    """config.md "Mounts": "options (array of strings, OPTIONAL) Mount
    options of the filesystem to be used." and "Runtimes SHOULD treat unknown
    options as filesystem-specific ones and pass those as a comma-separated
    string to the fifth (const void *data) argument of mount(2)." (tmpfs
    size=/mode=)."""
    bundle.add_mount("/mnt/t", "tmpfs", "tmpfs", ["size=1m", "mode=1750"])
    out = run_ok(runtime, bundle, "stat -c %a /mnt/t; cat /proc/self/mountinfo")
    mode, _, mountinfo = out.partition("\n")
    assert mode == "1750"
    assert "size=1024k" in mount_options(mountinfo, "/mnt/t")


@pytest.mark.parametrize("flag", ["ro", "nosuid", "nodev", "noexec", "noatime"])
def test_mount_flag_options(runtime, bundle, flag):
    """config.md "Linux mount options": "Runtimes MUST/SHOULD/MAY implement
    the following option strings for Linux" -- ro, nosuid, nodev, noexec and
    noatime are MUST; each shows up in the mount's options."""
    bundle.add_mount("/mnt/f", "tmpfs", "tmpfs", [flag])
    out = run_ok(runtime, bundle, "cat /proc/self/mountinfo")
    assert flag in mount_options(out, "/mnt/f")


# ---------------------------------------------------------------- process


def test_process_args_use_path_lookup(runtime, bundle):
    """config.md "Process": "args (array of strings, OPTIONAL) with similar
    semantics to IEEE Std 1003.1-2008 execvp's argv ... at least one entry is
    REQUIRED (non-Windows), and that entry is used with the same semantics as
    execvp's file." -- "echo" is found through PATH."""
    bundle.config["process"]["args"] = ["echo", "one", "two words"]
    res = runtime.run(bundle)
    assert res.rc == 0, str(res)
    assert res.out == "one two words\n"


def test_process_env(runtime, bundle):
    """config.md "Process": "env (array of strings, OPTIONAL) with the same
    semantics as IEEE Std 1003.1-2008's environ." The variables are set as
    given, and the runtime's own environment does not leak in."""
    bundle.config["process"]["env"] = [PATH_ENV, "FOO=bar", "EMPTY=", "SPACES=a b"]
    bundle.config["process"]["args"] = ["env"]
    res = runtime.run(bundle)
    assert res.rc == 0, str(res)
    env = res.out.splitlines()
    for var in (PATH_ENV, "FOO=bar", "EMPTY=", "SPACES=a b"):
        assert var in env, env
    assert not any(v.startswith("CONFORMANCE_LEAK=") for v in env), env


def test_process_cwd(runtime, bundle):
    """config.md "Process": "cwd (string, REQUIRED) is the working directory
    that will be set for the executable. This value MUST be an absolute
    path.\""""
    bundle.config["process"]["cwd"] = "/var/run"
    assert run_ok(runtime, bundle, "pwd") == "/var/run\n"


def test_process_user(runtime, bundle):
    """config.md "POSIX-platform User": "uid (int, REQUIRED) specifies the
    user ID in the container namespace. gid (int, REQUIRED) specifies the
    group ID ... additionalGids (array of ints, OPTIONAL) specifies
    additional group IDs in the container namespace to be added to the
    process.\""""
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [2000, 3000]}
    out = run_ok(runtime, bundle, "id -u; id -g; id -G; grep -E '^(Uid|Gid|Groups):' "
                                  "/proc/self/status")
    lines = out.splitlines()
    assert lines[0] == "1000" and lines[1] == "1001", out
    assert set(lines[2].split()) >= {"1001", "2000", "3000"}, out
    status = {ln.split(":")[0]: ln.split(":")[1].split() for ln in lines[3:]}
    assert status["Uid"] == ["1000"] * 4, out
    assert status["Gid"] == ["1001"] * 4, out
    assert set(status["Groups"]) == {"2000", "3000"}, out


def test_process_umask(runtime, bundle):
    """config.md "POSIX-platform User": "umask (int, OPTIONAL) specifies the
    umask of the user.\""""
    bundle.config["process"]["user"]["umask"] = 0o027
    assert run_ok(runtime, bundle, "umask") == "0027\n"


@pytest.mark.runc_differs(
    "runc 1.1 always sets umask 0022 when process.user.umask is unset"
)
def test_process_umask_unset_is_inherited(runtime, bundle):
    """config.md "POSIX-platform User": "If unspecified, the umask should not
    be changed from the calling process' umask." The runtime is called with
    umask 0077. (lower-case "should"; runc 1.1 resets it to 0022.)"""
    bundle.sh("umask")
    res = runtime.run(bundle, umask=0o077)
    assert res.rc == 0, str(res)
    assert res.out == "0077\n"


def test_process_rlimits(runtime, bundle):
    """config.md "POSIX process": "soft (uint64, REQUIRED) the value of the
    limit enforced for the corresponding resource. rlim.rlim_cur MUST match
    the configured value. hard (uint64, REQUIRED) ... rlim.rlim_max MUST
    match the configured value." (RLIMIT_NOFILE 1000/2000, below this
    host's hard limit.)"""
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000}]
    assert run_ok(runtime, bundle, "ulimit -n; ulimit -Hn").split() == ["1000", "2000"]


@pytest.mark.runc_differs("runc 1.1 accepts duplicated rlimits (the last one wins)")
def test_process_rlimits_duplicate_type_fails(runtime, bundle):
    """config.md "POSIX process": "If rlimits contains duplicated entries
    with same type, the runtime MUST generate an error." (runc 1.1 accepts
    them; the spec supports the error.)"""
    bundle.config["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000},
        {"type": "RLIMIT_NOFILE", "soft": 500, "hard": 600},
    ]
    res = runtime.create(bundle, check=False)
    assert not res.ok, f"duplicated rlimits accepted\n{res}"
    assert_gone(runtime, bundle.cid)


def test_process_rlimits_unknown_type_fails(runtime, bundle):
    """config.md "POSIX process": "The runtime MUST generate an error for any
    values which cannot be mapped to a relevant kernel interface.\""""
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]
    res = runtime.create(bundle, check=False)
    assert not res.ok, f"unknown rlimit accepted\n{res}"
    assert_gone(runtime, bundle.cid)


def test_process_capabilities(runtime, bundle):
    """config.md "Linux Process": "capabilities (object, OPTIONAL) is an
    object containing arrays that specifies the sets of capabilities for the
    process." Only CAP_CHOWN (bit 0) and CAP_KILL (bit 5) are kept."""
    caps = ["CAP_CHOWN", "CAP_KILL"]
    bundle.config["process"]["capabilities"] = {
        k: caps for k in ("bounding", "effective", "permitted", "inheritable")
    }
    out = run_ok(runtime, bundle, "grep -E '^Cap(Inh|Prm|Eff|Bnd)' /proc/self/status")
    values = {ln.split(":")[0]: int(ln.split()[1], 16) for ln in out.splitlines()}
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd"):
        assert values[key] == 0x21, (key, hex(values[key]))


@pytest.mark.parametrize("value", [True, False])
def test_process_no_new_privileges(runtime, bundle, value):
    """config.md "Linux Process": "noNewPrivileges (bool, OPTIONAL) setting
    noNewPrivileges to true prevents the process from gaining additional
    privileges." (seen as NoNewPrivs in /proc/self/status)."""
    bundle.config["process"]["noNewPrivileges"] = value
    out = run_ok(runtime, bundle, "grep NoNewPrivs /proc/self/status")
    assert out.split() == ["NoNewPrivs:", "1" if value else "0"]


def test_process_oom_score_adj(runtime, bundle):
    """config.md "Linux Process": "If oomScoreAdj is set, the runtime MUST
    set oom_score_adj to the given value.\""""
    bundle.config["process"]["oomScoreAdj"] = 123
    assert run_ok(runtime, bundle, "cat /proc/self/oom_score_adj") == "123\n"


def test_process_oom_score_adj_unset(runtime, bundle):
    """config.md "Linux Process": "If oomScoreAdj is not set, the runtime
    MUST NOT change the value of oom_score_adj." (the runtime inherits ours)."""
    mine = Path("/proc/self/oom_score_adj").read_text()
    assert run_ok(runtime, bundle, "cat /proc/self/oom_score_adj") == mine


# ---------------------------------------------------------------- uts


def test_hostname(runtime, bundle):
    """config.md "Hostname": "hostname (string, OPTIONAL) specifies the
    container's hostname as seen by processes running inside the container.
    On Linux, for example, this will change the hostname in the container
    UTS namespace.\""""
    bundle.config["hostname"] = "conformance-host"
    before = os.uname().nodename
    assert run_ok(runtime, bundle, "hostname") == "conformance-host\n"
    assert os.uname().nodename == before


@pytest.mark.runc_differs("runc 1.1 ignores domainname")
def test_domainname(runtime, bundle):
    """config.md "Domainname": "domainname (string, OPTIONAL) specifies the
    container's domainname as seen by processes running inside the
    container." (runc 1.1 ignores the field; the spec supports setting it.)"""
    bundle.config["domainname"] = "conformance.test"
    before = Path("/proc/sys/kernel/domainname").read_text()
    out = run_ok(runtime, bundle, "cat /proc/sys/kernel/domainname")
    assert out == "conformance.test\n"
    assert Path("/proc/sys/kernel/domainname").read_text() == before


# ---------------------------------------------------------------- misc


def test_annotations_in_state(runtime, bundle):
    """config.md "Annotations": "annotations (object, OPTIONAL) contains
    arbitrary metadata for the container." runtime.md "State": "annotations
    (map, OPTIONAL) contains the list of annotations associated with the
    container." -- they round-trip through state ("Values MAY be an empty
    string")."""
    annotations = {"com.example.key": "value", "org.example.empty": "", "com.example.n": "2"}
    bundle.config["annotations"] = annotations
    bundle.config["process"]["args"] = ["sleep", "60"]
    runtime.create(bundle)
    assert runtime.state(bundle.cid).get("annotations") == annotations


def test_unknown_properties_are_ignored(runtime, bundle):
    """config.md "Extensibility": "Runtimes MAY log unknown properties but
    MUST otherwise ignore them. That includes not generating errors if they
    encounter an unknown property.\""""
    bundle.config["com.example.unknown"] = {"nested": [1, 2, 3]}
    bundle.config["process"]["com.example.unknownProcessField"] = True
    bundle.config["linux"]["com.example.unknownLinuxField"] = "x"
    assert run_ok(runtime, bundle, "echo fine") == "fine\n"


@pytest.mark.parametrize("status", [0, 1, 3, 42, 255])
def test_run_exit_status(runtime, bundle, status):
    """runtime.md "Lifecycle" step 10: "The container process exits." runc
    CLI (not a spec requirement): ``run`` exits with the container process's
    exit status."""
    bundle.sh(f"exit {status}")
    assert runtime.run(bundle).rc == status


def test_run_exit_status_when_killed(runtime, bundle):
    """runtime.md "Lifecycle" step 10: "This MAY happen due to erroring out,
    exiting, crashing or the runtime's kill operation being invoked." runc
    CLI (not a spec requirement): a foreground ``run`` whose process dies of
    signal N exits with 128+N (SIGKILL: 137)."""
    bundle.config["process"]["args"] = ["sleep", "60"]
    bundle.write()
    runtime.ids.append(bundle.cid)
    proc, _, err = runtime.popen("run", "--bundle", str(bundle.path), bundle.cid)
    try:
        assert wait_until(lambda: runtime.status(bundle.cid) == "running"), err.read_text()
        runtime.kill(bundle.cid, "KILL")
    finally:
        rc = runtime.finish(proc)
    assert rc == 128 + signal.SIGKILL, err.read_text()
