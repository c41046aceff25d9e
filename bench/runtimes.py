"""The two runtimes measured and what exactly each one is.

pyoci is measured as users run it: the `pyoci` console script of the environment of the
interpreter running the harness (`.venv/bin/pyoci`, `/tmp/benchvenv/bin/pyoci`), else the
first on PATH. Whether that install is editable matters: an editable install goes through
a path-hook finder and, if bytecode cannot be written, recompiles every module on every
call. So the harness asks the script's own interpreter (read from its `#!` line) what it
imports, rather than importing `pyoci` itself (the current directory may shadow it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUNC_PATH = Path("/usr/sbin/runc")

# Bytecode caches must not depend on the caller's shell: with PYTHONDONTWRITEBYTECODE set
# (this machine sets it for shells) an editable install would recompile pyoci on every
# call and measure the compiler. Runtimes get the environment without it.
DROPPED_ENV = ("PYTHONDONTWRITEBYTECODE",)

_PROBE = r"""
import importlib.metadata as md, json, sys
import pyoci
dist = md.distribution("pyoci")
url = json.loads(dist.read_text("direct_url.json") or "null")
deps = {}
for name in ("typer", "click", "attrs", "jsonschema", "pyroute2"):
    try:
        deps[name] = md.version(name)
    except md.PackageNotFoundError:
        deps[name] = None
print(json.dumps({
    "python": sys.executable, "python_version": sys.version.split()[0],
    "version": dist.version, "module": pyoci.__file__,
    "editable": bool(url and url.get("dir_info", {}).get("editable")),
    "direct_url": url, "deps": deps,
}))
"""


@dataclass(frozen=True)
class Runtime:
    """A runc-compatible executable with a private state root."""

    name: str
    path: Path
    root: Path
    env: Mapping[str, str] = field(default_factory=dict)

    def cmd(self, *args: str) -> list[str]:
        return [str(self.path), "--root", str(self.root), *args]


def runtime_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}


def find_pyoci(explicit: str | None = None) -> Path:
    if explicit:
        path = Path(explicit).resolve()
        if not os.access(path, os.X_OK):
            raise FileNotFoundError(f"--pyoci {explicit}: not an executable file")
        return path
    candidate = Path(sys.executable).parent / "pyoci"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("pyoci")
    if found is None:
        raise FileNotFoundError("no pyoci console script next to the interpreter nor on PATH")
    return Path(found)


#: The distribution's interpreter, as a user without pyenv or an upgraded pip has it.
SYSTEM_PYTHON = Path("/usr/bin/python3")


def plain_install(target: Path, source: Path) -> Path:
    """``--plain-install DIR`` (issue 16): what a user gets from ``python3 -m venv DIR &&
    DIR/bin/pip install .`` with the distribution's own python and pip (Debian 12: pip
    23.0.1, **not** upgraded, whose console scripts would `import re` first; pyoci ships
    its own launcher for that reason). Returns DIR/bin/pyoci. An existing DIR is reused
    when it holds a pyoci already (rerun with a fresh DIR to measure a new tree)."""
    script = target / "bin" / "pyoci"
    if not script.exists():
        subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(target)], check=True,
                       timeout=300)
        subprocess.run([str(target / "bin" / "pip"), "install", "-q",
                        "--disable-pip-version-check", str(source)], check=True,
                       timeout=900, env=runtime_env())
    return script


def script_interpreter(script: Path) -> str:
    """The interpreter of a console script, from its `#!` line (pip writes an absolute
    one); the harness's own interpreter when the line is something else."""
    with open(script, "rb") as f:
        first = f.readline().decode(errors="replace").strip()
    if first.startswith("#!"):
        parts = first[2:].split()
        if parts and "python" in Path(parts[0]).name:
            return parts[0]
    return sys.executable


def describe_pyoci(script: Path) -> dict[str, Any]:
    """Version, module location, editable or not, dependency versions; run from / so
    no source tree in the current directory shadows the install."""
    interp = script_interpreter(script)
    res = subprocess.run([interp, "-c", _PROBE], capture_output=True, text=True, cwd="/",
                         env=runtime_env(), timeout=60)
    info: dict[str, Any] = {"script": str(script)}
    if res.returncode != 0:
        info["error"] = res.stderr.strip()[-500:]
        return info
    info.update(json.loads(res.stdout))
    ver = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                         timeout=60, env=runtime_env())
    info["version_output"] = ver.stdout.strip()
    return info


def describe_runc(path: Path) -> dict[str, Any]:
    res = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30)
    return {"path": str(path), "version_output": res.stdout.strip()}
