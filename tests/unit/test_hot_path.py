"""The engine-facing hot path (state, kill, start, delete) must not import jsonschema,
pyroute2 or attrs: each costs tens to hundreds of milliseconds per call."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("jsonschema", "pyroute2", "attr", "attrs")

_PROBE = """
import json, sys
from pyoci.cli import run_cli
code = run_cli(sys.argv[1:])
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(HEAVY_NAMES))
print(json.dumps({"code": code, "heavy": heavy}))
""".replace("HEAVY_NAMES", repr(HEAVY))


@pytest.mark.parametrize("args", [["state", "x"], ["kill", "x", "KILL"], ["start", "x"],
                                  ["delete", "--force", "x"], ["list"]])
def test_no_heavy_imports(tmp_path: Path, args: list[str]) -> None:
    res = subprocess.run([sys.executable, "-c", _PROBE, "--root", str(tmp_path), *args],
                         capture_output=True, text=True, timeout=60)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["heavy"] == [], f"{args[0]} imported {out['heavy']}"
