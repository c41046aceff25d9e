"""`state` and `list` (runtime.md "Operations": state)."""

from __future__ import annotations

from pyoci import jsonio, log
from pyoci.state import Container, list_containers

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any


def state(root: str, cid: str) -> dict[str, Any]:
    return Container(root, cid).load().cli_state()


def list_table(root: str, quiet: bool, fmt: str) -> str:
    """The containers' table (or ids, or JSON). A container whose state cannot be read is
    left out with a warning on stderr, as runc's list does ("load container ID: ..."), so
    one damaged record does not hide all the others (issue 11, item 10)."""
    problems: list[str] = []
    containers = list_containers(root, problems)
    for problem in problems:
        log.warn(problem)
    if quiet:
        return "".join(f"{c.id}\n" for c in containers)
    rows = [c.cli_state() for c in containers]
    if fmt == "json":
        return jsonio.dumps([{"ociVersion": r["ociVersion"], "id": r["id"], "pid": r["pid"],
                            "status": r["status"], "bundle": r["bundle"],
                            "rootfs": r["rootfs"], "created": r["created"],
                            "owner": r["owner"], "annotations": r.get("annotations") or {}}
                           for r in rows]) + "\n"
    table = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    table += [(r["id"], str(r["pid"]), r["status"], r["bundle"], r["created"], r["owner"])
              for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "".join("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                   + "\n" for row in table)
