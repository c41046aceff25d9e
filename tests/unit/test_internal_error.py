"""A pyoci bug ends in one line on stderr and exit 1, never a traceback (the guide);
PYOCI_TRACEBACK=1 shows it for whoever debugs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CODE = ("import sys; sys.argv = ['pyoci', 'state', 'x']\n"
        "import pyoci.cli as m\n"
        "def boom(argv):\n    raise TypeError('boom')\n"
        "m.run_argv = boom\nm.main()\n")


def _run(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO), **env})


def test_a_bug_is_one_line_and_exit_1() -> None:
    proc = _run(PYOCI_TRACEBACK="0")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == ("pyoci: internal error: TypeError: boom (a pyoci bug; "
                                   "PYOCI_TRACEBACK=1 shows where)")


def test_the_traceback_is_there_when_asked_for() -> None:
    proc = _run(PYOCI_TRACEBACK="1")
    assert proc.returncode == 1 and "Traceback" in proc.stderr
