"""Files of the container's procfs, opened so that nothing mounted or linked can redirect
them (runc 1.2.8's fix for CVE-2025-52565/CVE-2025-52881, GHSA-cgrx-mc8f-2prm).

The runtime writes into the container's /proc after pivot_root: sysctls
(/proc/sys/...), the LSM label for the next execve (/proc/PID/attr/...). A path string
would follow whatever the image or a mount put on the way -- a symlink, a bind of a host
file over /proc/sys/net/ipv4/ip_forward, a bind of another procfs file. So: /proc is
opened without following a link and checked to be procfs (fstatfs), and the file is
reached from there with openat2 RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS |
RESOLVE_NO_MAGICLINKS: no step may leave /proc, cross a mount, or follow any link.
"""

from __future__ import annotations

import errno
import os

from pyoci import syscalls as sc
from pyoci.errors import PyociError

_STRICT = (sc.RESOLVE_BENEATH | sc.RESOLVE_NO_XDEV | sc.RESOLVE_NO_SYMLINKS
           | sc.RESOLVE_NO_MAGICLINKS)


class ProcfsError(PyociError):
    pass


def open_proc_file(relative: str, flags: int) -> int:
    """An fd of /proc/``relative`` in this process's view (the container's after pivot),
    opened without creating or truncating anything (``flags`` is O_RDONLY or O_WRONLY)."""
    proc = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if sc.fstatfs_type(proc) != sc.PROC_SUPER_MAGIC:
            raise ProcfsError(f"/proc/{relative}: /proc in the container is not procfs "
                              "(no proc mount at /proc): refusing to write there")
        try:
            fd = sc.openat2(proc, relative, flags, _STRICT)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                raise ProcfsError(f"/proc/{relative}: something is mounted on the way: "
                                  "refusing to write through it") from None
            if exc.errno == errno.ELOOP:
                raise ProcfsError(f"/proc/{relative}: a symbolic link is on the way: "
                                  "refusing to write through it") from None
            if exc.errno != errno.ENOSYS:
                raise
            # Before Linux 5.6: no link followed at the last step, and still procfs.
            fd = os.open(relative, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=proc)
            if sc.fstatfs_type(fd) != sc.PROC_SUPER_MAGIC:
                os.close(fd)
                raise ProcfsError(f"/proc/{relative} is not on procfs: refusing to write "
                                  "there") from None
        return fd
    finally:
        os.close(proc)


def write_proc_file(relative: str, value: str) -> None:
    fd = open_proc_file(relative, os.O_WRONLY)
    try:
        sc.write(fd, value.encode())
    finally:
        os.close(fd)
