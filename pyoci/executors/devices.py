"""Device executor (config-linux.md "Devices", "Default Devices", "Default /dev symlinks").

Nodes are made with mknod(2); where that is refused (a user namespace), the host's node
of the same path is bind-mounted onto an empty file instead, as runc does.

Every step works relative to an fd of the node's directory, resolved inside the rootfs
(:mod:`pyoci.executors.paths`): mknodat, then chmod/chown through the new node's own
O_PATH fd, so a path swapped meanwhile (a shared volume, CVE-2021-30465) cannot redirect
them to a host file.
"""

from __future__ import annotations

import errno
import os
import stat

from pyoci import syscalls as sc
from pyoci.config.model import Device
from pyoci.executors.paths import Root, fd_path, resolve

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
_O_PATH = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


def _is(st: os.stat_result, dev: Device) -> bool:
    return stat.S_IFMT(st.st_mode) == _TYPES[dev.type] and (
        dev.type == "p" or st.st_rdev == os.makedev(dev.major or 0, dev.minor or 0))


def _split(path: str) -> tuple[str, str]:
    parent, name = os.path.split(os.path.normpath("/" + path))
    if not name:
        raise IsADirectoryError(errno.EISDIR, "a device cannot be the root", path)
    return parent, name


def create_device(rootfs: str, dev: Device, keep_existing: bool = False) -> None:
    """mknod ``dev`` inside the rootfs. An existing file at the path is kept if it is that
    very device; otherwise it is an error (config-linux.md "Devices": a file that does not
    match the requested device MUST be an error)."""
    with Root(rootfs) as root:
        _create(root, dev, default=keep_existing)


def _create(root: Root, dev: Device, default: bool) -> None:
    """``default``: one of the default devices the runtime MUST supply. An existing node
    that is that device is kept as it is; anything else but a directory (a symlink, a
    regular file: an image's fake /dev/null pointing at /proc/sys/kernel/core_pattern,
    CVE-2025-31133) is replaced by the real device."""
    parent, name = _split(dev.path)
    d = resolve(root, parent, create="dir")
    try:
        if not stat.S_ISDIR(os.fstat(d).st_mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), parent)
        try:
            st: os.stat_result | None = os.stat(name, dir_fd=d, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and _is(st, dev):
            if default:
                return
        elif st is not None and default and not stat.S_ISDIR(st.st_mode):
            sc.unlink(name, dir_fd=d)
            st = None
        elif st is not None:
            raise FileExistsError(errno.EEXIST, "a file that is not the requested device "
                                  "is in the way", dev.path)
        mode = (0o666 if dev.file_mode is None else dev.file_mode) & 0o7777
        if st is None:
            try:
                sc.mknod(name, mode | _TYPES[dev.type],
                         os.makedev(dev.major or 0, dev.minor or 0), dir_fd=d)
            except PermissionError:
                _bind_host_node(d, name, dev)
                return
        fd = os.open(name, _O_PATH, dir_fd=d)
        try:
            if not _is(os.fstat(fd), dev):  # swapped since mknod: touch nothing
                raise FileExistsError(errno.EEXIST, "replaced while it was created", dev.path)
            # mknod honours the umask; chmod makes the mode exactly what the config says.
            # Through the node's own fd, never its name.
            sc.chmod(fd_path(fd), mode)
            sc.chown(fd_path(fd), dev.uid or 0, dev.gid or 0)
        finally:
            os.close(fd)
    finally:
        os.close(d)


def _bind_host_node(d: int, name: str, dev: Device) -> None:
    """mknod refused (user namespace): bind the host's node of the same path onto an
    empty regular file made in directory ``d``."""
    try:
        sc.create_file(name, 0o644, dir_fd=d)
    except FileExistsError:
        pass
    fd = os.open(name, _O_PATH, dir_fd=d)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FileExistsError(errno.EEXIST, "not a regular file to bind the device onto",
                                  dev.path)
        try:
            sc.mount(dev.path, fd_path(fd), "bind", sc.MS_BIND)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, dev.path) from None
    finally:
        os.close(fd)


def create_default_devices(rootfs: str, with_console: bool) -> None:
    with Root(rootfs) as root:
        for dev in DEFAULT_DEVICES:
            _create(root, dev, default=True)
        d = resolve(root, "/dev", create="dir")
        try:
            if with_console:
                try:
                    sc.create_file("console", 0o644, dir_fd=d)
                except FileExistsError:
                    pass
            links = list(DEV_SYMLINKS)
            if os.path.exists("/proc/kcore"):
                links.append(("/proc/kcore", "/dev/core"))
            for target, link in links:
                try:
                    sc.symlink(target, os.path.basename(link), dir_fd=d)
                except FileExistsError:
                    pass
        finally:
            os.close(d)
