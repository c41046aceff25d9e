"""tests/run.sh runs every stage even when one fails, reports each, and exits 1 at the end
if any failed (issue 12: the conformance suite never ran after a pytest failure).

Run against a copy of the script with stand-ins for bootstrap.sh and the venv's python, so
nothing real is installed or tested here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO

FAKE_PYTHON = """#!/bin/sh
echo "$*" >> "$CALLS"
case "$*" in
  *"ruff check"*) exit "${RUFF_RC:-0}";;
  *"-m mypy"*) exit "${MYPY_RC:-0}";;
  *"pytest conformance"*) exit "${CONF_RC:-0}";;
  *"pytest tests"*) exit "${PYTEST_RC:-0}";;
esac
exit 99
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    if shutil.which("sh") is None:
        pytest.skip("no sh")
    (tmp_path / "tests").mkdir()
    shutil.copy(REPO / "tests" / "run.sh", tmp_path / "tests" / "run.sh")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "bootstrap.sh").write_text('exit "${BOOT_RC:-0}"\n')
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").write_text(FAKE_PYTHON)
    (venv / "python").chmod(0o755)
    return tmp_path


def run(tree: Path, *args: str, **rcs: int) -> tuple[subprocess.CompletedProcess, list[str]]:
    calls = tree / "calls"
    calls.write_text("")
    env = {**os.environ, "CALLS": str(calls), **{k: str(v) for k, v in rcs.items()}}
    res = subprocess.run(["sh", str(tree / "tests" / "run.sh"), *args], env=env,
                         capture_output=True, text=True, timeout=60)
    return res, calls.read_text().splitlines()


def test_all_stages_pass(tree: Path) -> None:
    res, calls = run(tree, "-k", "x")
    assert res.returncode == 0, res.stderr
    assert len(calls) == 4
    assert calls[2].endswith("-k x")  # the arguments go to pytest
    assert "every stage passed" in res.stdout


@pytest.mark.parametrize("failing", ["RUFF_RC", "MYPY_RC", "PYTEST_RC", "CONF_RC"])
def test_a_failing_stage_does_not_stop_the_others(tree: Path, failing: str) -> None:
    res, calls = run(tree, **{failing: 3})
    assert res.returncode == 1
    assert len(calls) == 4, calls  # every stage ran
    assert res.stdout.count("FAILED") == 1 and "(exit status 3)" in res.stdout
    assert res.stdout.count("  ok  ") == 3


def test_every_failure_is_reported(tree: Path) -> None:
    res, calls = run(tree, RUFF_RC=1, MYPY_RC=1, PYTEST_RC=1, CONF_RC=2)
    assert res.returncode == 1 and len(calls) == 4
    assert res.stdout.count("FAILED") == 4


def test_failing_setup_stops_the_run(tree: Path) -> None:
    res, calls = run(tree, BOOT_RC=4)
    assert res.returncode == 4 and calls == []
