"""The engine-facing hot path (state, kill, start, delete, create, exec, run, pause, resume,
ps, list) must not import jsonschema, pyroute2 or attrs, nor typer/click: each costs tens to
hundreds of milliseconds per call (issue 5). One parser over the command table
(pyoci/cli.py) runs every command: help and usage errors too stay off typer/click."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("jsonschema", "pyroute2", "attr", "attrs", "typer", "click")

_PROBE = """
import sys
before = set(sys.modules)
from pyoci.__main__ import run_argv
try:
    code = run_argv(sys.argv[1:])[0]
except SystemExit as exc:
    code = exc.code
added = sorted(set(sys.modules) - before)
heavy = sorted({m.split('.')[0] for m in added} & set(HEAVY_NAMES))
import json
print(json.dumps({"code": code, "heavy": heavy, "added": added}))
""".replace("HEAVY_NAMES", repr(HEAVY))

#: Standard modules that cost milliseconds each at import on this machine kind (re and
#: json.decoder pull in enum, functools, collections; socket and signal build enums) and
#: that state/kill/start/delete do without (pyoci.jsonio, pyoci.signals, _socket).
SLOW_STDLIB = ("re", "enum", "typing", "json", "collections", "functools", "contextlib",
               "shutil", "subprocess", "socket", "signal", "pathlib", "dataclasses",
               "inspect", "datetime", "tempfile", "selectors", "threading")


def _probe(tmp_path: Path, args: list[str]) -> dict:
    res = subprocess.run([sys.executable, "-c", _PROBE, "--root", str(tmp_path), *args],
                         capture_output=True, text=True, timeout=60)
    return json.loads(res.stdout.strip().splitlines()[-1]) | {"stderr": res.stderr}


@pytest.mark.parametrize("args", [
    ["state", "x"], ["kill", "x", "KILL"], ["kill", "--all", "x", "9"], ["start", "x"],
    ["delete", "--force", "x"], ["delete", "x"], ["pause", "x"], ["resume", "x"],
    ["ps", "--format", "json", "x"], ["--log-format", "json", "state", "x"],
    ["--log-format=json", "delete", "--force", "x"],
    ["list"], ["list", "-q"], ["list", "--format", "json"], ["--version"], ["-v"],
    ["create", "--bundle", "/nonexistent", "x"], ["run", "-b", "/nonexistent", "x"],
    ["exec", "x", "true"], ["exec", "-e", "A=1", "--cap", "CAP_KILL", "x", "true"],
    ["ps", "x"], ["--help"], ["state", "--help"], ["help", "exec"], ["state"],
    ["completion", "bash"],
])
def test_no_heavy_imports(tmp_path: Path, args: list[str]) -> None:
    out = _probe(tmp_path, args)
    assert out["heavy"] == [], f"{args} imported {out['heavy']}"


@pytest.mark.parametrize("args", [
    ["state", "x"], ["kill", "x", "KILL"], ["start", "x"], ["delete", "--force", "x"],
    ["delete", "x"], ["pause", "x"], ["ps", "--format", "json", "x"],
    ["--log-format", "json", "--log", "LOG", "state", "x"],
    ["create", "--bundle", "/nonexistent", "x"], ["exec", "--env", "A=1", "x", "true"],
    ["run", "--bundle", "/nonexistent", "x"], ["resume", "x"], ["list"],
    ["ps", "x"], ["state"], ["state", "--bogus", "x"],
])
def test_hot_path_stays_off_slow_stdlib_modules(tmp_path: Path, args: list[str]) -> None:
    """What engines call per container must not pay for re/enum/typing/json (issue 5):
    ~8-15 ms each here, against runc's ~5 ms for a whole `state`. The error path (no such
    container, a log line) is checked too: it is what `delete --force` of a missing id
    takes for podman."""
    args = [str(tmp_path / "log") if a == "LOG" else a for a in args]
    out = _probe(tmp_path, args)
    slow = sorted({m.split(".")[0] for m in out["added"]} & set(SLOW_STDLIB))
    assert slow == [], f"{args} imported {slow}"
    assert out["added"], "the probe saw no import at all: it cannot fail"


@pytest.mark.parametrize(("args", "code", "stderr"), [
    (["state", "--help"], 0, ""),
    (["help", "run"], 0, ""),
    (["state"], 1, "pyoci: state: missing argument CONTAINER_ID"),
    (["list", "--format", "yaml"], 1, "pyoci: list: invalid value for --format: 'yaml'"),
    (["state", "--bogus", "x"], 1, "pyoci: state: no such option --bogus"),
    (["kill", "a", "b", "c"], 1, "pyoci: kill: unexpected extra argument 'c'"),
    (["nosuch"], 1, "pyoci: no such command 'nosuch'"),
])
def test_help_and_usage_errors_without_typer(tmp_path: Path, args: list[str], code: int,
                                             stderr: str) -> None:
    """Help and usage errors come from the same table and parser as the commands (before,
    they went to typer, ~40 ms): runc's exit status 1, one line naming the command."""
    out = _probe(tmp_path, args)
    assert out["code"] == code, out
    assert out["heavy"] == [], f"{args} imported {out['heavy']}"
    if stderr:
        assert out["stderr"].startswith(stderr) and out["stderr"].count("\n") == 1, out
    else:
        assert out["stderr"] == "", out


def test_run_cli_and_main_say_the_same(tmp_path: Path) -> None:
    fast = _probe(tmp_path, ["state", "missing"])
    full = subprocess.run([sys.executable, "-c", "import sys\nfrom pyoci.cli import run_cli\n"
                           "sys.exit(run_cli(sys.argv[1:]))", "--root", str(tmp_path),
                           "state", "missing"], capture_output=True, text=True, timeout=60)
    assert fast["code"] == full.returncode == 1
    assert fast["stderr"] == full.stderr == 'pyoci: container "missing" does not exist\n'


def test_fast_exit_flushes_what_it_printed(tmp_path: Path) -> None:
    """main() leaves the fast path with os._exit: stdout and stderr must be complete, and
    the status the command's. (A state written by hand: no container needs to run.)"""
    d = tmp_path / "c1"
    d.mkdir()
    (d / "state.json").write_text(json.dumps({
        "ociVersion": "1.3.0", "id": "c1", "status": "stopped", "pid": 0,
        "bundle": "/b", "rootfs": "/b/rootfs", "created": "x", "owner": "root",
        "annotations": {f"k{i}": "v" * 100 for i in range(200)}}))
    ok = subprocess.run([sys.executable, "-m", "pyoci", "--root", str(tmp_path), "state", "c1"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["annotations"]["k199"] == "v" * 100  # ~25 kB, all there
    bad = subprocess.run([sys.executable, "-m", "pyoci", "--root", str(tmp_path), "state", "x"],
                         capture_output=True, text=True, timeout=60)
    assert (bad.returncode, bad.stderr) == (1, 'pyoci: container "x" does not exist\n')


#: What a module of the hot path must not pull in (issue 16, measured ~0.1 ms per module
#: on this machine kind): exec does not need the container init's executors nor the cgroup
#: manager; the commands that only read or signal a container do not need pyoci.record
#: (state.json's records are written out) nor the cgroup manager.
_NOT_IMPORTED = {
    "pyoci.exec_parent": ("pyoci.init", "pyoci.executors.mounts", "pyoci.executors.devices",
                          "pyoci.executors.paths", "pyoci.executors.hooks",
                          "pyoci.cgroups.manager", "pyoci.config.check"),
    "pyoci.operations.query": ("pyoci.record", "pyoci.cgroups.manager", "pyoci.rootless"),
    "pyoci.operations.start": ("pyoci.record", "pyoci.cgroups.manager"),
    "pyoci.operations.kill": ("pyoci.record",),
    "pyoci.cli": ("pyoci.record", "pyoci.rootless", "pyoci.clihelp", "pyoci.state"),
}


@pytest.mark.parametrize("module", sorted(_NOT_IMPORTED))
def test_module_stays_off_what_it_does_not_need(module: str) -> None:
    code = (f"import sys\nimport {module}\n"
            f"print(' '.join(m for m in {_NOT_IMPORTED[module]!r} if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "", f"{module} imports {res.stdout.strip()}"
