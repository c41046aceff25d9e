"""Hooks (config.md "POSIX-platform Hooks" and runtime.md "Lifecycle"): each kind at its
point, in order, with the state on stdin; failures handled as the spec says per kind."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.helpers import Bundle, Runtime, assert_nothing_left, base_config

pytestmark = pytest.mark.integration


def _recorder(tmp_path: Path, log: Path) -> Path:
    """A host-side hook: appends `<kind> <state JSON>` to the log."""
    script = tmp_path / "hook.sh"
    script.write_text(f'#!/bin/sh\nstate=$(cat)\necho "$1 $state" >> {log}\n')
    script.chmod(0o755)
    return script


def _hooks(script: Path, kinds: list[str]) -> dict[str, list[dict]]:
    return {k: [{"path": str(script), "args": ["hook.sh", k]}] for k in kinds}


def _entries(log: Path, skip: str | None = None) -> list[tuple[str, dict]]:
    """(kind, state) per line of the hook log, leaving out lines of kind ``skip``."""
    out = []
    for line in log.read_text().splitlines():
        kind, _, state = line.partition(" ")
        if kind != skip:
            out.append((kind, json.loads(state)))
    return out


def test_all_hooks_in_order_with_state(runtime: Runtime, bundle: Bundle, host_dir: Path,
                                       tmp_path: Path) -> None:
    log = host_dir / "log"
    script = _recorder(tmp_path, log)
    cfg = base_config(args=["sh", "-c", "echo process >> /shared/log"])
    cfg["mounts"].append({"destination": "/shared", "type": "bind", "source": str(host_dir),
                          "options": ["rbind"]})
    cfg["hooks"] = _hooks(script, ["prestart", "createRuntime", "createContainer",
                                   "poststart", "poststop"])
    # startContainer runs in the container after pivot_root: its path is the container's.
    cfg["hooks"]["startContainer"] = [{"path": "/bin/sh", "args": [
        "sh", "-c", 'echo "startContainer $(cat)" >> /shared/log']}]
    bundle.write(cfg)
    runtime("create", "-b", str(bundle.path), "h1", check=True)
    kinds = [k for k, _ in _entries(log)]
    assert kinds == ["prestart", "createRuntime", "createContainer"]
    runtime("start", "h1", check=True)
    deadline = time.monotonic() + 10
    while runtime.state("h1")["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    runtime("delete", "h1", check=True)
    lines = log.read_text().splitlines()
    kinds = [line.split(" ", 1)[0] for line in lines]
    # poststart runs after the process started, so it may come either side of its output.
    assert kinds[:4] == ["prestart", "createRuntime", "createContainer", "startContainer"]
    assert sorted(kinds[4:6]) == ["poststart", "process"]
    assert kinds[6:] == ["poststop"]
    states = dict(_entries(log, skip="process"))
    assert states["createRuntime"]["status"] == "creating"
    assert states["createRuntime"]["id"] == "h1"
    assert states["createRuntime"]["pid"] > 0
    assert states["createRuntime"]["bundle"] == str(bundle.path)
    assert states["poststart"]["status"] == "running"
    assert states["poststop"]["status"] == "stopped"
    assert_nothing_left(runtime, "h1", bundle)


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create_and_runs_poststop(
        runtime: Runtime, bundle: Bundle, tmp_path: Path, kind: str) -> None:
    log = tmp_path / "log"
    script = _recorder(tmp_path, log)
    cfg = base_config(args=["sleep", "300"])
    cfg["hooks"] = _hooks(script, ["poststop"])
    cfg["hooks"][kind] = [{"path": "/bin/sh", "args": ["sh", "-c", "echo broken >&2; exit 7"]}]
    res = runtime("create", "-b", str(bundle.write(cfg).path), "h2")
    assert res.returncode == 1
    assert f"{kind} hook #0 (/bin/sh): exit status 7: broken" in res.stderr
    assert [k for k, _ in _entries(log)] == ["poststop"]
    assert_nothing_left(runtime, "h2", bundle)


def test_failing_start_container_hook_fails_start(runtime: Runtime, bundle: Bundle) -> None:
    cfg = base_config(args=["sleep", "300"])
    cfg["hooks"] = {"startContainer": [{"path": "/bin/false"}]}
    runtime("create", "-b", str(bundle.write(cfg).path), "h3", check=True)
    res = runtime("start", "h3")
    assert res.returncode == 1 and "startContainer hook #0" in res.stderr
    assert runtime.state("h3")["status"] == "stopped"
    runtime("delete", "h3", check=True)
    assert_nothing_left(runtime, "h3", bundle)


def test_failing_poststart_hook_stops_the_container(runtime: Runtime, bundle: Bundle) -> None:
    """runtime.md v1.3.0 "Lifecycle" step 9: an error, the container stopped, and the
    lifecycle continues at step 12 (destroyed). More in test_cli_parity.py."""
    cfg = base_config(args=["sleep", "300"])
    cfg["hooks"] = {"poststart": [{"path": "/bin/false"}]}
    runtime("create", "-b", str(bundle.write(cfg).path), "h4", check=True)
    res = runtime("start", "h4")
    assert res.returncode == 1
    assert "poststart hook #0 (/bin/false): exit status 1" in res.stderr
    assert_nothing_left(runtime, "h4", bundle)


def test_hook_timeout(runtime: Runtime, bundle: Bundle) -> None:
    cfg = base_config()
    cfg["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"],
                                       "timeout": 1}]}
    start = time.monotonic()
    res = runtime("create", "-b", str(bundle.write(cfg).path), "h5")
    assert res.returncode == 1 and "timed out after 1s" in res.stderr
    assert time.monotonic() - start < 20
    assert_nothing_left(runtime, "h5", bundle)


def test_hook_gets_only_its_env(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    out = tmp_path / "env"
    cfg = base_config()
    cfg["hooks"] = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", f"env > {out}"],
                                  "env": ["FOO=bar"]}]}
    runtime("run", "-b", str(bundle.write(cfg).path), "h6", check=True)
    env = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert env.get("FOO") == "bar"
    assert "PYTHONPATH" not in env and "HOME" not in env
