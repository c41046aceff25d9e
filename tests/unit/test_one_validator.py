"""pyoci/config/check.py, the one checker validate, create, exec --process and update
--resources share (issue 14 item 1): each rule of its stages, every problem at once,
warnings apart from errors, and no ctypes in validation (issue 14 item 7)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pyoci.config.check import (
    _as_problem,
    check,
    check_console,
    check_process,
    check_resources,
    unsupported_problems,
)
from pyoci.errors import ConfigError, PyociError
from tests.helpers import base_config

REPO = Path(__file__).resolve().parents[2]


def _cfg(**linux: Any) -> dict[str, Any]:
    cfg = base_config()
    cfg["linux"].update(linux)
    return cfg


def _problems(doc: dict[str, Any], **kw: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        check(doc, None, **kw)
    return info.value.problems


def test_a_valid_config_passes_with_its_model() -> None:
    checked = check(base_config(), None)
    assert checked.spec.process is not None and checked.warnings == []
    assert checked.seccomp is None and checked.net is None


@pytest.mark.parametrize(("linux", "path", "text"), [
    ({"intelRdt": {"closID": "x"}}, "linux.intelRdt", "remove the field to run without it"),
    ({"memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0"}}, "linux.memoryPolicy",
     "NUMA memory policies are not applied"),
])
def test_unsupported_linux_fields_are_refused(linux: dict[str, Any], path: str,
                                              text: str) -> None:
    for host in (True, False):
        problems = _problems(_cfg(**linux), host=host)
        assert [p for p in problems if p[0] == path and text in p[1]], problems


def test_intel_rdt_reason_names_the_host_only_when_it_is_checked() -> None:
    doc = _cfg(intelRdt={"closID": "x"})
    assert "pyoci does not apply" in unsupported_problems(doc, host=False)[0][1]
    if not Path("/sys/fs/resctrl/info").is_dir():
        assert "no resctrl filesystem" in unsupported_problems(doc, host=True)[0][1]


def test_id_mapped_mount_is_refused_by_index() -> None:
    doc = base_config()
    doc["mounts"].append({"destination": "/m", "type": "bind", "source": "/tmp",
                          "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}],
                          "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]})
    problems = _problems(doc)
    assert (f"mounts[{len(doc['mounts']) - 1}]", "id-mapped mounts (uidMappings/"
            "gidMappings) are not supported by this build of pyoci") in problems


def test_host_rules_run_only_with_host() -> None:
    doc = _cfg(netDevices={"dummy0": {}})
    doc["linux"]["namespaces"] = [n for n in doc["linux"]["namespaces"]
                                  if n["type"] != "network"]
    problems = _problems(doc)
    assert [p for p in problems if p[0] == "linux.netDevices"
            and "no network namespace" in p[1]], problems
    assert check(doc, None, host=False).spec.linux.net_devices


def test_every_problem_at_once_across_the_stages() -> None:
    doc = _cfg(memoryPolicy={"mode": "MPOL_BIND", "nodes": "0"})
    doc["linux"]["namespaces"].append({"type": "pid"})
    doc["annotations"] = {"org.pyoci.network": "a/b"}
    doc["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}
    paths = {p for p, _ in _problems(doc)}
    assert {"linux.memoryPolicy", "linux.namespaces[5].type",
            "annotations.org.pyoci.network", "linux.seccomp.syscalls[0].errnoRet"} <= paths


def test_a_malformed_document_stops_before_the_model() -> None:
    doc = _cfg(memoryPolicy={"mode": "MPOL_BIND", "nodes": "0"})
    doc["process"]["args"] = "sh"
    doc["linux"]["netDevices"] = {"a/b": {}}  # a host rule: never reached
    paths = {p for p, _ in _problems(doc)}
    assert "process.args" in paths and "linux.memoryPolicy" in paths
    assert not any(p.startswith("linux.netDevices") for p in paths)


def test_warnings_are_apart_from_errors() -> None:
    doc = base_config()
    doc["process"]["capabilities"] = {"bounding": ["CAP_KILL", "CAP_MADE_UP"]}
    doc["mounts"].append({"destination": "rel", "type": "tmpfs", "source": "tmpfs"})
    checked = check(doc, None)
    assert any(w.startswith("process.capabilities.bounding[1]: CAP_MADE_UP")
               for w in checked.warnings), checked.warnings
    assert any(w.startswith(f"mounts[{len(doc['mounts']) - 1}].destination: 'rel'")
               for w in checked.warnings), checked.warnings
    # The capability names depend on this kernel; the destination on the document only.
    assert [w.split(":")[0] for w in check(doc, None, host=False).warnings] == [
        f"mounts[{len(doc['mounts']) - 1}].destination"]


def test_create_logs_the_same_findings(capsys: pytest.CaptureFixture[str]) -> None:
    doc = base_config()
    doc["process"]["capabilities"] = {"bounding": ["CAP_MADE_UP"]}
    check(doc, None).log()
    err = capsys.readouterr().err
    assert "process.capabilities: ignoring unknown or unavailable capabilities " \
           "CAP_MADE_UP" in err


@pytest.mark.parametrize(("exc", "expected"), [
    (PyociError("linux.netDevices.x: bad name"), [("linux.netDevices.x", "bad name")]),
    (PyociError("linux.seccomp cannot be applied on this system: a: b"),
     [("linux.seccomp", "linux.seccomp cannot be applied on this system: a: b")]),
    (ConfigError([("a", "b"), ("c", "d")]), [("a", "b"), ("c", "d")]),
])
def test_host_refusals_join_the_list_with_their_path(exc: PyociError,
                                                     expected: list[tuple[str, str]]) -> None:
    assert _as_problem(exc, "linux.seccomp") == expected


@pytest.mark.parametrize(("terminal", "socket", "sink", "text"), [
    (True, None, False, "needs --console-socket"),
    (False, "/tmp/s", False, "there is no terminal to send"),
])
def test_console_rules(terminal: bool, socket: str | None, sink: bool, text: str) -> None:
    with pytest.raises(PyociError, match=text):
        check_console(terminal, socket, sink)


@pytest.mark.parametrize(("terminal", "socket", "sink"), [
    (True, "/tmp/s", False), (True, None, True), (False, None, False)])
def test_console_rules_pass(terminal: bool, socket: str | None, sink: bool) -> None:
    check_console(terminal, socket, sink)


def test_exec_process_file_gets_creates_rules(tmp_path: Path) -> None:
    """Before, exec --process checked only the schema: an unknown or inverted rlimit, a
    bad scheduler reached the container's setup."""
    proc = copy.deepcopy(base_config()["process"])
    proc["rlimits"] = [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1},
                       {"type": "RLIMIT_NOFILE", "soft": 9, "hard": 1}]
    proc["scheduler"] = {"policy": "SCHED_OTHER", "priority": 5}
    path = tmp_path / "process.json"
    path.write_text(json.dumps(proc))
    with pytest.raises(ConfigError) as info:
        check_process("--process", str(path))
    assert info.value.source == f"--process {path}"
    assert {p for p, _ in info.value.problems} == {"rlimits[0].type", "rlimits[1]",
                                                   "scheduler.priority"}
    proc["rlimits"], proc["scheduler"] = [], {"policy": "SCHED_OTHER"}
    path.write_text(json.dumps(proc))
    assert check_process("--process", str(path)).cwd == "/"


def test_update_resources_document(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"pids": {"limit": "x"}}))
    with pytest.raises(ConfigError, match="pids.limit"):
        check_resources("--resources", str(path))
    path.write_text(json.dumps({"pids": {"limit": 5}}))
    assert check_resources("--resources", str(path)) == {"pids": {"limit": 5}}


def test_validation_imports_no_ctypes() -> None:
    """Issue 14 item 7: checking a document (stage 1) needs no syscall layer."""
    code = ("import sys\nfrom pyoci.config.check import check\n"
            "from tests.helpers import base_config\n"
            "check(base_config(), None, host=False)\n"
            "print(sorted(m for m in sys.modules if m == 'ctypes' "
            "or m.startswith('pyoci.executors') or m == 'pyoci.syscalls'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert out.strip() == "[]", out
