"""Resolve paths inside the rootfs without ever leaving it.

A mount destination or device path in config.json is interpreted inside the container:
a symlink in the rootfs (absolute or with '..') must resolve as it would after pivot_root,
never to a host path. This is the rule runc's securejoin and crun's openat2(RESOLVE_IN_ROOT)
enforce; here it is done component by component with lstat/readlink.
"""

from __future__ import annotations

import errno
import os
import stat

_MAX_SYMLINKS = 255


def secure_join(root: str, unsafe: str) -> str:
    """Host path of container path ``unsafe`` under ``root``; symlinks are followed as if
    ``root`` were '/'. Missing trailing components are appended unresolved."""
    root = os.path.abspath(root)
    pending = [p for p in unsafe.split("/") if p not in ("", ".")]
    pending.reverse()
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        except NotADirectoryError:
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR),
                          "/" + "/".join(resolved)) from None
        if not stat.S_ISLNK(st.st_mode):
            resolved.append(part)
            continue
        links += 1
        if links > _MAX_SYMLINKS:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), unsafe)
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p not in ("", ".")]
        pending.extend(reversed(parts))
    return os.path.join(root, *resolved)


def ensure_dir(root: str, container_path: str, mode: int = 0o755) -> str:
    """Create directory ``container_path`` (and parents) inside ``root``; return host path."""
    path = secure_join(root, container_path)
    rel = os.path.relpath(path, root)
    current = root
    for part in [] if rel == "." else rel.split(os.sep):
        current = os.path.join(current, part)
        try:
            os.mkdir(current, mode)
        except FileExistsError:
            if not os.path.isdir(current):
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), current) from None
    return path


def ensure_file(root: str, container_path: str) -> str:
    """Create an empty file at ``container_path`` inside ``root`` (parents too)."""
    path = secure_join(root, container_path)
    ensure_dir(root, os.path.dirname(os.path.relpath(path, root)) or "/")
    if not os.path.lexists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644))
    return path
