"""Process executor (config.md "Process", "Hostname", "Domainname"; config-linux.md
"Sysctl", "Personality"): the attributes the user's program inherits, applied in the init
(or `exec`'s child) just before it execs the program."""

from __future__ import annotations

import errno
import os
import stat

from pyoci import syscalls as sc
from pyoci.config.model import (
    CPUAffinity,
    IOPriority,
    Personality,
    Process,
    Rlimit,
    Scheduler,
    User,
)
from pyoci.config.procattrs import (
    PERSONALITY_DOMAINS,
    SCHED_FLAGS,
    SCHED_POLICIES,
    ioprio_value,
    parse_cpu_list,
)
from pyoci.executors.procfs import write_proc_file
from pyoci.linux_names import RLIMITS

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def set_rlimit(rl: Rlimit) -> None:
    sc.prlimit(RLIMITS[rl.type], (rl.soft, rl.hard))


class RefusedAttribute(RuntimeError):
    """A process attribute the kernel refused: the message names the JSON path."""


def _refused(path: str, what: str, exc: OSError) -> RefusedAttribute:
    """runtime.md Lifecycle step 2: the runtime MUST generate an error if it cannot create
    the configured environment; say which field and the kernel's reason."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return RefusedAttribute(f"{path}: the kernel refused {what}: {reason.lower()}")


def set_scheduler(s: Scheduler, where: str = "process.scheduler") -> None:
    """sched_setattr(2) on ourselves; the program inherits it through execve. Before the
    capabilities are dropped: real-time policies and a negative nice need CAP_SYS_NICE.
    EPERM with a cpuset is runc's special case too: SCHED_DEADLINE needs the task's
    affinity to span its root domain, which a cpuset restricts."""
    flags = 0
    for name in s.flags:
        flags |= SCHED_FLAGS[name]
    try:
        sc.sched_setattr(SCHED_POLICIES[s.policy], flags, s.nice, s.priority, s.runtime,
                         s.deadline, s.period)
    except OSError as exc:
        err = _refused(where, f"policy {s.policy} (nice {s.nice}, priority {s.priority})", exc)
        if exc.errno == errno.EPERM and s.policy in ("SCHED_FIFO", "SCHED_RR"):
            # sched_setattr(2): with RT group scheduling (cgroup v1) a task in a cpu cgroup
            # without real-time budget gets EPERM, root or not.
            err = RefusedAttribute(f"{err}; a real-time policy needs a real-time budget in "
                                   "the container's cpu cgroup (linux.resources.cpu."
                                   "realtimeRuntime and realtimePeriod)")
        elif exc.errno == errno.EPERM and s.policy == "SCHED_DEADLINE":
            err = RefusedAttribute(f"{err}; SCHED_DEADLINE needs the process's CPU affinity "
                                   "to span its whole root domain, which a cpuset limit "
                                   "(linux.resources.cpu.cpus) prevents (runc says the same)")
        raise err from None


def set_io_priority(p: IOPriority, where: str = "process.ioPriority") -> None:
    """ioprio_set(2) for this process (IOPRIO_WHO_PROCESS), inherited across execve."""
    try:
        sc.ioprio_set(ioprio_value(p.klass, p.priority))
    except OSError as exc:
        raise _refused(where, f"{p.klass} level {p.priority}", exc) from None


def set_personality(p: Personality) -> None:
    """personality(2) with the execution domain; kept across execve, so `uname -m` in a
    LINUX32 container says i686 (crun and runc do the same). Flags are refused earlier
    (config.procattrs.personality_problems)."""
    try:
        sc.personality(PERSONALITY_DOMAINS[p.domain])
    except OSError as exc:
        raise _refused("linux.personality.domain", p.domain, exc) from None


def set_cpu_affinity(aff: CPUAffinity | None, which: str) -> None:
    """sched_setaffinity(2) with process.execCPUAffinity.<which> ("initial": exec's first
    child, before it joins the container's cgroup; "final": the process, after the join),
    as runc does for `exec` only: config.md says the setting does not apply to the
    container's init. Unset: nothing is done."""
    cpus = None if aff is None else getattr(aff, which)
    if not cpus:
        return
    where = f"process.execCPUAffinity.{which}"
    try:
        wanted = parse_cpu_list(cpus)
    except ValueError as exc:
        raise RefusedAttribute(f"{where}: {exc}") from None
    try:
        sc.sched_setaffinity(wanted)
    except OSError as exc:
        raise _refused(where, f"CPUs {cpus}", exc) from None


def write_sysctl(key: str, value: str) -> None:
    """Write through the container's own /proc/sys (so it hits its namespaces), reached
    through a verified procfs handle: never a file a mount or link put there
    (executors/procfs.py), and never created or truncated."""
    write_proc_file("sys/" + key.replace(".", "/"), value)


def set_oom_score_adj(value: int) -> None:
    sc.write_file("/proc/self/oom_score_adj", str(value))


_DEV_NULL = os.makedev(1, 3)


def fix_stdio_permissions(uid: int) -> None:
    """Hand stdio to the process's user, as runc's fixStdioPermissions does: a uid-1000
    process must be able to `echo hello > /dev/stdout` (reopening its own fd 1) -- a
    common entrypoint and logging pattern. Only the uid changes; /dev/null and what
    already belongs to the user are left alone, and so is a file the kernel will not
    chown here (EINVAL: gid not mapped; EPERM: owner not mapped; EROFS)."""
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue  # not open
        if st.st_uid == uid or (stat.S_ISCHR(st.st_mode) and st.st_rdev == _DEV_NULL):
            continue
        try:
            sc.fchown(fd, uid, st.st_gid)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EPERM, errno.EROFS):
                raise


def switch_user(user: User, setgroups_allowed: bool = True) -> None:
    """Groups first, then gid, then uid: once the uid changes, the rest is forbidden."""
    if setgroups_allowed:
        sc.setgroups(list(user.additional_gids))
    sc.setresgid(user.gid, user.gid, user.gid)
    sc.setresuid(user.uid, user.uid, user.uid)


def build_env(process: Process) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in process.env:
        key, sep, value = entry.partition("=")
        if sep:
            env[key] = value
    if "HOME" not in env:
        env["HOME"] = _home_of(process.user.uid)
    return env


def _home_of(uid: int) -> str:
    """HOME from the container's /etc/passwd, else '/' (runc's fallback)."""
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


class ExecNotFound(OSError):
    pass


def find_executable(name: str, env: dict[str, str]) -> str:
    """Resolve args[0] the way execvp would, with the container's PATH. The messages are
    runc's, word for word where engines read them: podman maps "permission denied" to exit
    126 and "no such file or directory" / "executable file not found in" to 127."""
    if "/" in name:
        try:
            st = os.stat(name)
        except OSError as exc:
            reason = os.strerror(exc.errno or errno.ENOENT).lower()
            raise ExecNotFound(exc.errno or errno.ENOENT,
                               f'exec: "{name}": stat {name}: {reason}') from None
        if not stat.S_ISREG(st.st_mode) or not os.access(name, os.X_OK):
            raise ExecNotFound(errno.EACCES, f'exec: "{name}": permission denied')
        return name
    for d in env.get("PATH", DEFAULT_PATH).split(":"):
        path = os.path.join(d or ".", name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise ExecNotFound(errno.ENOENT, f'exec: "{name}": executable file not found in $PATH')


def set_hostname(name: str) -> None:
    sc.sethostname(name)


def set_domainname(name: str) -> None:
    sc.setdomainname(name)
