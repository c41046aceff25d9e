"""The engine tests' own machinery, without engines: the runc comparison must catch a
difference (else every pyoci variant would pass vacuously), and the subprocess runner must
keep a terminal's bytes and bound every command in time."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.engines.containerd_engine import exit_code_of_rm
from tests.engines.support import RUNC, OciRuntime, Reference, Result, run

PYOCI = OciRuntime("pyoci", Path("/nonexistent/pyoci"), Path("/nonexistent/state"))


def _res(rc: int, out: str, err: str = "") -> Result:
    return Result(("x",), rc, out, err)


def test_reference_catches_a_difference() -> None:
    ref = Reference()
    ref.compare("s", RUNC, {"run": _res(3, "hi\n"), "_detail": _res(0, "id-1")}, lambda rt: {})
    ref.compare("s", PYOCI, {"run": _res(3, "hi\n", "other words"),
                             "_detail": _res(0, "id-2")}, lambda rt: {})
    with pytest.raises(AssertionError, match="run: runc \\(3, 'hi\\\\n'\\) / pyoci \\(1, ''\\)"):
        ref.compare("s", PYOCI, {"run": _res(1, ""), "_detail": _res(0, "id-3")},
                    lambda rt: {})


def test_reference_runs_runc_when_its_variant_did_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.engines.support.runtime_by_name", lambda name: RUNC)
    seen: list[str] = []

    def produce(rt: OciRuntime) -> dict[str, object]:
        seen.append(rt.name)
        return {"count": 2}

    ref = Reference()
    with pytest.raises(AssertionError, match="count"):
        ref.compare("t", PYOCI, {"count": 1}, produce)
    ref.compare("t", PYOCI, {"count": 2}, produce)
    assert seen == ["runc"]  # made once, kept for the session


def test_run_keeps_terminal_bytes_and_exit_status() -> None:
    res = run([sys.executable, "-c", "import sys; sys.stdout.write('a\\r\\n'); sys.exit(4)"])
    assert res.observed() == (4, "a\r\n")


def test_run_times_out() -> None:
    with pytest.raises(AssertionError, match="timed out after 0.5s"):
        run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)


def test_exit_code_from_ctr_task_rm_warning() -> None:
    warn = 'time="..." level=warning msg="task c1 exit with non-zero exit code 7"\n'
    assert exit_code_of_rm(_res(0, "", warn)) == 7
    assert exit_code_of_rm(_res(0, "")) == 0
    assert exit_code_of_rm(_res(1, "", "ctr: no such task")) is None
