"""`exec` joins the container's cgroup from the state's CgroupRecord without importing the
cgroup manager (issue 16): the record must name the same directories, in the same order,
as the manager it describes, and agree on whether the cgroup still exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyoci.cgroups.manager import manager_from_record
from pyoci.state import CgroupRecord


def _records(tmp_path: Path) -> list[CgroupRecord]:
    v1 = {c: str(tmp_path / c / "ctr") for c in ("cpu", "memory", "pids")}
    v1["cpuacct"] = v1["cpu"]   # co-mounted controllers share one directory
    unified = str(tmp_path / "unified" / "ctr")
    return [
        CgroupRecord("v1", v1),
        # A unified directory in a v1 record is not the container's (the v1 manager
        # never joins or removes one): the record must not name it either.
        CgroupRecord("v1", v1, unified, str(tmp_path / "unified")),
        CgroupRecord("v2", {}, unified, str(tmp_path / "unified")),
        CgroupRecord("hybrid", v1, unified, str(tmp_path / "unified")),
        CgroupRecord("hybrid", v1, unified, str(tmp_path / "unified"), created=False),
    ]


@pytest.mark.parametrize("index", range(5))
def test_record_and_manager_name_the_same_directories(tmp_path: Path, index: int) -> None:
    record = _records(tmp_path)[index]
    manager = manager_from_record(record)
    assert record.directories() == manager.directories()
    assert record.exists() == manager.exists() is False   # nothing made yet
    for d in record.directories():
        Path(d).mkdir(parents=True)
    assert record.exists() == manager.exists() == record.created
