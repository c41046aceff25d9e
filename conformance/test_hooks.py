"""config.md "POSIX-platform Hooks" and runtime.md "Lifecycle" steps 3-13."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from .harness import WAIT_FOR_GO, assert_gone, host_ns, pid_alive, wait_until

# A host-side hook: records its name, the state it read on stdin and its
# mount namespace.  argv: hook.sh NAME DIR
HOST_HOOK = """#!/bin/sh
name=$1
dir=$2
cat > "$dir/$name.json"
readlink /proc/self/ns/mnt > "$dir/$name.mnt"
echo "$name" >> "$dir/order"
"""

# The same, as a script for the container's busybox sh (startContainer hooks
# resolve and run in the container, so they write to the /out bind mount).
CONTAINER_HOOK = (
    'cat > "/out/$0.json"; readlink /proc/self/ns/mnt > "/out/$0.mnt"; echo "$0" >> /out/order'
)


def write_script(path: Path, text: str) -> str:
    path.write_text(text)
    os.chmod(path, 0o755)
    return str(path)


@pytest.fixture
def host_hook(tmp_path):
    return write_script(tmp_path / "hook.sh", HOST_HOOK)


def add_recording_hook(bundle, hook: str, kind: str, name: str | None = None) -> None:
    name = name or kind
    bundle.hook(kind, hook, ["hook.sh", name, str(bundle.out)])


def order(bundle) -> list[str]:
    try:
        return (bundle.out / "order").read_text().split()
    except FileNotFoundError:
        return []


def hook_state(bundle, name: str) -> dict:
    text = (bundle.out / f"{name}.json").read_text()
    try:
        return json.loads(text)
    except ValueError:
        pytest.fail(f"hook {name} did not get JSON state on stdin: {text!r}")


def test_hooks_run_in_order(runtime, bundle, host_hook):
    """config.md "POSIX-platform Hooks": "Hooks MUST be called in the listed
    order." runtime.md "Lifecycle": prestart (step 3), createRuntime (4),
    createContainer (5) during create; startContainer (7) on start before
    the program runs (8); poststop (13) after delete (config.md "Poststop":
    "called after the container is deleted but before the delete operation
    returns"). config.md "Prestart": "The prestart hooks MUST be called
    before the createRuntime hooks." and "CreateContainer": "The
    createContainer hooks MUST be called after the createRuntime hooks."
    (poststart timing has its own case.)"""
    bundle.mount_out().sh("echo user >> /out/order; " + WAIT_FOR_GO)
    add_recording_hook(bundle, host_hook, "prestart")
    add_recording_hook(bundle, host_hook, "createRuntime", "createRuntime1")
    add_recording_hook(bundle, host_hook, "createRuntime", "createRuntime2")
    add_recording_hook(bundle, host_hook, "createContainer")
    bundle.hook("startContainer", "/bin/sh", ["sh", "-c", CONTAINER_HOOK, "startContainer"])
    add_recording_hook(bundle, host_hook, "poststop")
    create_phase = ["prestart", "createRuntime1", "createRuntime2", "createContainer"]

    runtime.create(bundle)
    got = order(bundle)
    assert got == create_phase, got
    runtime.start(bundle.cid)
    assert wait_until(lambda: "user" in order(bundle))
    got = order(bundle)
    assert got == [*create_phase, "startContainer", "user"], got
    (bundle.out / "go").touch()
    assert runtime.wait_status(bundle.cid, "stopped") == "stopped"
    assert "poststop" not in order(bundle), "poststop ran before delete"
    runtime.delete(bundle.cid)
    got = order(bundle)
    assert got == [*create_phase, "startContainer", "user", "poststop"], got


@pytest.mark.runc_differs(
    "runc 1.1 runs poststart hooks during create, before the user program "
    "was started"
)
def test_poststart_runs_during_start(runtime, bundle, host_hook):
    """config.md "Poststart": "The poststart hooks MUST be called after the
    user-specified process is executed but before the start operation
    returns." runtime.md "Lifecycle": start (step 6), startContainer (7),
    the program (8), poststart (9) -- so not during create, and after
    startContainer. (runc 1.1 runs them at the end of create; the spec
    supports running them in start.)"""
    bundle.mount_out().sh(WAIT_FOR_GO)
    bundle.hook("startContainer", "/bin/sh", ["sh", "-c", CONTAINER_HOOK, "startContainer"])
    add_recording_hook(bundle, host_hook, "poststart")
    runtime.create(bundle)
    assert order(bundle) == [], "start hooks ran during create"
    runtime.start(bundle.cid)
    assert order(bundle) == ["startContainer", "poststart"]


def test_hooks_receive_state_on_stdin(runtime, bundle, host_hook):
    """config.md "POSIX-platform Hooks": "The state of the container MUST be
    passed to hooks over stdin so that they may do work appropriate to the
    current state of the container." runtime.md "State": ociVersion, id,
    status, bundle, annotations; "pid ... For hooks executed in the runtime
    namespace, it is the pid as seen by the runtime. For hooks executed in
    the container namespace, it is the pid as seen by the container." (with
    a new pid namespace the container sees its process as 1)."""
    bundle.mount_out().sh(WAIT_FOR_GO)
    bundle.config["annotations"] = {"org.example.hooks": "yes"}
    kinds = ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]
    for kind in kinds:
        add_recording_hook(bundle, host_hook, kind)
    bundle.hook("startContainer", "/bin/sh", ["sh", "-c", CONTAINER_HOOK, "startContainer"])
    runtime.create(bundle)
    host_pid = runtime.state(bundle.cid)["pid"]
    runtime.start(bundle.cid)
    (bundle.out / "go").touch()
    assert runtime.wait_status(bundle.cid, "stopped") == "stopped"
    runtime.delete(bundle.cid)
    for kind in [*kinds, "startContainer"]:
        state = hook_state(bundle, kind)
        assert state.get("id") == bundle.cid, (kind, state)
        assert isinstance(state.get("ociVersion"), str), (kind, state)
        assert os.path.realpath(state.get("bundle", "")) == os.path.realpath(bundle.path), (
            kind, state)
        assert state.get("status") in ("creating", "created", "running", "stopped"), (kind, state)
        assert state.get("annotations", {}).get("org.example.hooks") == "yes", (kind, state)
    for kind in ("prestart", "createRuntime", "poststart"):
        assert hook_state(bundle, kind).get("pid") == host_pid, kind
    for kind in ("createContainer", "startContainer"):
        assert hook_state(bundle, kind).get("pid") == 1, kind


@pytest.mark.parametrize(
    "kind,where",
    [
        ("prestart", "runtime"),
        ("createRuntime", "runtime"),
        ("createContainer", "container"),
        ("startContainer", "container"),
        ("poststart", "runtime"),
        ("poststop", "runtime"),
    ],
)
def test_hook_namespace(runtime, bundle, host_hook, kind, where):
    """config.md "POSIX-platform Hooks": "The prestart/createRuntime/
    poststart/poststop hooks MUST be executed in the runtime namespace";
    "The createContainer hooks MUST be executed in the container namespace";
    "The startContainer hooks MUST be executed in the container namespace."
    Compared by mount namespace."""
    bundle.mount_out().sh("readlink /proc/self/ns/mnt > /out/container.mnt; " + WAIT_FOR_GO)
    if kind == "startContainer":
        bundle.hook(kind, "/bin/sh", ["sh", "-c", CONTAINER_HOOK, kind])
    else:
        add_recording_hook(bundle, host_hook, kind)
    runtime.create(bundle)
    runtime.start(bundle.cid)
    assert wait_until(lambda: (bundle.out / "container.mnt").exists())
    (bundle.out / "go").touch()
    assert runtime.wait_status(bundle.cid, "stopped") == "stopped"
    runtime.delete(bundle.cid)
    hook_mnt = (bundle.out / f"{kind}.mnt").read_text().strip()
    if where == "runtime":
        assert hook_mnt == host_ns("mnt"), f"{kind} hook ran outside the runtime mount ns"
    else:
        container_mnt = (bundle.out / "container.mnt").read_text().strip()
        assert hook_mnt == container_mnt, f"{kind} hook ran outside the container mount ns"


def test_hook_args_and_env(runtime, bundle, tmp_path):
    """config.md "POSIX-platform Hooks": "args (array of strings, OPTIONAL)
    with the same semantics as IEEE Std 1003.1-2008 execv's argv" and "env
    (array of strings, OPTIONAL) with the same semantics as IEEE Std
    1003.1-2008's environ" -- argv[0] is args[0] and the environment is env,
    not the runtime's."""
    out = tmp_path / "hookout"
    out.mkdir()
    script = write_script(
        tmp_path / "argv.sh",
        f'#!/bin/sh\necho "$0|$1|$2" > {out}/argv\nenv > {out}/env\ncat > /dev/null\n',
    )
    bundle.hook("createRuntime", "/bin/sh", ["sh", script, "first", "second"],
                env=["CONFORMANCE_HOOK=1", "PATH=/usr/bin:/bin"])
    res = runtime.create(bundle)
    assert res.ok
    argv = (out / "argv").read_text().strip()
    assert argv == f"{script}|first|second", argv
    env = (out / "env").read_text().splitlines()
    assert "CONFORMANCE_HOOK=1" in env, env
    assert not any(line.startswith("CONFORMANCE_LEAK=") for line in env), env


def test_hook_args_argv0(runtime, bundle, tmp_path):
    """config.md "POSIX-platform Hooks": "path (string, REQUIRED) with
    similar semantics to IEEE Std 1003.1-2008 execv's path" and "args ...
    with the same semantics as ... execv's argv": args[0] becomes argv[0]
    even when it differs from path. busybox picks its applet by argv[0], so
    path=/bin/busybox with args[0]="sh" only works if argv[0] is "sh"."""
    out = tmp_path / "argv0"
    bundle.hook("createRuntime", "/bin/busybox",
                ["sh", "-c", f"cat > /dev/null; echo ok > {out}"])
    res = runtime.create(bundle, check=False)
    assert res.ok, str(res)
    assert out.read_text().strip() == "ok"


def _fail_hook(tmp_path: Path) -> str:
    return write_script(tmp_path / "fail.sh", "#!/bin/sh\ncat > /dev/null\nexit 1\n")


@pytest.mark.parametrize("kind", ["createRuntime", "prestart", "createContainer"])
def test_failing_create_hook_fails_create_and_leaves_nothing(runtime, bundle, tmp_path, kind):
    """runtime.md "Lifecycle" steps 3-5: "If any prestart/createRuntime/
    createContainer hook fails, the runtime MUST generate an error, stop the
    container, and continue the lifecycle at step 12" (step 12: "The container
    MUST be destroyed by undoing the steps performed during create phase").
    runtime.md "Create": "... it MUST generate an error and a new container
    MUST NOT be created." Nothing may be left: no state, no entry under
    --root, no process."""
    bundle.mount_out().sh("echo ran > /out/ran")
    bundle.hook(kind, _fail_hook(tmp_path))
    res = runtime.create(bundle, check=False)
    assert not res.ok, f"create succeeded although a {kind} hook failed\n{res}"
    assert_gone(runtime, bundle.cid)
    assert not (bundle.out / "ran").exists()


def test_failing_create_runtime_hook_still_runs_poststop(runtime, bundle, tmp_path, host_hook):
    """runtime.md "Lifecycle" step 4: "If any createRuntime hook fails, the
    runtime MUST generate an error, stop the container, and continue the
    lifecycle at step 12." Step 13: "The poststop hooks MUST be invoked by
    the runtime.\""""
    bundle.out.mkdir()
    bundle.hook("createRuntime", _fail_hook(tmp_path))
    add_recording_hook(bundle, host_hook, "poststop")
    res = runtime.create(bundle, check=False)
    assert not res.ok
    assert "poststop" in order(bundle), "poststop hooks were not invoked"


def test_hook_timeout(runtime, bundle):
    """config.md "POSIX-platform Hooks": "timeout (int, OPTIONAL) is the
    number of seconds before aborting the hook." A createRuntime hook that
    would sleep 30 s with timeout 1 is aborted; create fails quickly and
    leaves nothing."""
    bundle.hook("createRuntime", "/bin/sleep", ["sleep", "30"], timeout=1)
    t0 = time.monotonic()
    res = runtime.create(bundle, check=False, timeout=25)
    elapsed = time.monotonic() - t0
    assert not res.ok, f"create succeeded although its hook timed out\n{res}"
    assert elapsed < 15, f"hook was not aborted after its timeout ({elapsed:.1f}s)"
    assert_gone(runtime, bundle.cid)


@pytest.mark.runc_differs(
    "runc 1.1 runs poststart hooks during create: a failing one fails create, "
    "so the container is never started"
)
def test_failing_poststart_hook_fails_start_and_stops_the_container(
        runtime, bundle, tmp_path, host_hook):
    """runtime.md v1.3.0 "Lifecycle" step 9: "If any poststart hook fails, the
    runtime MUST generate an error, stop the container, and continue the
    lifecycle at step 12." Step 12: "The container MUST be destroyed by
    undoing the steps performed during create phase (step 2)"; step 13: "The
    poststop hooks MUST be invoked by the runtime." So start fails, the
    user's process is gone, later poststart hooks do not run (the lifecycle
    continues at 12), poststop hooks do, and the container no longer exists.
    (runtime.md v1.0 asked only for a warning.)"""
    bundle.mount_out().sh(WAIT_FOR_GO)
    bundle.hook("poststart", _fail_hook(tmp_path))
    bundle.hook("poststart", "/bin/sh", ["sh", "-c", f"cat > /dev/null; touch {bundle.out}/second"])
    add_recording_hook(bundle, host_hook, "poststop")
    runtime.create(bundle)
    pid = runtime.state(bundle.cid)["pid"]
    res = runtime.start(bundle.cid, check=False)
    assert not res.ok, f"start succeeded although a poststart hook failed\n{res}"
    assert wait_until(lambda: not pid_alive(pid)), "the container was not stopped"
    assert not (bundle.out / "second").exists(), "poststart hooks went on after a failure"
    assert "poststop" in order(bundle), "poststop hooks were not invoked (step 13)"
    assert_gone(runtime, bundle.cid)


@pytest.mark.runc_differs(
    "runc 1.1 stops running poststop hooks at the first failing one (delete "
    "itself succeeds); the spec says the remaining hooks continue"
)
def test_failing_poststop_hook_is_only_a_warning(runtime, bundle, tmp_path):
    """runtime.md "Lifecycle" step 13: "If any poststop hook fails, the
    runtime MUST log a warning, but the remaining hooks and lifecycle
    continue as if the hook had succeeded." (runc 1.1 skips the remaining
    poststop hooks; the spec supports running them.)"""
    bundle.out.mkdir()
    bundle.hook("poststop", _fail_hook(tmp_path))
    bundle.hook("poststop", "/bin/sh", ["sh", "-c", f"cat > /dev/null; touch {bundle.out}/second"])
    runtime.create(bundle)
    runtime.start(bundle.cid)
    assert runtime.wait_status(bundle.cid, "stopped") == "stopped"
    res = runtime.delete(bundle.cid, check=False)
    assert res.ok, f"delete failed because of a poststop hook\n{res}"
    assert (bundle.out / "second").exists(), "remaining poststop hooks did not run"
    assert not runtime.state_result(bundle.cid).ok


def test_poststop_runs_on_delete_force(runtime, bundle, host_hook):
    """config.md "Poststop": "The poststop hooks MUST be called after the
    container is deleted but before the delete operation returns." (delete
    --force of a running container)."""
    bundle.out.mkdir()
    bundle.config["process"]["args"] = ["sleep", "60"]
    add_recording_hook(bundle, host_hook, "poststop")
    runtime.create(bundle)
    runtime.start(bundle.cid)
    pid = runtime.state(bundle.cid)["pid"]
    runtime.delete(bundle.cid, force=True)
    assert order(bundle) == ["poststop"]
    assert wait_until(lambda: not pid_alive(pid))
