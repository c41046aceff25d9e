"""The Python API (pyoci/api.py) on real containers: the lifecycle returning typed
records, run's and exec's exit statuses, the CLI's errors as typed exceptions, and nothing
left behind after a failure. The API runs in this test process, so it also checks that a
call leaves the caller as it found it (signal handlers, child-subreaper flag)."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator

import pytest

from pyoci import api
from pyoci import syscalls as sc
from pyoci.errors import ConfigError, ContainerExists, ContainerNotFound, ContainerStateError
from tests.helpers import Bundle, Runtime, assert_nothing_left, base_config

pytestmark = pytest.mark.integration


@pytest.fixture
def cid() -> str:
    return f"api-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def root(runtime: Runtime) -> Iterator[str]:
    """The runtime fixture's state root: its teardown force-deletes what a failing test
    left, and tests can check through the CLI what the API made."""
    yield str(runtime.root)


def _sleeper(bundle: Bundle) -> Bundle:
    return bundle.write(base_config(args=["sleep", "300"]))


def _wait_stopped(cid: str, root: str, timeout: float = 10) -> api.ContainerState:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = api.state(cid, root=root)
        if st.status == "stopped":
            return st
        time.sleep(0.05)
    raise AssertionError(f"{cid} never stopped: {api.state(cid, root=root)}")


def test_create_start_state_kill_delete(runtime: Runtime, root: str, bundle: Bundle,
                                        cid: str) -> None:
    _sleeper(bundle)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    created = api.create(cid, str(bundle.path), root=root)
    assert isinstance(created, api.ContainerState)
    assert (created.id, created.status, created.bundle) == (cid, "created", str(bundle.path))
    assert created.pid > 0
    assert runtime.state(cid)["status"] == "created"  # the CLI sees the same container
    running = api.start(cid, root=root)
    assert running.status == "running" and running.pid == created.pid
    assert api.state(cid, root=root) == running
    assert [c.id for c in api.list_containers(root=root)] == [cid]
    assert created.pid in api.ps(cid, root=root)
    api.pause(cid, root=root)
    assert api.state(cid, root=root).status == "paused"
    api.resume(cid, root=root)
    api.kill(cid, "KILL", root=root)
    stopped = _wait_stopped(cid, root)
    assert stopped.pid == 0
    api.delete(cid, root=root)
    with pytest.raises(ContainerNotFound, match=f'container "{cid}" does not exist'):
        api.state(cid, root=root)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    assert_nothing_left(runtime, cid, bundle)


def test_run_returns_the_exit_status(runtime: Runtime, root: str, bundle: Bundle,
                                     cid: str) -> None:
    bundle.write(base_config(args=["sh", "-c", "exit 3"]))
    was_subreaper = sc.child_subreaper()
    handler = signal.getsignal(signal.SIGINT)
    result = api.run(cid, str(bundle.path), root=root)
    assert result == api.ExitStatus(pid=result.pid, status=3, signal=0)
    assert not result.ok
    assert sc.child_subreaper() == was_subreaper  # the caller's flag, restored
    assert signal.getsignal(signal.SIGINT) == handler
    assert_nothing_left(runtime, cid, bundle)


def test_run_keep(runtime: Runtime, root: str, bundle: Bundle, cid: str) -> None:
    bundle.write(base_config(args=["true"]))
    assert api.run(cid, str(bundle.path), root=root, keep=True).ok
    assert api.state(cid, root=root).status == "stopped"
    api.delete(cid, root=root)
    assert_nothing_left(runtime, cid, bundle)


def test_exec_status_and_output(runtime: Runtime, root: str, bundle: Bundle, cid: str,
                                capfd: pytest.CaptureFixture[str]) -> None:
    _sleeper(bundle)
    api.create(cid, str(bundle.path), root=root)
    api.start(cid, root=root)
    capfd.readouterr()
    assert api.exec(cid, ["sh", "-c", "echo hello-$X; exit 7"], root=root,
                    env=["X=api"]).status == 7
    assert "hello-api" in capfd.readouterr().out  # the caller's stdout, inherited
    killed = api.exec(cid, ["sh", "-c", "kill -9 $$"], root=root)
    assert (killed.status, killed.signal) == (137, 9)
    pid = api.exec_detached(cid, ["sleep", "300"], root=root)
    assert pid in api.ps(cid, root=root)
    event = api.stats(cid, root=root)
    assert event.type == "stats" and event.id == cid and isinstance(event.data, dict)
    stream = api.events(cid, root=root, interval=0.1)
    assert next(stream).type == "stats"
    api.kill(cid, "KILL", root=root)
    assert all(e.type in ("stats", "oom") for e in stream)  # ends when the init exits
    api.delete(cid, root=root, force=True)
    assert_nothing_left(runtime, cid, bundle)


def test_errors_are_typed_and_leave_nothing(runtime: Runtime, root: str, bundle: Bundle,
                                            cid: str) -> None:
    _sleeper(bundle)
    api.create(cid, str(bundle.path), root=root)
    with pytest.raises(ContainerExists, match=f'container "{cid}" already exists'):
        api.create(cid, str(bundle.path), root=root)
    with pytest.raises(ContainerStateError, match="cannot exec in a created container"):
        api.exec(cid, ["true"], root=root)
    api.start(cid, root=root)
    with pytest.raises(ContainerStateError,
                       match="cannot start an already running container"):
        api.start(cid, root=root)
    with pytest.raises(ContainerStateError, match="it is running, not stopped"):
        api.delete(cid, root=root)
    api.delete(cid, root=root, force=True)
    with pytest.raises(ContainerNotFound):
        api.kill(cid, root=root)
    assert_nothing_left(runtime, cid, bundle)


def test_failed_create_and_run_leave_nothing(runtime: Runtime, root: str, bundle: Bundle,
                                             cid: str) -> None:
    cfg = base_config()
    cfg["process"]["cwd"] = "relative"
    bundle.write(cfg)
    with pytest.raises(ConfigError, match="process.cwd"):
        api.create(cid, str(bundle.path), root=root)
    assert_nothing_left(runtime, cid, bundle)
    bundle.write(base_config(args=["/no/such/program"]))
    with pytest.raises(api.PyociError, match="/no/such/program"):
        api.run(cid, str(bundle.path), root=root)
    assert_nothing_left(runtime, cid, bundle)
