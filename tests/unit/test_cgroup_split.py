"""The cgroup managers after the v1/v2 split (issue 14 item 8): one interface, a v1 and a
v2 implementation, hybrid their composition; and the record in state.json as the
pre-split manager wrote it still drives them (containers created before the change must
stay deletable)."""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any

import pytest

from pyoci.cgroups import manager_from_state
from pyoci.cgroups.hybrid import HybridManager
from pyoci.cgroups.manager import CgroupManager
from pyoci.cgroups.v1 import V1Manager
from pyoci.cgroups.v2 import V2Manager


def _old_record(mode: str, top: Path) -> dict[str, Any]:
    """A record exactly as the pre-split ``Manager.to_state`` wrote it after a successful
    create of ``a/c1`` (``a`` made by that create), key for key."""
    v1 = {} if mode == "v2" else {
        "cpu": f"{top}/cpu,cpuacct/a/c1", "cpuacct": f"{top}/cpu,cpuacct/a/c1",
        "freezer": f"{top}/freezer/a/c1", "memory": f"{top}/memory/a/c1",
        "pids": f"{top}/pids/a/c1", "name=systemd": f"{top}/systemd/a/c1"}
    unified = None if mode == "v1" else f"{top}/unified/a/c1"
    parents = sorted({os.path.dirname(d) for d in v1.values()}
                     | ({os.path.dirname(unified)} if unified else set()))
    return {"mode": mode, "v1": v1, "unified": unified,
            "unified_mount": None if unified is None else f"{top}/unified",
            "unified_base": None if unified is None else f"{top}/unified",
            "created": True, "parents": parents, "planned": []}


def _make_tree(doc: dict[str, Any]) -> list[str]:
    """The directories the record names, with the files the managers read."""
    dirs = sorted(set(doc["v1"].values()) | ({doc["unified"]} if doc["unified"] else set()))
    for d in dirs:
        os.makedirs(d)
        Path(d, "cgroup.procs").write_text("")
    if "freezer" in doc["v1"]:
        Path(doc["v1"]["freezer"], "freezer.state").write_text("THAWED\n")
    if doc["unified"]:
        Path(doc["unified"], "cgroup.events").write_text("populated 0\nfrozen 0\n")
        Path(doc["unified"], "cgroup.procs").write_text("4242\n")
    return dirs


def _exited(dirs: list[str]) -> None:
    """The container has exited: on cgroupfs the interface files go with the directory;
    here they are plain files, so they are removed for rmdir to work."""
    for d in dirs:
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))


@pytest.mark.parametrize(("mode", "cls"), [("v1", V1Manager), ("v2", V2Manager),
                                           ("hybrid", HybridManager)])
def test_pre_split_record_round_trips_and_deletes(tmp_path: Path, mode: str,
                                                  cls: type[CgroupManager]) -> None:
    """The record's format is unchanged: read back, it names the same directories and is
    written out identical; destroy removes the container's directories and the levels
    its create made."""
    doc = _old_record(mode, tmp_path)
    dirs = _make_tree(doc)
    m = manager_from_state(json.loads(json.dumps(doc)))
    assert type(m) is cls and m.mode == mode
    assert m.to_state() == doc
    assert sorted(m.directories()) == dirs
    assert m.exists() and not m.frozen()
    assert m.pids() == ([4242] if doc["unified"] else [])
    _exited(dirs)
    m.destroy()
    assert not any(os.path.exists(d) for d in dirs + doc["parents"])


@pytest.mark.parametrize("mode", ["v1", "v2", "hybrid"])
def test_record_from_before_created_and_parents(tmp_path: Path, mode: str) -> None:
    """Older still: only mode/v1/unified/unified_mount. The directories are the
    container's; no ancestor is removed."""
    full = _old_record(mode, tmp_path)
    doc = {k: full[k] for k in ("mode", "v1", "unified", "unified_mount")}
    dirs = _make_tree(full)
    m = manager_from_state(doc)
    assert m.created and m.parents == [] and m.exists()
    _exited(dirs)
    m.destroy()
    assert not any(os.path.exists(d) for d in dirs)
    assert all(os.path.isdir(p) for p in full["parents"])


def test_interrupted_create_record_removes_only_what_was_planned(tmp_path: Path) -> None:
    """``created: false`` with ``planned``: only the planned levels go, never recursively."""
    doc = _old_record("hybrid", tmp_path) | {"created": False, "parents": []}
    made = f"{tmp_path}/memory/a/c1"
    os.makedirs(made)
    os.makedirs(f"{tmp_path}/pids/a/other")
    doc["planned"] = [f"{tmp_path}/memory/a", made, f"{tmp_path}/pids/a"]
    m = manager_from_state(doc)
    assert not m.exists()
    m.destroy()
    assert not os.path.exists(f"{tmp_path}/memory/a")
    assert os.path.isdir(f"{tmp_path}/pids/a/other")   # not empty: someone else's


@pytest.mark.parametrize("cls", [V1Manager, V2Manager, HybridManager])
def test_each_layout_implements_the_whole_interface(cls: type[CgroupManager]) -> None:
    assert issubclass(cls, CgroupManager) and not inspect.isabstract(cls)


def test_hybrid_decides_every_operation_both_define() -> None:
    """HybridManager inherits V1Manager and V2Manager: an operation both define must be
    stated in HybridManager (which one applies, or how they combine), never left to the
    method resolution order, which would silently pick v1's."""
    def own(cls: type) -> set[str]:
        return {n for n, v in vars(cls).items() if callable(v) and n != "__init__"}

    both = own(V1Manager) & own(V2Manager)
    assert both, "the implementations share no operation?"
    assert both <= set(vars(HybridManager)), sorted(both - set(vars(HybridManager)))
