"""`update`: change the cgroup limits of a created, running or paused container.

Input as runc takes it: ``--resources FILE`` (or ``-`` for stdin) holding a LinuxResources
document (config-linux.md "Control groups"; what podman and containerd send), and/or the
single flags (``--memory 64m``, ``--cpu-quota``, ``--pids-limit``...), which win over the
document. The new values are merged into those recorded at create; each resource section
the update touches is written whole (so e.g. a new swap limit is converted with the current
memory limit on cgroup v2). The device allow-list is not changed by update, as with runc.
"""

from __future__ import annotations

import re
from typing import Any

from pyoci import log
from pyoci.errors import PyociError, StateError
from pyoci.operations.common import require_cgroup
from pyoci.state import Container

# flag -> (section, key, kind); kind "bytes" takes runc's sizes (64m, 1g, -1).
FLAGS: dict[str, tuple[str, str, str]] = {
    "blkio_weight": ("blockIO", "weight", "int"),
    "cpu_period": ("cpu", "period", "int"),
    "cpu_quota": ("cpu", "quota", "int"),
    "cpu_burst": ("cpu", "burst", "int"),
    "cpu_share": ("cpu", "shares", "int"),
    "cpu_rt_period": ("cpu", "realtimePeriod", "int"),
    "cpu_rt_runtime": ("cpu", "realtimeRuntime", "int"),
    "cpu_idle": ("cpu", "idle", "int"),
    "cpuset_cpus": ("cpu", "cpus", "str"),
    "cpuset_mems": ("cpu", "mems", "str"),
    "memory": ("memory", "limit", "bytes"),
    "memory_reservation": ("memory", "reservation", "bytes"),
    "memory_swap": ("memory", "swap", "bytes"),
    "kernel_memory": ("memory", "kernel", "bytes"),
    "kernel_memory_tcp": ("memory", "kernelTCP", "bytes"),
    "pids_limit": ("pids", "limit", "int"),
}

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$", re.IGNORECASE)
_MULT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_bytes(flag: str, text: str) -> int:
    """runc's RAMInBytes: a number with an optional binary unit; -1 means unlimited."""
    text = text.strip()
    if text == "-1":
        return -1
    m = _SIZE.match(text)
    if not m:
        raise PyociError(f"--{flag.replace('_', '-')} {text!r}: expected a size such as "
                         "67108864, 64m or 1g (or -1 for unlimited)")
    return int(float(m.group(1)) * _MULT[m.group(2).lower()])


def _flag_value(flag: str, kind: str, text: str) -> int | str:
    if kind == "bytes":
        return parse_bytes(flag, text)
    if kind == "str":
        return text
    try:
        return int(text)
    except ValueError:
        raise PyociError(f"--{flag.replace('_', '-')} {text!r}: expected an integer") from None


def merge(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in new.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


def update(root: str, cid: str, resources: str | None, flags: dict[str, str]) -> None:
    from pyoci.config.check import check_resources

    delta: dict[str, Any] = check_resources("--resources", resources) if resources else {}
    for flag, text in flags.items():
        section, key, kind = FLAGS[flag]
        delta.setdefault(section, {})[key] = _flag_value(flag, kind, text)
    if "devices" in delta:
        log.warn("update: linux.resources.devices cannot be changed after create; ignored")
        del delta["devices"]
    c = Container(root, cid)
    with c.locked():
        status = c.status()
        if status not in ("created", "running", "paused"):
            raise StateError(f'cannot update container "{cid}": container not running '
                             f'(it is {status})')
        mgr = require_cgroup(c)
        merged = merge(c.private.resources or {}, delta)
        from pyoci.config.loader import load_resources

        touched = {key: merged[key] for key in delta}
        mgr.set(load_resources(touched), None, update=True)
        c.private.resources = merged
        c.save()
