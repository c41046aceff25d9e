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

#: Index = capability number (<linux/capability.h>).
CAP_NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
CAP_NUMBERS = {name: i for i, name in enumerate(CAP_NAMES)}


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(CAP_NAMES) - 1


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
