"""Kernel encodings and checks for the scheduling attributes of a process.

config.md "Process" (``scheduler``, ``ioPriority``, ``execCPUAffinity``) and
config-linux.md "Personality" name kernel values by strings; this module turns them into
the numbers sched_setattr(2), ioprio_set(2), sched_setaffinity(2) and personality(2)
take, and holds the checks the schema cannot express, each with runc's rule
(libcontainer/configs/validate). Pure Python with no imports: the semantic checks use it
before `create`, and the container's init (where nothing may be imported any more,
docs/architecture.md) uses it when applying the values.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any

#: <linux/sched.h> policies. SCHED_ISO (4) is reserved and never merged: the kernel
#: answers EINVAL, which the init reports naming process.scheduler.policy.
SCHED_POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3,
                  "SCHED_ISO": 4, "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
#: <linux/sched.h> sched_attr.sched_flags.
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02,
               "SCHED_FLAG_DL_OVERRUN": 0x04, "SCHED_FLAG_KEEP_POLICY": 0x08,
               "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
               "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}
#: <linux/ioprio.h> classes.
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
IOPRIO_CLASS_SHIFT = 13
#: <linux/personality.h> execution domains (config-linux.md "Personality").
PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}

#: The most CPUs a list may name: the kernel's NR_CPUS ceiling (CONFIG_NR_CPUS <= 8192),
#: which is also runc's bound for execCPUAffinity.
MAX_CPUS = 8192


def ioprio_value(klass: str, priority: int) -> int:
    """IOPRIO_PRIO_VALUE(class, data) of <linux/ioprio.h>."""
    return (IOPRIO_CLASSES[klass] << IOPRIO_CLASS_SHIFT) | priority


def parse_cpu_list(text: str) -> set[int]:
    """A cpuset list as the kernel prints it ("0-3,8,10-11") -> CPU numbers.

    config.md "execCPUAffinity": "a comma-separated list, with dashes to represent
    ranges". Raises ValueError saying what is wrong."""
    cpus: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise ValueError(f"{text!r} is not a CPU list like \"0-3,7\" ({part!r})")
        first, last = int(lo), int(hi) if dash else int(lo)
        if first > last:
            raise ValueError(f"{text!r}: range {part!r} goes backwards")
        if last >= MAX_CPUS:
            raise ValueError(f"{text!r}: CPU {last} is beyond the kernel's {MAX_CPUS}")
        cpus.update(range(first, last + 1))
    return cpus


def process_problems(process: dict[str, Any], where: str = "process") -> list[tuple[str, str]]:
    """The checks on process.scheduler and process.execCPUAffinity that the schema cannot
    make, as (JSON path, reason); runc's rules (libcontainer/configs/validate
    ``scheduler``, ``ioPriority`` and the CPU list parser)."""
    problems: list[tuple[str, str]] = []
    sched = process.get("scheduler")
    if isinstance(sched, dict):
        policy = sched.get("policy")
        nice = sched.get("nice", 0)
        if isinstance(nice, int) and not -20 <= nice <= 19:
            problems.append((f"{where}.scheduler.nice",
                             f"{nice} is outside [-20, 19] (sched_setattr(2))"))
        if sched.get("priority", 0) and policy not in ("SCHED_FIFO", "SCHED_RR"):
            problems.append((f"{where}.scheduler.priority", "can only be set for the "
                             "SCHED_FIFO and SCHED_RR policies (sched(7))"))
        if policy != "SCHED_DEADLINE":
            for key in ("runtime", "deadline", "period"):
                if sched.get(key):
                    problems.append((f"{where}.scheduler.{key}", "can only be set for the "
                                     "SCHED_DEADLINE policy (sched(7))"))
    aff = process.get("execCPUAffinity")
    if isinstance(aff, dict):
        for key in ("initial", "final"):
            value = aff.get(key)
            if isinstance(value, str) and value:
                try:
                    parse_cpu_list(value)
                except ValueError as exc:
                    problems.append((f"{where}.execCPUAffinity.{key}", str(exc)))
    return problems


def personality_problems(personality: Any) -> list[tuple[str, str]]:
    """config-linux.md "Personality": "flags ... Currently no flag values are supported."
    A flag asks for an environment pyoci would not create (runtime.md: MUST generate an
    error), so each one is refused by name rather than dropped."""
    if not isinstance(personality, dict):
        return []
    return [(f"linux.personality.flags[{i}]",
             f"{flag!r}: no personality flags are defined by the runtime-spec "
             "(config-linux.md \"Personality\"), so pyoci cannot apply it")
            for i, flag in enumerate(personality.get("flags") or ())]
