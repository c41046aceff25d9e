"""Process executor (config.md "Process", "Hostname", "Domainname"; config-linux.md
"Sysctl"): the attributes the user's program inherits, applied in the init just before
it execs the program."""

from __future__ import annotations

import errno
import os
import resource
import stat

from pyoci import syscalls as sc
from pyoci.config.model import Process, Rlimit, User
from pyoci.config.semantic import RLIMITS

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def set_rlimit(rl: Rlimit) -> None:
    # prlimit, not setrlimit: CPython turns setrlimit's EPERM into a ValueError.
    resource.prlimit(0, RLIMITS[rl.type], (rl.soft, rl.hard))


def write_sysctl(key: str, value: str) -> None:
    """Write through the container's own /proc/sys (so it hits its namespaces)."""
    with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
        f.write(value)


def set_oom_score_adj(value: int) -> None:
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write(str(value))


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
            os.fchown(fd, uid, st.st_gid)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EPERM, errno.EROFS):
                raise


def switch_user(user: User, setgroups_allowed: bool = True) -> None:
    """Groups first, then gid, then uid: once the uid changes, the rest is forbidden."""
    if setgroups_allowed:
        os.setgroups(list(user.additional_gids))
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)


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
