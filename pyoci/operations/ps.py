"""`ps`: the processes of a container, from its cgroup (so also those a `exec` or a
fork outside the init's pid namespace added). ``--format json`` prints the pid array
containerd's shim parses; the table is the host's ps(1) output limited to those pids,
as runc prints it."""

from __future__ import annotations

from pyoci import jsonio
from pyoci.errors import PyociError
from pyoci.operations.common import require_cgroup
from pyoci.state import Container


def container_pids(root: str, cid: str) -> list[int]:
    c = Container(root, cid).load()
    return sorted(require_cgroup(c).pids())


def ps(root: str, cid: str, fmt: str, ps_args: list[str]) -> str:
    pids = container_pids(root, cid)
    if fmt == "json":
        return jsonio.dumps(pids) + "\n"
    return _ps_table(set(pids), ps_args or ["-ef"])


def _ps_table(pids: set[int], ps_args: list[str]) -> str:
    import shutil
    import subprocess

    exe = shutil.which("ps")
    if exe is None:
        raise PyociError("ps: the ps program is not installed (Debian: procps); "
                         "use --format json for the pid list")
    out = subprocess.run([exe, *ps_args], capture_output=True, text=True)
    if out.returncode != 0:
        raise PyociError(f"ps {' '.join(ps_args)}: {out.stderr.strip() or 'failed'}")
    lines = out.stdout.splitlines()
    if not lines:
        return ""
    header = lines[0].split()
    if "PID" not in header:
        raise PyociError(f"ps {' '.join(ps_args)}: its output has no PID column")
    col = header.index("PID")
    rows = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in pids:
            rows.append(line)
    return "\n".join(rows) + "\n"
