"""The scale curves as a PNG: median wall time of `list`, `state` and `ps` against the
number of running containers, pyoci beside runc (issue 16).

matplotlib is a bench-only, optional dependency: `pip install -r bench/requirements-plot.txt`
into the harness's venv. Without it the harness writes the data (the JSON) and says why
there is no plot. Redraw from a saved run: `python -m bench.plot RESULTS.json OUT.png`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.curves import COMMANDS


def write_png(curves: dict[str, Any], dest: Path, title: str = "") -> str | None:
    """Draw the curves into ``dest``; None when done, else why not."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display here
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"no plot: matplotlib is not installed ({exc}); pip install -r " \
               "bench/requirements-plot.txt"
    points = curves.get("points") or []
    if not points:
        return "no plot: no point of the curve was measured"
    ns = [p["n"] for p in points]
    fig, axes = plt.subplots(1, len(COMMANDS), figsize=(4.2 * len(COMMANDS), 3.6))
    labels = {"list": "list", "state": "state ID", "ps": "ps --format json ID"}
    for ax, c in zip(axes, COMMANDS, strict=True):
        for rt, style in (("runc", "o-"), ("pyoci", "s-")):
            ax.plot(ns, [p["summary"][c][rt] * 1000 for p in points], style, label=rt)
        ax.set_title(labels[c])
        ax.set_xlabel("containers running (per runtime)")
        ax.set_ylabel("median wall time (ms)")
        ax.set_xscale("log")
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.minorticks_off()
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(dest, dpi=110)
    plt.close(fig)
    return None


def _main() -> int:
    if len(sys.argv) != 3:
        print("usage: python -m bench.plot RESULTS.json OUT.png", file=sys.stderr)
        return 2
    doc = json.loads(Path(sys.argv[1]).read_text())
    why = write_png(doc.get("curves", {}), Path(sys.argv[2]), doc.get("command", ""))
    if why:
        print(why, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
