"""runc command-line compatibility.

runtime.md "Operations": "Note: these operations are not specifying any
command-line APIs, and the parameters are inputs for general operations." --
so nothing in this file is a runtime-spec requirement; it pins down the runc
CLI that pyoci promises to mirror (and that every other case relies on)."""

from __future__ import annotations

import json
import time

import pytest

from .harness import WAIT_FOR_GO, wait_until


@pytest.mark.parametrize("sig", ["USR1", "SIGUSR1", "10"])
def test_kill_signal_spellings(runtime, bundle, sig):
    """runtime.md "Kill": "This operation MUST send the specified signal to
    the container process." runc CLI: ``kill ID SIGNAL`` takes a name with or
    without SIG, or a number."""
    bundle.mount_out().sh(
        "trap 'echo got > /out/sig; exit 0' USR1; echo up > /out/up; "
        "while :; do sleep 0.05; done"
    )
    runtime.create(bundle)
    runtime.start(bundle.cid)
    assert wait_until(lambda: (bundle.out / "up").exists())
    runtime.kill(bundle.cid, sig)
    assert wait_until(lambda: (bundle.out / "sig").exists()), f"{sig} not delivered"


def test_kill_default_signal_is_term(runtime, bundle):
    """runc CLI: ``kill ID`` without a signal sends SIGTERM."""
    bundle.mount_out().sh(
        "trap 'echo term > /out/sig; exit 0' TERM; echo up > /out/up; "
        "while :; do sleep 0.05; done"
    )
    runtime.create(bundle)
    runtime.start(bundle.cid)
    assert wait_until(lambda: (bundle.out / "up").exists())
    runtime.kill(bundle.cid, None)
    assert wait_until(lambda: (bundle.out / "sig").exists()), "SIGTERM not delivered"


def test_errors_exit_1(runtime):
    """runc CLI: a failing command exits with status 1."""
    res = runtime("state", runtime.new_id())
    assert res.rc == 1, str(res)


def test_run_detach(runtime, bundle):
    """runc CLI: ``run --detach`` creates and starts the container and
    returns at once, leaving it running."""
    bundle.mount_out().sh(WAIT_FOR_GO)
    t0 = time.monotonic()
    res = runtime.run(bundle, detach=True)
    assert res.rc == 0, str(res)
    assert time.monotonic() - t0 < 10
    assert runtime.state(bundle.cid)["status"] == "running"
    (bundle.out / "go").touch()
    assert runtime.wait_status(bundle.cid, "stopped") == "stopped"


def test_run_passes_stdio_through(runtime, bundle):
    """runc CLI: with process.terminal false the container process inherits
    the runtime's stdout and stderr (the suite reads results this way)."""
    bundle.sh("echo to-stdout; echo to-stderr >&2")
    res = runtime.run(bundle)
    assert res.rc == 0, str(res)
    assert res.out == "to-stdout\n"
    assert "to-stderr\n" in res.err


def test_create_pid_file(runtime, bundle, tmp_path):
    """runc CLI: ``create --pid-file F`` writes the container process's host
    pid (the state's pid) to F."""
    pid_file = tmp_path / "container.pid"
    bundle.config["process"]["args"] = ["sleep", "60"]
    runtime.create(bundle, extra=("--pid-file", str(pid_file)))
    assert int(pid_file.read_text().strip()) == runtime.state(bundle.cid)["pid"]


def test_list_shows_containers(runtime, bundle, make_extra_bundle):
    """runc CLI: ``list`` prints a header and one row per container, the id
    first and the status among the columns."""
    bundle.config["process"]["args"] = ["sleep", "60"]
    other = make_extra_bundle()
    other.config["process"]["args"] = ["sleep", "60"]
    runtime.create(bundle)
    runtime.create(other)
    runtime.start(other.cid)
    res = runtime("list")
    assert res.ok, str(res)
    rows = {ln.split()[0]: ln.split() for ln in res.out.splitlines()[1:] if ln.strip()}
    assert set(rows) == {bundle.cid, other.cid}, res.out
    assert "created" in rows[bundle.cid] and "running" in rows[other.cid], res.out


def test_log_format_json(runtime):
    """runc CLI: ``--log FILE --log-format json`` writes errors as JSON
    objects, one per line, with "level" and "msg"."""
    res = runtime("state", runtime.new_id(), global_args=("--log-format", "json"))
    assert res.rc != 0
    lines = [ln for ln in res.log.splitlines() if ln.strip()]
    assert lines, f"nothing logged\n{res}"
    for line in lines:
        entry = json.loads(line)
        assert "msg" in entry and "level" in entry, entry
    assert any(json.loads(ln)["level"] == "error" for ln in lines)


def test_spec_writes_config(runtime, tmp_path):
    """runc CLI: ``spec`` writes a default config.json into the current
    directory."""
    where = tmp_path / "spec"
    where.mkdir()
    res = runtime("spec", cwd=where)
    assert res.ok, str(res)
    config = json.loads((where / "config.json").read_text())
    assert isinstance(config.get("ociVersion"), str)
    assert config["root"]["path"] == "rootfs"
    assert config["process"]["args"]
