"""Scale curves (issue 16): with N containers running, how long `list`, `state ID` and
`ps --format json ID` take, pyoci beside runc, at each N of the curve (10, 100, 500 by
default).

Both runtimes grow their populations together (each in its own --root, so `list` lists
only its own), in concurrent batches of `create` then `start` of the sleeping bundle; at
each point the three commands are timed in pairs (runc then pyoci, back to back), `state`
and `ps` on a container in the middle of the population. `ps --format json` is the
shape engines call (containerd's Pids, podman's top); the table form runs ps(1) for both.

What fits: before each batch the harness checks MemAvailable and the pid limits, and
stops growing when the next batch would leave less than RESERVE of memory or come near
pid_max/threads-max; the curve then ends at the population reached, which is recorded
with why (``stopped``), together with what one container pair cost in MemAvailable.

Every container is removed (`delete --force`, in concurrent batches, by the runtime that
made it) at the end, also after a failure: they are recorded in each Operations' `live`
set as soon as their create is launched, and the harness's cleanup removes whatever a
batch delete missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench import report
from bench.ops import Operations
from bench.proc import Finished, run, run_many
from bench.scale import create_start

DEFAULT_POINTS = (10, 100, 500)
COMMANDS = ("list", "state", "ps")
BATCH = 25
RESERVE = 2 * 1024 ** 3  # bytes of MemAvailable never to go below
PID_MARGIN = 4096


def _meminfo(key: str) -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise LookupError(key)


def _read_int(path: str) -> int:
    with open(path) as f:
        return int(f.read().split()[0])


def _tasks() -> int:
    with open("/proc/loadavg") as f:  # "... running/total lastpid"
        return int(f.read().split()[3].split("/")[1])


def _room(more: int, per_container: float) -> str | None:
    """Why ``more`` further containers (per runtime) would not fit, or None."""
    avail = _meminfo("MemAvailable")
    need = RESERVE + 2 * more * per_container
    if avail < need:
        return (f"MemAvailable {avail / 1024 ** 2:.0f} MiB; {2 * more} more containers "
                f"need ~{2 * more * per_container / 1024 ** 2:.0f} MiB above the "
                f"{RESERVE / 1024 ** 3:.0f} GiB reserve")
    limit = min(_read_int("/proc/sys/kernel/pid_max"), _read_int("/proc/sys/kernel/threads-max"))
    if _tasks() + 2 * more * 3 + PID_MARGIN > limit:  # init + a few transient per create
        return f"{_tasks()} tasks, limit {limit}"
    return None


def _grow(ops: Operations, ids: Sequence[str]) -> None:
    """create then start ``ids`` in concurrent batches of BATCH."""
    for k in range(0, len(ids), BATCH):
        create_start(ops, ids[k:k + BATCH])


def _shrink(ops: Operations, ids: Sequence[str]) -> None:
    """delete --force in concurrent batches; what fails stays in ``live`` for the
    harness's sequential cleanup."""
    rt = ops.rt
    for k in range(0, len(ids), BATCH):
        chunk = [i for i in ids[k:k + BATCH] if i in ops.live]
        _, deleted = run_many([rt.cmd("delete", "--force", i) for i in chunk], env=rt.env)
        ops.live.difference_update(i for i, r in zip(chunk, deleted, strict=True) if r.rc == 0)


def _timed(ops: Operations, command: str, cid: str) -> Finished:
    args = {"list": ("list",), "state": ("state", cid),
            "ps": ("ps", "--format", "json", cid)}[command]
    return run(ops.rt.cmd(*args), env=ops.rt.env).check()


def curves(ops: dict[str, Operations], order: Sequence[str], prefix: str,
           points: Sequence[int], rounds: int, log: Any = print) -> dict[str, Any]:
    """The whole curve; ``ops`` by runtime name, pairs in ``order``."""
    ids: dict[str, list[str]] = {n: [] for n in order}
    out: dict[str, Any] = {"points": [], "rounds": rounds, "requested": list(points),
                           "stopped": None, "mem_per_container_kib": None}
    per_container = 4 * 1024 ** 2.0  # a guess until measured: ~4 MiB of kernel and sleep
    try:
        for n in sorted(points):
            have = len(ids[order[0]])
            more = n - have
            why = _room(more, per_container)
            if why:
                out["stopped"] = f"{n} containers per runtime do not fit: {why}"
                log(f"  curves: stopped before {n}: {why}")
                break
            before = _meminfo("MemAvailable")
            for name in order:
                new = [f"{prefix}{name}-curve-{k}" for k in range(have, n)]
                ids[name] += new
                _grow(ops[name], new)
            used = max(0, before - _meminfo("MemAvailable"))
            if more:
                per_container = max(per_container / 4, used / (2 * more))
                out["mem_per_container_kib"] = round(used / (2 * more) / 1024)
            target = {name: ids[name][n // 2] for name in order}
            samples: dict[str, dict[str, list[float]]] = {
                c: {name: [] for name in order} for c in COMMANDS}
            for _ in range(rounds):
                for c in COMMANDS:
                    for name in order:
                        samples[c][name].append(_timed(ops[name], c, target[name]).sample.wall)
            point = {"n": n, "mem_available_mib": round(_meminfo("MemAvailable") / 1024 ** 2),
                     "samples": samples,
                     "summary": {c: report.pair_summary(samples[c]["pyoci"], samples[c]["runc"])
                                 for c in COMMANDS}}
            out["points"].append(point)
            log(f"  curves: {n} containers per runtime measured")
    finally:
        for name in order:
            _shrink(ops[name], ids[name])
    return out


def table(doc: dict[str, Any]) -> list[str]:
    """Both curves, one row per point: median wall ms of runc and pyoci, and the ratio."""
    lines = [f"scale curves (median wall ms of {doc['rounds']} pairs; ps = ps --format json):",
             f"  {'N':>5}" + "".join(f"  {c + ' runc':>11} {c + ' pyoci':>11} {'ratio':>6}"
                                     for c in COMMANDS)]
    for p in doc["points"]:
        row = f"  {p['n']:>5}"
        for c in COMMANDS:
            s = p["summary"][c]
            row += f"  {s['runc'] * 1000:11.1f} {s['pyoci'] * 1000:11.1f} {s['ratio']:5.2f}x"
        lines.append(row)
    if doc.get("stopped"):
        lines.append(f"  stopped: {doc['stopped']}")
    if doc.get("mem_per_container_kib"):
        lines.append(f"  MemAvailable per container (last step): "
                     f"{doc['mem_per_container_kib']} KiB")
    return lines


def growth(doc: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per command and runtime: median wall at the last point over that at the first
    (issue 16: pyoci's curves must grow no faster than runc's)."""
    pts = doc["points"]
    if len(pts) < 2:
        return {}
    first, last = pts[0]["summary"], pts[-1]["summary"]
    return {c: {rt: last[c][rt] / first[c][rt] for rt in ("runc", "pyoci")} for c in COMMANDS}
