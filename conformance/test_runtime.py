"""runtime.md: State, Lifecycle, Errors and Operations (state, create, start,
kill, delete)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from .harness import WAIT_FOR_GO, assert_gone, pid_alive, wait_until

SEMVER = re.compile(r"^\d+\.\d+\.\d+([-+].*)?$")


def check_state(state: dict, cid: str, bundle, status: str) -> None:
    assert isinstance(state.get("ociVersion"), str) and SEMVER.match(state["ociVersion"]), state
    assert state.get("id") == cid, state
    assert state.get("status") == status, state
    assert isinstance(state.get("bundle"), str), state
    assert os.path.isabs(state["bundle"]), state
    assert os.path.realpath(state["bundle"]) == os.path.realpath(bundle.path), state
    if status in ("created", "running"):
        assert isinstance(state.get("pid"), int) and state["pid"] > 0, state
        assert pid_alive(state["pid"]), f"state pid {state['pid']} is not a live process"


def test_state_fields_created(runtime, bundle):
    """runtime.md "State": "The state of a container includes the following
    properties: ociVersion (string, REQUIRED) ... id (string, REQUIRED) ...
    status (string, REQUIRED) ... pid (int, REQUIRED when status is created
    or running on Linux ...) ... bundle (string, REQUIRED) is the absolute
    path to the container's bundle directory." Checked right after create."""
    bundle.config["process"]["args"] = ["sleep", "60"]
    runtime.create(bundle)
    check_state(runtime.state(bundle.cid), bundle.cid, bundle, "created")


def test_state_fields_running(runtime, bundle):
    """runtime.md "State": id, status, pid ("REQUIRED when status is created
    or running"), bundle ("the absolute path to the container's bundle
    directory") -- checked while the container process runs; the pid is the
    container process "as seen by the host"."""
    bundle.config["process"]["args"] = ["sleep", "60"]
    runtime.create(bundle)
    runtime.start(bundle.cid)
    state = runtime.state(bundle.cid)
    check_state(state, bundle.cid, bundle, "running")
    cmdline = Path(f"/proc/{state['pid']}/cmdline").read_bytes().split(b"\0")
    assert cmdline[:2] == [b"sleep", b"60"], cmdline


def test_state_fields_stopped(runtime, bundle):
    """runtime.md "State": "stopped: the container process has exited (step
    10 in the lifecycle)"; ociVersion, id, status and bundle are REQUIRED in
    every status (pid only while created or running)."""
    runtime.create(bundle)
    runtime.start(bundle.cid)
    assert runtime.wait_status(bundle.cid, "stopped") == "stopped"
    check_state(runtime.state(bundle.cid), bundle.cid, bundle, "stopped")


def test_state_bundle_is_absolute_for_relative_bundle_argument(runtime, bundle):
    """runtime.md "State": "bundle (string, REQUIRED) is the absolute path to
    the container's bundle directory." -- even when create was given a
    relative --bundle."""
    bundle.config["process"]["args"] = ["sleep", "60"]
    bundle.write()
    runtime.ids.append(bundle.cid)
    res = runtime("create", "--bundle", bundle.path.name, bundle.cid, cwd=bundle.path.parent)
    assert res.ok, str(res)
    state = runtime.state(bundle.cid)
    assert os.path.isabs(state["bundle"]), state
    assert os.path.realpath(state["bundle"]) == os.path.realpath(bundle.path)


def test_create_does_not_run_user_process(runtime, bundle):
    """runtime.md "Lifecycle" step 2: "While the resources requested in the
    config.json MUST be created, the user-specified program (from process)
    MUST NOT be run at this time." and "Create": "process.args MUST NOT be
    applied until triggered by the start operation." The program would write
    a file into a bind-mounted host directory."""
    bundle.mount_out().sh("echo ran > /out/ran; " + WAIT_FOR_GO)
    runtime.create(bundle)
    state = runtime.state(bundle.cid)
    assert state["status"] == "created", state
    time.sleep(0.3)
    assert not (bundle.out / "ran").exists(), "user process ran during create"
    assert runtime.state(bundle.cid)["status"] == "created"


def test_start_runs_process_then_stopped(runtime, bundle):
    """runtime.md "Lifecycle" step 8: "The runtime MUST run the
    user-specified program, as specified by process." State "running: the
    container process has executed the user-specified program but has not
    exited"; "stopped: the container process has exited (step 10)"."""
    bundle.mount_out().sh("echo ran > /out/ran; " + WAIT_FOR_GO)
    runtime.create(bundle)
    runtime.start(bundle.cid)
    assert wait_until(lambda: (bundle.out / "ran").exists()), "user process did not run"
    assert runtime.state(bundle.cid)["status"] == "running"
    (bundle.out / "go").touch()
    assert runtime.wait_status(bundle.cid, "stopped") == "stopped"


def test_create_duplicate_id_fails_without_effect(runtime, bundle, make_extra_bundle):
    """runtime.md "Create": "If the ID provided is not unique across all
    containers within the scope of the runtime ... the implementation MUST
    generate an error and a new container MUST NOT be created." and
    "Errors": "generating an error MUST leave the state of the environment as
    if the operation were never attempted"."""
    bundle.config["process"]["args"] = ["sleep", "60"]
    runtime.create(bundle)
    before = runtime.state(bundle.cid)
    other = make_extra_bundle()
    other.mount_out().sh("echo ran > /out/ran")
    res = runtime.create(other, bundle.cid, check=False)
    assert not res.ok, f"duplicate create succeeded\n{res}"
    after = runtime.state(bundle.cid)
    assert after == before
    assert runtime.list_ids().count(bundle.cid) == 1
    runtime.start(bundle.cid)
    time.sleep(0.2)
    assert not (other.out / "ran").exists(), "the second bundle's process ran"
    assert runtime.state(bundle.cid)["pid"] == before["pid"]


def test_config_changes_after_create_have_no_effect(runtime, bundle):
    """runtime.md "Create": "Any changes made to the config.json file after
    this operation will not have an effect on the container." (also
    "Lifecycle" step 2)."""
    bundle.mount_out().sh("echo original > /out/which")
    runtime.create(bundle)
    bundle.sh("echo changed > /out/which")
    bundle.write()
    runtime.start(bundle.cid)
    assert runtime.wait_status(bundle.cid, "stopped") == "stopped"
    assert (bundle.out / "which").read_text().strip() == "original"


def test_start_running_container_fails(runtime, bundle):
    """runtime.md "Start": "Attempting to start a container that is not
    created MUST have no effect on the container and MUST generate an
    error." (here: a running container)."""
    bundle.mount_out().sh("echo x >> /out/count; " + WAIT_FOR_GO)
    runtime.create(bundle)
    runtime.start(bundle.cid)
    before = runtime.state(bundle.cid)
    assert before["status"] == "running"
    res = runtime.start(bundle.cid, check=False)
    assert not res.ok, f"second start succeeded\n{res}"
    after = runtime.state(bundle.cid)
    assert after["status"] == "running" and after["pid"] == before["pid"], after
    time.sleep(0.2)
    assert (bundle.out / "count").read_text().count("x") == 1


def test_start_stopped_container_fails(runtime, bundle):
    """runtime.md "Start": "Attempting to start a container that is not
    created MUST have no effect on the container and MUST generate an
    error." (here: a stopped container; the program must not run again)."""
    bundle.mount_out().sh("echo x >> /out/count")
    runtime.create(bundle)
    runtime.start(bundle.cid)
    assert runtime.wait_status(bundle.cid, "stopped") == "stopped"
    res = runtime.start(bundle.cid, check=False)
    assert not res.ok, f"start of a stopped container succeeded\n{res}"
    time.sleep(0.2)
    assert runtime.state(bundle.cid)["status"] == "stopped"
    assert (bundle.out / "count").read_text().count("x") == 1


def test_kill_created_container(runtime, bundle):
    """runtime.md "Kill": "Attempting to send a signal to a container that is
    neither created nor running MUST have no effect on the container and MUST
    generate an error. This operation MUST send the specified signal to the
    container process." -- so a created container can be killed; afterwards
    it is stopped and the program never ran."""
    bundle.mount_out().sh("echo ran > /out/ran")
    runtime.create(bundle)
    pid = runtime.state(bundle.cid)["pid"]
    runtime.kill(bundle.cid, "KILL")
    assert runtime.wait_status(bundle.cid, "stopped") == "stopped"
    assert wait_until(lambda: not pid_alive(pid)), "container process survived SIGKILL"
    assert not (bundle.out / "ran").exists()


def test_kill_running_container(runtime, bundle):
    """runtime.md "Kill": "This operation MUST send the specified signal to
    the container process." The process traps SIGUSR1 and records it."""
    bundle.mount_out().sh(
        "trap 'echo USR1 > /out/sig; exit 0' USR1; echo up > /out/up; "
        "while :; do sleep 0.05; done"
    )
    runtime.create(bundle)
    runtime.start(bundle.cid)
    assert wait_until(lambda: (bundle.out / "up").exists())
    runtime.kill(bundle.cid, "USR1")
    assert wait_until(lambda: (bundle.out / "sig").exists()), "signal not delivered"
    assert runtime.wait_status(bundle.cid, "stopped") == "stopped"


def test_kill_stopped_container_fails(runtime, bundle):
    """runtime.md "Kill": "Attempting to send a signal to a container that is
    neither created nor running MUST have no effect on the container and MUST
    generate an error.\""""
    runtime.create(bundle)
    runtime.start(bundle.cid)
    assert runtime.wait_status(bundle.cid, "stopped") == "stopped"
    before = runtime.state(bundle.cid)
    res = runtime.kill(bundle.cid, "KILL", check=False)
    assert not res.ok, f"kill of a stopped container succeeded\n{res}"
    assert runtime.state(bundle.cid) == before


def test_delete_stopped_container(runtime, bundle):
    """runtime.md "Delete": "Deleting a container MUST delete the resources
    that were created during the create step." and "Query State":
    "Attempting to query a container that does not exist MUST generate an
    error." Afterwards nothing named after the id is left under --root."""
    runtime.create(bundle)
    runtime.start(bundle.cid)
    assert runtime.wait_status(bundle.cid, "stopped") == "stopped"
    runtime.delete(bundle.cid)
    assert_gone(runtime, bundle.cid)


@pytest.mark.runc_differs(
    "runc deletes a created (not stopped) container without --force; the spec "
    "requires an error and no effect"
)
def test_delete_created_container_fails(runtime, bundle):
    """runtime.md "Delete": "Attempting to delete a container that is not
    stopped MUST have no effect on the container and MUST generate an
    error." A created container is not stopped. (runc 1.1 deletes it
    instead; the spec supports the error.)"""
    bundle.config["process"]["args"] = ["sleep", "60"]
    runtime.create(bundle)
    before = runtime.state(bundle.cid)
    res = runtime.delete(bundle.cid, check=False)
    assert not res.ok, f"delete of a created container succeeded\n{res}"
    assert runtime.state(bundle.cid) == before


def test_delete_running_container_fails(runtime, bundle):
    """runtime.md "Delete": "Attempting to delete a container that is not
    stopped MUST have no effect on the container and MUST generate an
    error." (here: running)."""
    bundle.config["process"]["args"] = ["sleep", "60"]
    runtime.create(bundle)
    runtime.start(bundle.cid)
    before = runtime.state(bundle.cid)
    res = runtime.delete(bundle.cid, check=False)
    assert not res.ok, f"delete of a running container succeeded\n{res}"
    assert runtime.state(bundle.cid) == before
    assert pid_alive(before["pid"])


def test_delete_force_running_container(runtime, bundle):
    """runtime.md "Delete": "Deleting a container MUST delete the resources
    that were created during the create step." runc CLI: ``delete --force``
    kills a running container first (not a spec operation). The process and
    all state must be gone afterwards."""
    bundle.config["process"]["args"] = ["sleep", "60"]
    runtime.create(bundle)
    runtime.start(bundle.cid)
    pid = runtime.state(bundle.cid)["pid"]
    runtime.delete(bundle.cid, force=True)
    assert wait_until(lambda: not pid_alive(pid)), "container process survived delete --force"
    assert_gone(runtime, bundle.cid)


def test_delete_force_created_container(runtime, bundle):
    """runtime.md "Delete": "Deleting a container MUST delete the resources
    that were created during the create step." runc CLI: ``delete --force``
    of a created container removes it and its (never started) process."""
    bundle.mount_out().sh("echo ran > /out/ran")
    runtime.create(bundle)
    pid = runtime.state(bundle.cid)["pid"]
    runtime.delete(bundle.cid, force=True)
    assert wait_until(lambda: not pid_alive(pid))
    assert_gone(runtime, bundle.cid)
    assert not (bundle.out / "ran").exists()


@pytest.mark.parametrize(
    "args",
    [("state",), ("start",), ("kill", "KILL"), ("delete",)],
    ids=["state", "start", "kill", "delete"],
)
def test_operations_on_unknown_id_fail(runtime, args):
    """runtime.md "Query State": "Attempting to query a container that does
    not exist MUST generate an error."; "Start": "Attempting to start a
    container that is not created MUST ... generate an error"; "Kill":
    "Attempting to send a signal to a container that is neither created nor
    running MUST ... generate an error"; "Delete": "Attempting to delete a
    container that is not stopped MUST ... generate an error" -- a container
    that does not exist is none of these."""
    cid = runtime.new_id()
    argv = [args[0], cid, *args[1:]]
    res = runtime(*argv)
    assert res.rc != 0, f"{args[0]} on an unknown id succeeded\n{res}"
    assert cid not in runtime.list_ids()


def test_create_with_missing_rootfs_fails_and_leaves_nothing(runtime, bundle):
    """config.md "Root": "A directory MUST exist at the path declared by the
    field." runtime.md "Create": "If the runtime cannot apply a property as
    specified in the configuration, it MUST generate an error and a new
    container MUST NOT be created.\""""
    bundle.config["root"]["path"] = "no-such-rootfs"
    res = runtime.create(bundle, check=False)
    assert not res.ok, f"create succeeded without a rootfs\n{res}"
    assert_gone(runtime, bundle.cid)


def test_create_with_unappliable_mount_fails_and_leaves_nothing(runtime, bundle, tmp_path):
    """runtime.md "Create": "If the runtime cannot apply a property as
    specified in the configuration, it MUST generate an error and a new
    container MUST NOT be created." (a bind mount whose source is missing)."""
    bundle.mount_out().sh("echo ran > /out/ran")
    bundle.add_mount("/mnt/missing", str(tmp_path / "does-not-exist"))
    res = runtime.create(bundle, check=False)
    assert not res.ok, f"create succeeded with an impossible mount\n{res}"
    assert_gone(runtime, bundle.cid)
    assert not (bundle.out / "ran").exists()


@pytest.mark.runc_differs(
    "runc refuses a config without `process` at create time; the spec makes "
    "process OPTIONAL and only requires an error from start"
)
def test_start_without_process_fails(runtime, bundle):
    """config.md "Process": "process (object, OPTIONAL) specifies the
    container process. This property is REQUIRED when start is called."
    runtime.md "Start": "This operation MUST generate an error if process
    was not set." -- create succeeds, start errors. (runc 1.1 already fails
    create; the spec supports create succeeding.)"""
    del bundle.config["process"]
    runtime.create(bundle)
    res = runtime.start(bundle.cid, check=False)
    assert not res.ok, f"start without process succeeded\n{res}"
