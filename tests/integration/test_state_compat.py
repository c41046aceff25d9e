"""state.json across an upgrade (issue 14, item 5): a container whose record was written by
pyoci before the typed record (pyoci/state.py) -- or by an older one still, whose
cgroup record had no created/parents/unified_base/planned -- is shown, paused and deleted
as before, with nothing left behind; and what this version writes has the keys, in the
order, that the older versions read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Bundle, Runtime, assert_nothing_left, base_config

pytestmark = pytest.mark.integration

#: The key layout pyoci wrote at commit c0d0b5e (before the typed record), by a real create
#: with hooks and resources; the cgroup record's keys as that version wrote them.
OLD_KEYS = ["ociVersion", "id", "status", "pid", "bundle", "rootfs", "created", "owner",
            "annotations", "pyoci"]
OLD_PRIVATE_KEYS = ["initStartTime", "newPidNamespace", "hooks", "configOciVersion",
                    "cgroup", "resources"]
OLD_CGROUP_KEYS = ["mode", "v1", "unified", "unified_mount", "unified_base", "created",
                   "parents", "planned"]


def _state_file(runtime: Runtime, cid: str) -> Path:
    return runtime.root / cid / "state.json"


def _make(runtime: Runtime, bundle: Bundle, cid: str) -> dict[str, Any]:
    cfg = base_config(args=["sleep", "300"])
    cfg["hooks"] = {"poststop": [{"path": "/bin/true"}]}
    cfg["linux"]["resources"] = {"pids": {"limit": 50}}
    bundle.write(cfg)
    runtime("create", "-b", str(bundle.path), cid, check=True)
    doc: dict[str, Any] = json.loads(_state_file(runtime, cid).read_text())
    return doc


def test_written_record_has_the_old_layout(runtime: Runtime, bundle: Bundle) -> None:
    doc = _make(runtime, bundle, "s19compat-a")
    assert list(doc) == OLD_KEYS
    assert list(doc["pyoci"]) == OLD_PRIVATE_KEYS
    assert list(doc["pyoci"]["cgroup"]) == OLD_CGROUP_KEYS
    assert doc["pyoci"]["hooks"] == {"poststart": [], "poststop": [{"path": "/bin/true"}]}
    recovery = json.loads((runtime.root / "s19compat-a" / "recovery.json").read_text())
    assert list(recovery) == ["id", "pid", "initStartTime", "newPidNamespace", "cgroup",
                              "network"]
    runtime("delete", "--force", "s19compat-a", check=True)
    assert_nothing_left(runtime, "s19compat-a", bundle)


@pytest.mark.parametrize("older", [False, True])
def test_record_of_an_older_version_shows_pauses_and_deletes(runtime: Runtime, bundle: Bundle,
                                                             older: bool) -> None:
    cid = f"s19compat-{'b' if older else 'c'}"
    doc = _make(runtime, bundle, cid)
    before = runtime("state", cid, check=True).stdout
    if older:
        # A cgroup record from before created/parents/unified_base/planned existed.
        doc["pyoci"]["cgroup"] = {k: doc["pyoci"]["cgroup"][k]
                                  for k in ("mode", "v1", "unified", "unified_mount")}
    # Written as that version wrote it: json.dumps, compact.
    _state_file(runtime, cid).write_text(json.dumps(doc))
    assert runtime("state", cid, check=True).stdout == before, "state output changed"
    runtime("start", cid, check=True)
    runtime("pause", cid, check=True)
    assert runtime.state(cid)["status"] == "paused"
    runtime("resume", cid, check=True)
    assert runtime.state(cid)["status"] == "running"
    res = runtime("delete", "--force", cid)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert_nothing_left(runtime, cid, bundle)
