"""Capability executor (config.md "Process": capabilities).

Order matters (capabilities(7)): the bounding set is reduced first, while we still hold
CAP_SETPCAP; keep-caps carries the permitted set across the switch to the container's
uid; then capset() sets effective/permitted/inheritable exactly, and ambient capabilities
are raised last (each must already be permitted and inheritable).
Names pyoci or the running kernel does not know are skipped with a warning, as runc does
("ignoring unknown or unavailable capabilities"): config.md "Process" says an unknown or
unsupported value MUST be logged as a warning and the runtime SHOULD NOT fail. Newer
engines name capabilities older kernels lack (CAP_PERFMON, CAP_BPF, ...), so refusing
them would refuse those engines' default configs. ``pyoci validate`` lists them as
warnings. An ambient capability that is not both permitted and inheritable cannot be
raised (capabilities(7)); it is left out with a debug line only, as runc ignores that
EINVAL silently.
"""

from __future__ import annotations

from pyoci import syscalls as sc
from pyoci.config.model import Capabilities
from pyoci.linux_names import CAP_NAMES, CAP_NUMBERS, last_cap

__all__ = ["CAP_NAMES", "CAP_NUMBERS", "apply_bounding", "apply_sets", "last_cap", "mask",
           "ungrantable_ambient", "unknown_to_kernel"]


def mask(names: tuple[str, ...] | None, last: int) -> tuple[int, list[str]]:
    """(bit mask of the names this kernel knows, names it does not)."""
    bits, unknown = 0, []
    for name in names or ():
        num = CAP_NUMBERS.get(name)
        if num is None or num > last:
            unknown.append(name)
        else:
            bits |= 1 << num
    return bits, unknown


def unknown_to_kernel(caps: Capabilities) -> list[str]:
    last = last_cap()
    out: list[str] = []
    for names in (caps.bounding, caps.effective, caps.permitted, caps.inheritable,
                  caps.ambient):
        out += [n for n in mask(names, last)[1] if n not in out]
    return out


def ungrantable_ambient(caps: Capabilities) -> list[str]:
    """Ambient names the kernel would refuse: each must be permitted and inheritable."""
    allowed = set(caps.permitted or ()) & set(caps.inheritable or ())
    return [n for n in caps.ambient or () if n not in allowed]


def apply_bounding(caps: Capabilities) -> None:
    """Before the uid switch: drop what is not in the bounding set; keep caps across it."""
    last = last_cap()
    keep, _ = mask(caps.bounding, last)
    for num in range(last + 1):
        if not keep & (1 << num):
            sc.capbset_drop(num)
    sc.set_keepcaps(True)


def apply_sets(caps: Capabilities) -> None:
    """After the uid switch: the exact effective/permitted/inheritable, then ambient."""
    last = last_cap()
    sc.set_keepcaps(False)
    effective, _ = mask(caps.effective, last)
    permitted, _ = mask(caps.permitted, last)
    inheritable, _ = mask(caps.inheritable, last)
    sc.capset(effective, permitted, inheritable)
    ambient, _ = mask(caps.ambient, last)
    ambient &= permitted & inheritable  # the rest was warned about at create
    sc.ambient_clear()
    for num in range(last + 1):
        if ambient & (1 << num):
            sc.ambient_raise(num)
