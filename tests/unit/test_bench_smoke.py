"""The benchmark harness (bench/, issue 5): its pairwise statistics, and one minimal run
of every operation with both runtimes. No time is asserted: only that every operation
was measured for both runtimes and that nothing was left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.hostcheck import cgroups_named
from bench.ops import OPS
from bench.proc import Sample
from bench.report import op_summary, pair_summary, targets

REPO = Path(__file__).resolve().parents[2]


def test_ratio_is_median_of_pairs_not_ratio_of_medians() -> None:
    pyoci, runc = [2.0, 4.0, 9.0], [1.0, 1.0, 3.0]
    s = pair_summary(pyoci, runc)
    ratios = sorted(p / r for p, r in zip(pyoci, runc, strict=True))
    assert s["ratio"] == ratios[1]
    assert s["ratio"] != s["pyoci"] / s["runc"]  # 3.0 vs 4.0: the two differ here
    assert s["pyoci"] == sorted(pyoci)[1] and s["runc"] == sorted(runc)[1]
    with pytest.raises(ValueError):
        pair_summary([1.0], [1.0, 2.0])


def test_targets_read_the_summaries() -> None:
    fast, slow = Sample(0.01, 0.01, 20 * 1024), Sample(0.05, 0.04, 40 * 1024)
    doc = {"ops": {"run": {"summary": op_summary([slow], [fast])},
                   "state": {"summary": op_summary([fast], [fast])}}}
    got = {t.what.split(" ")[0]: t for t in targets(doc) if t.value is not None}
    assert got["run"].met is False and got["run"].value == pytest.approx(5.0)
    assert got["state"].met is True
    rss = [t for t in targets(doc) if t.what.startswith("peak RSS") and "run" in t.what][0]
    assert rss.value == pytest.approx(40.0) and rss.met is False
    assert all(t.met is None for t in targets(doc) if t.value is None)


@pytest.mark.integration
def test_one_round_of_everything(tmp_path: Path) -> None:
    if not os.path.exists("/usr/sbin/runc"):
        pytest.skip("runc is not installed (apt-get install runc)")
    if not (Path(sys.executable).parent / "pyoci").exists() and not shutil.which("pyoci"):
        pytest.skip("no pyoci console script installed")
    out = tmp_path / "bench.json"
    res = subprocess.run([sys.executable, "-m", "bench", "--rounds", "1", "--warmup", "0",
                          "--no-podman", "--no-docker", "--no-buildah", "--no-cri", "--no-scale",
                          "--json", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(out.read_text())
    assert set(doc["ops"]) == set(OPS)
    for op, data in doc["ops"].items():
        for rt in ("runc", "pyoci"):
            (sample,) = data["samples"][rt]
            assert sample["wall"] > 0 and sample["cpu"] >= 0 and sample["maxrss_kib"] > 0, op
        assert op in res.stdout
    assert doc["problems"] == []
    assert doc["runtimes"]["pyoci"]["install"] in ("editable", "regular")
    assert doc["machine"]["nproc"] == os.cpu_count()
    assert cgroups_named(f"pyoci-bench-{doc['pid']}-") == []
    assert not Path(doc["workdir"]).exists()
