"""Bad input: a clear error (what, where, why), exit status 1, and nothing left behind —
no state dir, mount, process — whether the problem is found by validation or by a setup
step in the container's init."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import Bundle, Runtime, assert_nothing_left, base_config

pytestmark = pytest.mark.integration


def _create_fails(runtime: Runtime, bundle: Bundle, cid: str = "bad") -> str:
    res = runtime("create", "-b", str(bundle.path), cid)
    assert res.returncode == 1, res.stderr
    assert_nothing_left(runtime, cid, bundle)
    return res.stderr


def test_schema_errors_all_at_once(runtime: Runtime, bundle: Bundle) -> None:
    cfg = base_config(args="sh")
    cfg["process"]["user"]["uid"] = -1
    cfg["linux"]["namespaces"].append({"type": "bogus"})
    cfg["mounts"][0]["options"] = "ro"
    err = _create_fails(runtime, bundle.write(cfg))
    assert 'process.args: expected array, found "sh" (string)' in err
    assert "process.user.uid: expected a number >= 0, found -1" in err
    assert 'linux.namespaces[5].type: expected one of "pid"' in err
    assert 'mounts[0].options: expected array, found "ro"' in err


def test_validate_command_reports_the_same(runtime: Runtime, bundle: Bundle) -> None:
    cfg = base_config(args=[])
    bundle.write(cfg)
    res = runtime("validate", "-b", str(bundle.path))
    assert res.returncode == 1
    assert "process.args" in res.stderr


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda c: c["linux"]["namespaces"].append({"type": "pid"}),
     "linux.namespaces[5].type: namespace 'pid' is listed more than once"),
    (lambda c: c["linux"].update(namespaces=[{"type": "mount"}]),
     "hostname: setting the hostname needs a uts namespace"),
    (lambda c: c["linux"]["namespaces"].append({"type": "user"}),
     "linux.uidMappings: a new user namespace needs mappings"),
    (lambda c: c["linux"].update(uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}],
                                 gidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}]),
     "linux.uidMappings: mappings are given but there is no user namespace"),
    (lambda c: c["linux"].update(namespaces=[{"type": "uts"}]),
     "mounts: there is no mount namespace"),
    (lambda c: c["linux"].update(sysctl={"vm.swappiness": "10"}),
     "linux.sysctl.vm.swappiness: is not a namespaced sysctl"),
    (lambda c: c["linux"].update(timeOffsets={"boottime": {"secs": 1}}),
     "linux.timeOffsets: time offsets need a time namespace"),
    (lambda c: c["root"].update(path="missing"),
     "root.path: rootfs"),
    (lambda c: c["process"].update(rlimits=[{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]),
     "process.rlimits[0].type: unknown rlimit 'RLIMIT_BOGUS'"),
    (lambda c: c.update(hooks={"prestart": [{"path": "relative/hook"}]}),
     "hooks.prestart[0].path"),
    (lambda c: c["linux"].update(namespaces=[*c["linux"]["namespaces"],
                                             {"type": "cgroup", "path": "rel/ns"}]),
     "linux.namespaces[5].path"),
    # What this build does not do is refused, never silently skipped.
    (lambda c: c["linux"].update(memoryPolicy={"mode": "MPOL_BIND", "nodes": "0"}),
     "linux.memoryPolicy: NUMA memory policies are not applied"),
    (lambda c: c["mounts"].append({"destination": "/m", "type": "bind", "source": "/tmp",
                                   "options": ["rbind"],
                                   "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}],
                                   "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}),
     "mounts[5]: id-mapped mounts"),
])
def test_semantic_errors(runtime: Runtime, bundle: Bundle, mutate, expected: str) -> None:
    cfg = base_config()
    mutate(cfg)
    err = _create_fails(runtime, bundle.write(cfg))
    assert expected in err


def test_missing_config(runtime: Runtime, bundle: Bundle) -> None:
    (bundle.path / "config.json").unlink()
    assert "config.json not found" in _create_fails(runtime, bundle)


def test_malformed_json(runtime: Runtime, bundle: Bundle) -> None:
    (bundle.path / "config.json").write_text('{"ociVersion": "1.3.0",\n  "root": }')
    assert "not valid JSON" in _create_fails(runtime, bundle)
    assert "line 2" in _create_fails(runtime, bundle)


def test_missing_bundle(runtime: Runtime, tmp_path: Path) -> None:
    res = runtime("create", "-b", str(tmp_path / "nope"), "x")
    assert res.returncode == 1 and "does not exist" in res.stderr


def test_failing_mount_names_the_step(runtime: Runtime, bundle: Bundle) -> None:
    cfg = base_config()
    cfg["mounts"].append({"destination": "/data", "type": "nosuchfs", "source": "none"})
    err = _create_fails(runtime, bundle.write(cfg))
    assert "mount /data (nosuchfs) onto rootfs: no such device" in err


def test_missing_bind_source(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    cfg = base_config()
    cfg["mounts"].append({"destination": "/data", "type": "bind",
                          "source": str(tmp_path / "absent"), "options": ["rbind"]})
    err = _create_fails(runtime, bundle.write(cfg))
    assert "mount /data (bind) onto rootfs: no such file or directory" in err


def test_program_not_found_fails_create(runtime: Runtime, bundle: Bundle) -> None:
    err = _create_fails(runtime, bundle.write(base_config(args=["no-such-program"])))
    assert 'exec: "no-such-program": executable file not found in $PATH' in err


def test_rlimit_above_hard_limit(runtime: Runtime, bundle: Bundle) -> None:
    """This machine refuses raising a hard rlimit above its current value (see
    ../shared/reference/README.md); the failing step is named."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("NOFILE hard limit is unlimited here")
    cfg = base_config(rlimits=[{"type": "RLIMIT_NOFILE", "soft": hard * 4, "hard": hard * 4}])
    err = _create_fails(runtime, bundle.write(cfg))
    assert "set rlimit RLIMIT_NOFILE: operation not permitted" in err


def test_join_missing_namespace(runtime: Runtime, bundle: Bundle) -> None:
    cfg = base_config()
    cfg["linux"]["namespaces"][1] = {"type": "network", "path": "/proc/999999999/ns/net"}
    err = _create_fails(runtime, bundle.write(cfg))
    assert "/proc/999999999/ns/net" in err and "no such file or directory" in err


def test_refuses_joining_the_runtimes_mount_namespace(runtime: Runtime,
                                                       bundle: Bundle) -> None:
    """The safety rule: the init never mounts anything in the runtime's mount namespace."""
    cfg = base_config()
    cfg["linux"]["namespaces"][4] = {"type": "mount", "path": "/proc/self/ns/mnt"}
    err = _create_fails(runtime, bundle.write(cfg))
    assert "check the mount namespace" in err and "refusing" in err


def test_terminal_without_console_socket(runtime: Runtime, bundle: Bundle) -> None:
    err = _create_fails(runtime, bundle.write(base_config(terminal=True)))
    assert "process.terminal" in err


def test_failure_is_logged_as_json(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    log = tmp_path / "log.json"
    bundle.write(base_config(args=["no-such-program"]))
    res = runtime("create", "-b", str(bundle.path), "lg",
                  global_args=("--log", str(log), "--log-format", "json"))
    assert res.returncode == 1
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert entries[-1]["level"] == "error"
    assert "executable file not found" in entries[-1]["msg"]
    assert_nothing_left(runtime, "lg", bundle)


def test_pid_file_in_missing_dir_undoes_create(runtime: Runtime, bundle: Bundle,
                                               tmp_path: Path) -> None:
    bundle.write(base_config(args=["sleep", "300"]))
    res = runtime("create", "-b", str(bundle.path), "--pid-file",
                  str(tmp_path / "no" / "such" / "dir" / "pid"), "pf")
    assert res.returncode == 1
    assert_nothing_left(runtime, "pf", bundle)


def test_empty_hostname_without_uts_namespace_refused(runtime: Runtime,
                                                      bundle: Bundle) -> None:
    """"hostname": "" must not reach sethostname() in the host's UTS namespace."""
    cfg = base_config()
    cfg["hostname"] = ""
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "uts"]
    err = _create_fails(runtime, bundle.write(cfg))
    assert "hostname: setting the hostname needs a uts namespace" in err


def test_preserve_fds_not_open(runtime: Runtime, bundle: Bundle) -> None:
    res = runtime("run", "--preserve-fds", "4", "-b", str(bundle.path), "pf2")
    assert res.returncode == 1
    assert "--preserve-fds 4: file descriptor" in res.stderr and "is not open" in res.stderr
    assert_nothing_left(runtime, "pf2", bundle)


@pytest.mark.parametrize("content", ["{not json", "{}", ""])
def test_unreadable_state_is_an_error_and_force_delete_removes_it(
        runtime: Runtime, bundle: Bundle, content: str) -> None:
    cdir = runtime.root / "broken"
    cdir.mkdir(parents=True)
    (cdir / "state.json").write_text(content)
    for cmd in (["state", "broken"], ["kill", "broken"], ["start", "broken"],
                ["delete", "broken"]):
        res = runtime(*cmd)
        assert res.returncode == 1, cmd
        assert "state file" in res.stderr and "Traceback" not in res.stderr, res.stderr
    runtime("delete", "--force", "broken", check=True)
    assert not cdir.exists()


def test_force_delete_removes_dir_without_state(runtime: Runtime) -> None:
    """A create killed between mkdir and its first write leaves a bare directory."""
    cdir = runtime.root / "bare"
    cdir.mkdir(parents=True)
    runtime("delete", "--force", "bare", check=True)
    assert not cdir.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["/etc/passwd"], 'exec: "/etc/passwd": permission denied'),
    (["/nonexistent"], 'exec: "/nonexistent": stat /nonexistent: no such file or directory'),
    (["nonexistent"], 'exec: "nonexistent": executable file not found in $PATH'),
])
def test_program_errors_use_runc_wording(runtime: Runtime, bundle: Bundle, args: list[str],
                                         message: str) -> None:
    """podman turns these words into its exit status (126 for "permission denied", 127 for
    the others), so they are runc's."""
    err = _create_fails(runtime, bundle.write(base_config(args=args)))
    assert message in err
    assert_nothing_left(runtime, "bad", bundle)


def test_delete_force_of_a_missing_container(runtime: Runtime) -> None:
    """runc: `delete --force` of an id that does not exist succeeds (podman's cleanup after
    a failed create relies on it); without --force it is an error."""
    assert runtime("delete", "--force", "never-made").returncode == 0
    res = runtime("delete", "never-made")
    assert res.returncode == 1 and "does not exist" in res.stderr
