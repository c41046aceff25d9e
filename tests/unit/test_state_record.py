"""The typed state record (pyoci/state.py): one load, one save, and the JSON on disk
compatible both ways with what pyoci wrote before the record existed (issue 14, item 5).

OLD_* are files written by pyoci at commit c0d0b5e (before the typed record), copied from
a real container: a container created before an upgrade must still load and delete, and a
downgrade must read what this version writes, so the bytes must be the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pyoci import jsonio
from pyoci.cgroups import CgroupError, manager_from_record, manager_from_state
from pyoci.state import CgroupRecord, Container, Hooks, PrivateState, StateRecord, UnreadableState

OLD_CREATED = (
    '{"ociVersion": "1.3.0", "id": "s19old-c1", "status": "created", "pid": 8169, '
    '"bundle": "/tmp/s19state/bundle", "rootfs": "/tmp/s19state/bundle/rootfs", '
    '"created": "2026-12-07T17:25:18.380321741Z", "owner": "root", "annotations": '
    '{"a.b": "c"}, "pyoci": {"initStartTime": 890528, "newPidNamespace": true, "hooks": '
    '{"poststart": [{"path": "/bin/true"}], "poststop": [{"path": "/bin/true"}]}, '
    '"configOciVersion": "1.3.0", "cgroup": {"mode": "hybrid", "v1": {"name=systemd": '
    '"/sys/fs/cgroup/systemd/s19old-c1", "pids": "/sys/fs/cgroup/pids/s19old-c1", '
    '"freezer": "/sys/fs/cgroup/freezer/s19old-c1", "memory": '
    '"/sys/fs/cgroup/memory/s19old-c1"}, "unified": "/sys/fs/cgroup/unified/s19old-c1", '
    '"unified_mount": "/sys/fs/cgroup/unified", "unified_base": "/sys/fs/cgroup/unified", '
    '"created": true, "parents": [], "planned": []}, "resources": {"pids": {"limit": 100}}}}')
OLD_RECOVERY = (
    '{"id": "s19old-c1", "pid": 8169, "initStartTime": 890528, "newPidNamespace": true, '
    '"cgroup": {"mode": "hybrid", "v1": {"name=systemd": "/sys/fs/cgroup/systemd/s19old-c1", '
    '"pids": "/sys/fs/cgroup/pids/s19old-c1", "freezer": "/sys/fs/cgroup/freezer/s19old-c1", '
    '"memory": "/sys/fs/cgroup/memory/s19old-c1"}, "unified": '
    '"/sys/fs/cgroup/unified/s19old-c1", "unified_mount": "/sys/fs/cgroup/unified", '
    '"unified_base": "/sys/fs/cgroup/unified", "created": true, "parents": [], "planned": []}, '
    '"network": null}')
#: A cgroup record from before created/parents/unified_base/planned existed.
OLD_CGROUP = {"mode": "v2", "v1": {}, "unified": "/sys/fs/cgroup/c1",
              "unified_mount": "/sys/fs/cgroup"}


def _start_time(pid: int) -> int:
    data = Path(f"/proc/{pid}/stat").read_bytes()
    return int(data[data.rindex(b")") + 2:].split()[19])


def _write_state(root: Path, cid: str, text: str) -> Container:
    (root / cid).mkdir(parents=True)
    (root / cid / "state.json").write_text(text)
    return Container(str(root), cid)


# --- compatibility with the files pyoci wrote before ---------------------------------------

def test_old_state_file_loads_and_saves_byte_for_byte(tmp_path: Path) -> None:
    c = _write_state(tmp_path, "s19old-c1", OLD_CREATED).load()
    rec = c.record
    assert (rec.oci_version, rec.status, rec.pid, rec.bundle) == \
        ("1.3.0", "created", 8169, "/tmp/s19state/bundle")
    assert rec.private.init_start_time == 890528 and rec.private.new_pid_namespace
    assert rec.private.hooks.poststop == ({"path": "/bin/true"},)
    assert rec.private.cgroup is not None and rec.private.cgroup.mode == "hybrid"
    assert rec.private.resources == {"pids": {"limit": 100}}
    assert rec.private.network is None
    assert jsonio.dumps(rec.to_json()) == OLD_CREATED
    assert jsonio.dumps(c._recovery()) == OLD_RECOVERY
    c.save()
    assert (tmp_path / "s19old-c1" / "state.json").read_text() == OLD_CREATED
    assert not (tmp_path / "s19old-c1" / "recovery.json").exists(), \
        "nothing the recovery record holds changed: it is not rewritten"


def test_old_recovery_record_loads(tmp_path: Path) -> None:
    c = _write_state(tmp_path, "s19old-c1", "{half")
    (tmp_path / "s19old-c1" / "recovery.json").write_text(OLD_RECOVERY)
    with pytest.raises(UnreadableState):
        c.load()
    rec = c.load_recovery()
    assert rec is c.record and rec.pid == 8169 and rec.status == "stopped"
    assert rec.private.cgroup == StateRecord.from_json(json.loads(OLD_CREATED)).private.cgroup
    assert rec.private.network is None


def test_old_cgroup_record_reads_as_meant_then() -> None:
    rec = CgroupRecord.from_json(OLD_CGROUP)
    assert rec.created and rec.parents == () and rec.unified_base is None
    mgr = manager_from_record(rec)
    assert mgr.created and mgr.parents == [] and mgr.unified == "/sys/fs/cgroup/c1"


def test_hand_written_state_without_private_part(tmp_path: Path) -> None:
    """A state written by hand (or by an engine's test) has no "pyoci" object."""
    c = _write_state(tmp_path, "c1", json.dumps(
        {"ociVersion": "1.3.0", "id": "c1", "status": "stopped", "bundle": "/b"})).load()
    assert c.private == PrivateState() and c.status() == "stopped"
    assert c.cli_state() == {"ociVersion": "1.3.0", "id": "c1", "status": "stopped",
                             "pid": 0, "bundle": "/b", "rootfs": "", "created": "",
                             "owner": ""}


def test_state_output_keys_and_order(tmp_path: Path) -> None:
    """What `state` prints, key for key and in order (engines and conformance read it)."""
    doc = json.loads(OLD_CREATED)
    doc["pid"] = os.getpid()
    doc["pyoci"]["initStartTime"] = _start_time(os.getpid())
    del doc["pyoci"]["cgroup"]
    c = _write_state(tmp_path, "s19old-c1", json.dumps(doc)).load()
    assert list(c.cli_state()) == ["ociVersion", "id", "status", "pid", "bundle",
                                   "annotations", "rootfs", "created", "owner"]
    assert c.cli_state() == {"ociVersion": "1.3.0", "id": "s19old-c1", "status": "running",
                             "pid": os.getpid(), "bundle": "/tmp/s19state/bundle",
                             "annotations": {"a.b": "c"},
                             "rootfs": "/tmp/s19state/bundle/rootfs",
                             "created": "2026-12-07T17:25:18.380321741Z", "owner": "root"}


# --- one load: every damaged field is refused there, with the reason ----------------------

def _old(**changes: Any) -> dict[str, Any]:
    doc = json.loads(OLD_CREATED)
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = doc
        for p in parents:
            target = target[p]
        target[last] = value
    return doc


@pytest.mark.parametrize(("doc", "why"), [
    ([], "not a JSON object"),
    (_old(ociVersion=1), "ociVersion is missing or not a string"),
    (_old(bundle=None), "bundle is missing or not a string"),
    (_old(owner=0), "owner is not a string"),
    (_old(pid="abc"), "pid 'abc' is not a process id"),
    (_old(pid=True), "pid True is not a process id"),
    (_old(pid=-1), "pid -1 is not a process id"),
    (_old(pid=1 << 23), "is not a process id"),
    (_old(annotations={"a": 1}), "annotations is not a map of strings"),
    (_old(pyoci=[]), "pyoci is not an object"),
    (_old(pyoci__initStartTime="1"), "pyoci.initStartTime is not an integer"),
    (_old(pyoci__network=None), "pyoci.network is not an object"),
    (_old(pyoci__resources=[]), "pyoci.resources is not an object"),
    (_old(pyoci__hooks={"poststop": [{"args": []}]}), "pyoci.hooks.poststop is not a list"),
    (_old(pyoci__cgroup={"mode": "v3"}), "pyoci.cgroup: unknown cgroup mode 'v3'"),
    (_old(pyoci__cgroup={"v1": {}}), "pyoci.cgroup: malformed cgroup record"),
    (_old(pyoci__cgroup__created="yes"), "pyoci.cgroup: malformed cgroup record"),
    (_old(pyoci__cgroup__unified=7), "pyoci.cgroup: malformed cgroup record"),
])
def test_damaged_record_is_unreadable(tmp_path: Path, doc: Any, why: str) -> None:
    c = _write_state(tmp_path, "c1", json.dumps(doc))
    with pytest.raises(UnreadableState) as err:
        c.load()
    assert why in err.value.why
    assert '"delete --force" removes it' in str(err.value)


def test_empty_cgroup_record_means_none() -> None:
    """{} always read as "no cgroup" (a state written without one)."""
    assert StateRecord.from_json(_old(pyoci__cgroup={})).private.cgroup is None


def test_manager_from_state_keeps_its_errors() -> None:
    with pytest.raises(CgroupError, match="state.json: unknown cgroup mode 'v3'"):
        manager_from_state({"mode": "v3"})
    with pytest.raises(CgroupError, match="state.json: malformed cgroup record"):
        manager_from_state({})


# --- one save -------------------------------------------------------------------------------

def _fresh(tmp_path: Path) -> Container:
    c = Container(str(tmp_path), "c1")
    os.mkdir(c.dir)
    c.record = StateRecord("1.3.0", "/b", id="c1", status="creating",
                           private=PrivateState(hooks=Hooks(poststart=({"path": "/x"},))))
    return c


def test_save_load_round_trip(tmp_path: Path) -> None:
    c = _fresh(tmp_path)
    c.save()
    assert not os.path.exists(os.path.join(c.dir, "recovery.json")), "nothing made yet"
    c.record.pid = 4242
    c.private.init_start_time = 17
    c.private.cgroup = CgroupRecord.from_json(OLD_CGROUP)
    c.private.network = {"cni": "x"}
    c.record.annotations["k"] = "v"
    c.save()
    again = Container(str(tmp_path), "c1").load()
    assert again.record == c.record
    rec = json.loads(Path(c.dir, "recovery.json").read_text())
    assert rec == {"id": "c1", "pid": 4242, "initStartTime": 17, "newPidNamespace": False,
                   "cgroup": CgroupRecord.from_json(OLD_CGROUP).to_json(),
                   "network": {"cni": "x"}}
    assert [p.name for p in Path(c.dir).iterdir() if p.name.endswith(".tmp")] == []


def test_tracked_cgroup_is_taken_at_every_save(tmp_path: Path) -> None:
    """create records the manager's record before its first mkdir; what create() and
    add() change later must reach every later save (an interrupted create is cleaned up
    from it)."""
    c = _fresh(tmp_path)
    records = iter([CgroupRecord.from_json(OLD_CGROUP | {"created": False}),
                    CgroupRecord.from_json(OLD_CGROUP | {"created": False}),
                    CgroupRecord.from_json(OLD_CGROUP)])
    c.track_cgroup(lambda: next(records))

    def saved_created() -> bool | None:
        cgroup = Container(str(tmp_path), "c1").load().private.cgroup
        return None if cgroup is None else cgroup.created

    c.save()
    assert saved_created() is False
    c.save()
    assert saved_created() is True
    rec = json.loads(Path(c.dir, "recovery.json").read_text())
    assert rec["cgroup"]["created"] is True


# --- status without the cgroup package ------------------------------------------------------

def test_paused_is_told_without_importing_the_cgroup_package(tmp_path: Path) -> None:
    """pyoci.state does not depend on pyoci.cgroups (issue 14, item 7): the frozen check
    reads the recorded cgroup through the record."""
    cg = tmp_path / "cg"
    cg.mkdir()
    (cg / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    doc = _old(pid=os.getpid(), pyoci__initStartTime=_start_time(os.getpid()),
               pyoci__cgroup={"mode": "v2", "v1": {}, "unified": str(cg),
                              "unified_mount": str(tmp_path)})
    _write_state(tmp_path / "root", "c1", json.dumps(doc))
    probe = ("import sys, json\nfrom pyoci.state import Container\n"
             f"c = Container({str(tmp_path / 'root')!r}, 'c1').load()\n"
             "print(json.dumps([c.status(), sorted(m for m in sys.modules "
             "if m.startswith('pyoci.cgroups'))]))")
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60, check=True)
    assert json.loads(res.stdout) == ["paused", []]
