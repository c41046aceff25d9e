"""The Python API's contract without containers (tests/integration/test_api.py runs
real ones): a cheap import, the CLI's messages as typed errors, nothing printed."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from pyoci import api, log
from pyoci.errors import ContainerNotFound, PyociError


def test_import_is_cheap() -> None:
    """`import pyoci.api` pulls in neither the operations nor any slow stdlib module, so a
    tool asking only for `state` never pays for create's imports (issue 5)."""
    probe = ("import sys; before = set(sys.modules); import pyoci.api; "
             "added = sorted(set(sys.modules) - before); import json; print(json.dumps(added))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    added = json.loads(out.stdout)
    assert set(added) <= {"pyoci", "pyoci.api", "pyoci.errors", "pyoci.record", "errno",
                          "__future__"}, added


def test_missing_container_is_typed_with_the_cli_message(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    for call in (api.state, api.start, api.kill, api.delete, api.pause, api.ps, api.stats):
        with pytest.raises(ContainerNotFound, match='container "nope" does not exist'):
            call("nope", root=str(tmp_path))
    with pytest.raises(ContainerNotFound):
        api.exec("nope", ["true"], root=str(tmp_path))
    with pytest.raises(ContainerNotFound):
        api.events("nope", root=str(tmp_path))
    api.delete("nope", root=str(tmp_path), force=True)  # runc: --force on nothing is fine
    assert capfd.readouterr() == ("", "")
    assert log.sink is None


def test_bad_id_and_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(PyociError, match="invalid container id"):
        api.state("../x", root=str(tmp_path))
    with pytest.raises(PyociError, match="must be greater than zero"):
        api.events("x", root=str(tmp_path), interval=0)
    with pytest.raises(PyociError, match="tty=True needs console_socket"):
        api.exec("x", ["sh"], root=str(tmp_path), tty=True)


def test_default_root_follows_rootless(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyoci import rootless

    monkeypatch.setattr(rootless, "default_root", lambda: "/nonexistent/pyoci-api-root")
    assert api.list_containers() == []  # a missing root: no containers, as the CLI's list


def test_warnings_go_to_logging_not_stderr(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                           caplog: pytest.LogCaptureFixture) -> None:
    """A damaged record is skipped by list with a warning (runc's "load container"): the
    API hands it to the "pyoci" logger and writes nothing itself."""
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "state.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="pyoci"):
        assert api.list_containers(root=str(tmp_path)) == []
    assert capfd.readouterr() == ("", "")
    assert any("load container bad" in r.getMessage() and r.name == "pyoci"
               for r in caplog.records)
    assert log.sink is None


def test_oserror_becomes_pyocierror(tmp_path: Path) -> None:
    """An OSError no operation explained still reaches the caller as a PyociError naming
    the file (the CLI prints the same line)."""
    root = tmp_path / "root"
    root.write_text("")  # a file where the state root should be a directory
    with pytest.raises(PyociError):
        api.list_containers(root=str(root))


def test_records_are_frozen() -> None:
    st = api.ExitStatus(pid=5, status=137, signal=9)
    assert not st.ok and api.ExitStatus(1, 0).ok
    with pytest.raises(AttributeError):
        st.status = 0  # type: ignore[misc]
    assert api.ContainerState("c", "running", 3, "/b") == api.ContainerState("c", "running",
                                                                             3, "/b")
