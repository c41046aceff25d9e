"""`events`: resource usage and OOM notifications of a container, as runc prints them
(one JSON object per line: {"type": "stats"|"oom", "id": ..., "data": ...}).

With --stats one stats object is printed. Without it, a stats object every --interval and
an "oom" object whenever the kernel's OOM killer has struck in the container's cgroup
since the last look; the stream ends when the container stops."""

from __future__ import annotations

import json
import os
import re
import select
import sys
import time

from pyoci.errors import PyociError, StateError
from pyoci.operations.common import require_cgroup
from pyoci.state import Container

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# OOM kills are looked for at least this often, so a short burst is not reported late.
_OOM_CHECK = 0.5


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration subset runc's --interval accepts: "5s", "1m30s", "250ms"."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise PyociError(f"--interval {text!r}: expected a duration such as 5s, 500ms or 1m")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise PyociError(f"--interval {text!r}: must be greater than zero")
    return seconds


def _event(kind: str, cid: str, data: object | None = None) -> str:
    doc: dict[str, object] = {"type": kind, "id": cid}
    if data is not None:
        doc["data"] = data
    return json.dumps(doc) + "\n"


def events(root: str, cid: str, stats_only: bool, interval: str = "5s") -> None:
    period = parse_duration(interval)
    c = Container(root, cid).load()
    if c.status() == "stopped":
        raise StateError(f'container "{cid}" is not running')
    mgr = require_cgroup(c)
    if stats_only:
        sys.stdout.write(_event("stats", cid, mgr.stats()))
        return
    try:
        pidfd = os.pidfd_open(c.pid)
    except ProcessLookupError:
        return
    try:
        ooms = mgr.oom_kill_count()
        next_stats = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= next_stats:
                sys.stdout.write(_event("stats", cid, mgr.stats()))
                next_stats = now + period
            count = mgr.oom_kill_count()
            if count > ooms:
                sys.stdout.write(_event("oom", cid))
            ooms = count
            sys.stdout.flush()
            wait = min(_OOM_CHECK, max(0.0, next_stats - time.monotonic()))
            # The pidfd turns readable when the init exits: the stream ends with it.
            if select.select([pidfd], [], [], wait)[0]:
                if mgr.oom_kill_count() > ooms:
                    sys.stdout.write(_event("oom", cid))
                return
    finally:
        os.close(pidfd)
