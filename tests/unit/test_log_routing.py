"""Where pyoci's messages go (issue 12, defect 3): runc's rule, which engines depend on.

With --log, warnings and debug lines go only to the file (during create the runtime's
stderr is the container's stderr under Docker and podman); errors go to the file and to
stderr (go-runc folds stderr into the error containerd's shim matches, and the shim reads
the file's last error line). Without --log, warnings and errors go to stderr.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyoci import log


@pytest.fixture(autouse=True)
def reset() -> Iterator[None]:
    yield
    log.configure(None)


def lines(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_with_log_warnings_stay_off_stderr(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.json"
    log.configure(str(path), "json")
    log.warn("kernel memory limits are deprecated")
    log.info("an info line")
    log.debug("not without --debug")
    assert capsys.readouterr().err == ""
    assert [(e["level"], e["msg"]) for e in lines(path)] == [
        ("warning", "kernel memory limits are deprecated"), ("info", "an info line")]


def test_with_log_errors_go_to_both(tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.json"
    log.configure(str(path), "json")
    assert log.fail(Exception('cannot kill container "c": container not running')) == 1
    assert capsys.readouterr().err == 'pyoci: cannot kill container "c": container not running\n'
    assert lines(path)[-1]["level"] == "error"
    assert "container not running" in lines(path)[-1]["msg"]


def test_with_log_and_debug_debug_lines_stay_off_stderr(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.txt"
    log.configure(str(path), "text", debug=True)
    log.debug("ambient CAP_KILL skipped")
    assert capsys.readouterr().err == ""
    assert 'level=debug msg="ambient CAP_KILL skipped"' in path.read_text()


def test_without_log_warnings_and_errors_go_to_stderr(
        capsys: pytest.CaptureFixture[str]) -> None:
    log.configure(None)
    log.warn("w")
    log.debug("d")
    log.info("i")
    log.error("e")
    assert capsys.readouterr().err == "pyoci: warning: w\npyoci: e\n"


def test_without_log_debug_shows_every_level(capsys: pytest.CaptureFixture[str]) -> None:
    log.configure(None, debug=True)
    log.debug("d")
    log.info("i")
    assert capsys.readouterr().err == "pyoci: debug: d\npyoci: info: i\n"
