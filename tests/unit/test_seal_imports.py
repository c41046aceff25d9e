"""init.seal_imports: once a runtime process can reach the container's files, nothing is
imported any more, so a module planted in the image can never run (docs/security.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, env={"PYTHONPATH": str(REPO)})


def test_no_import_after_the_seal_even_of_a_planted_module(tmp_path: Path) -> None:
    (tmp_path / "planted.py").write_text("print('PLANTED RAN')\n")
    code = (f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
            "from pyoci.init import seal_imports\n"
            "seal_imports()\n"
            "try:\n    import planted\nexcept ImportError as e:\n    print('refused:', e)\n"
            "try:\n    import colorsys\nexcept ImportError as e:\n    print('refused:', e)\n"
            "import os  # already imported: still fine\n"
            "print('sys.path', sys.path)\n")
    proc = _run(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "PLANTED RAN" not in proc.stdout
    assert proc.stdout.count("refused: pyoci bug: 'planted'") == 1
    assert "refused: pyoci bug: 'colorsys'" in proc.stdout
    assert "sys.path []" in proc.stdout


def test_the_same_planted_module_runs_without_the_seal(tmp_path: Path) -> None:
    """The control: without the seal the planted module is found (the test can fail)."""
    (tmp_path / "planted.py").write_text("print('PLANTED RAN')\n")
    proc = _run(f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import planted", tmp_path)
    assert "PLANTED RAN" in proc.stdout
