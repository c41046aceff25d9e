"""Device executor (config-linux.md "Devices", "Default Devices", "Default /dev symlinks").

Nodes are made with mknod(2); where that is refused (a user namespace), the host's node
of the same path is bind-mounted onto an empty file instead, as runc does.
"""

from __future__ import annotations

import os
import stat

from pyoci import syscalls as sc
from pyoci.config.model import Device
from pyoci.executors.paths import ensure_dir, ensure_file, secure_join

DEFAULT_DEVICES = (
    Device("/dev/null", "c", 1, 3, 0o666, 0, 0),
    Device("/dev/zero", "c", 1, 5, 0o666, 0, 0),
    Device("/dev/full", "c", 1, 7, 0o666, 0, 0),
    Device("/dev/random", "c", 1, 8, 0o666, 0, 0),
    Device("/dev/urandom", "c", 1, 9, 0o666, 0, 0),
    Device("/dev/tty", "c", 5, 0, 0o666, 0, 0),
)
DEV_SYMLINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
                ("pts/ptmx", "/dev/ptmx"))
_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def create_device(rootfs: str, dev: Device, keep_existing: bool = False) -> None:
    """mknod ``dev`` inside the rootfs. An existing file at the path is kept if it is that
    very device; otherwise it is an error (config-linux.md "Devices": a file that does not
    match the requested device MUST be an error), or kept as is for default devices."""
    path = secure_join(rootfs, dev.path)
    ensure_dir(rootfs, os.path.dirname(dev.path))
    mode = (0o666 if dev.file_mode is None else dev.file_mode) & 0o7777
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if keep_existing:
            return
        same = (stat.S_IFMT(st.st_mode) == _TYPES[dev.type]
                and (dev.type == "p" or st.st_rdev == os.makedev(dev.major, dev.minor)))
        if not same:
            raise FileExistsError(17, "a file that is not the requested device is in the way",
                                  dev.path)
    else:
        try:
            os.mknod(path, mode | _TYPES[dev.type], os.makedev(dev.major, dev.minor))
        except PermissionError:
            ensure_file(rootfs, dev.path)
            sc.mount(dev.path, path, "bind", sc.MS_BIND)
            return
    # mknod honours the umask; chmod makes the mode exactly what the config says.
    os.chmod(path, mode)
    os.chown(path, dev.uid or 0, dev.gid or 0)


def create_default_devices(rootfs: str, with_console: bool) -> None:
    for dev in DEFAULT_DEVICES:
        create_device(rootfs, dev, keep_existing=True)
    if with_console:
        ensure_file(rootfs, "/dev/console")
    for target, link in DEV_SYMLINKS:
        path = secure_join(rootfs, link)
        if not os.path.lexists(path):
            os.symlink(target, path)
    if os.path.exists("/proc/kcore") and not os.path.lexists(secure_join(rootfs, "/dev/core")):
        os.symlink("/proc/kcore", secure_join(rootfs, "/dev/core"))
