"""Linux's names for numbers that both validation and the executors need: capabilities
(<linux/capability.h>) and resource limits (<sys/resource.h>).

A module of its own, importing nothing of pyoci, so that pyoci.config (validation) never
imports an executor (which would pull the syscall layer and ctypes into `validate`), and
the executors import pyoci.config only for the model (issue 14 item 7).
"""

from __future__ import annotations

import resource

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
    """The highest capability number the running kernel knows (a read of
    /proc/sys/kernel/cap_last_cap; pyoci's own table when /proc cannot say)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(CAP_NAMES) - 1


RLIMITS = {name: getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_")}
#: RLIMIT_RTTIME and RLIMIT_RTPRIO etc. exist on Linux but not always in `resource`.
RLIMITS.update({"RLIMIT_RTTIME": 15, "RLIMIT_RTPRIO": 14, "RLIMIT_SIGPENDING": 11,
                "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_LOCKS": 10,
                "RLIMIT_MEMLOCK": 8, "RLIMIT_NPROC": 6, "RLIMIT_AS": 9})
