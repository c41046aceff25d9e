"""Resolve paths inside the rootfs to file descriptors, never to strings that are resolved
again later.

A mount destination, device path or cwd in config.json is interpreted inside the container:
a symlink in the rootfs (absolute or with '..') must resolve as it would after pivot_root,
never to a host path. Checking a path and then handing the *string* to mount(2) is not
enough: between the two, anything sharing a directory with the rootfs (a sibling container
on the same volume) can swap a checked directory for a symlink to the host
(renameat2 RENAME_EXCHANGE). That is CVE-2021-30465 (GHSA-c3xm-pvg7-gh7r): runc <= rc94
mounted outside the rootfs that way; runc rc95 opens the securejoin'd path with O_PATH,
and refuses ("possibly malicious path detected -- refusing to operate on ...") when the fd
is not where it expected; runc >= 1.2 and crun resolve with openat2(RESOLVE_IN_ROOT).

So every path here ends as an ``O_PATH`` descriptor:

- :func:`resolve` asks the kernel first: ``openat2(root, path, O_PATH, RESOLVE_IN_ROOT |
  RESOLVE_NO_MAGICLINKS)`` - '/' and '..' stop at the root, procfs magic links (which jump
  anywhere) are refused, and a concurrent rename makes it fail with EAGAIN instead of
  escaping. RESOLVE_NO_XDEV is *not* set: destinations legitimately cross the mounts
  made by earlier entries (/dev then /dev/pts, a volume then a path inside it).
- Where openat2 is missing (ENOSYS, Linux < 5.6, or a seccomp profile hiding it), and to
  create missing components, it walks one component at a time with
  ``openat(parent_fd, name, O_PATH|O_NOFOLLOW)``: each step holds the directory it found,
  a symlink is read from its own fd and restarted from the root fd, and '..' pops the
  walked stack, so it can never climb above the root. Missing components are made with
  mkdirat/openat(O_CREAT|O_EXCL) relative to the parent fd, then opened O_NOFOLLOW.
- The result is checked to lie inside the root (its /proc/self/fd link), and the caller
  mounts onto ``/proc/self/fd/N`` (:func:`fd_path`): the kernel mounts on exactly that
  inode, whatever the path's names point to by then.
"""

from __future__ import annotations

import errno
import os
import stat

from pyoci import syscalls as sc
from pyoci.errors import PyociError

#: Linux's own limit on symlinks followed in one lookup (MAXSYMLINKS).
MAX_SYMLINKS = 40
_O_PATH = os.O_PATH | os.O_CLOEXEC
_RESOLVE = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS
_EAGAIN_RETRIES = 32
#: False after openat2 said ENOSYS once (also set by tests to exercise the walk).
use_openat2 = True


class UnsafePath(PyociError):
    """A path that resolves somewhere it must not (outside the root, or through a
    symlink where only ordinary directories are accepted); the message says where."""


def fd_path(fd: int) -> str:
    """The magic link naming exactly the file ``fd`` refers to, for mount(2)."""
    return f"/proc/self/fd/{fd}"


def fd_realpath(fd: int) -> str:
    return os.readlink(fd_path(fd))


class Root:
    """An O_PATH descriptor of a root directory (the rootfs before pivot_root, '/' after)
    and its canonical path, used to resolve and to check that results stay inside."""

    __slots__ = ("fd", "path")

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, _O_PATH | os.O_DIRECTORY)
        try:
            self.path = "/" if path == "/" else fd_realpath(self.fd)
        except BaseException:
            os.close(self.fd)
            raise

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def host_path(self, fd: int) -> str:
        """Where ``fd`` is, as a path of this process; raises :class:`UnsafePath` when
        that is not inside the root (runc's "possibly malicious path detected")."""
        real = fd_realpath(fd)
        if self.path == "/" or real == self.path or real.startswith(self.path + "/"):
            return real
        raise UnsafePath(f"possibly malicious path detected: resolved to {real}, outside "
                         "the container's root; refusing to operate on it")

    def container_path(self, fd: int) -> str:
        """``fd``'s path as the container will see it (for messages)."""
        real = self.host_path(fd)
        return "/" + real[len(self.path):].lstrip("/") if self.path != "/" else real


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def resolve(root: Root, path: str, create: str | None = None, mode: int = 0o755,
            symlinks: bool = True) -> int:
    """O_PATH fd (close-on-exec, caller closes) of container path ``path`` under
    ``root``. Symlinks are followed as if ``root`` were '/' (the last one too), unless
    ``symlinks`` is false: then any symlink on the way is an :class:`UnsafePath` (for
    /proc and /sys). ``create``: None (must exist), "dir" (missing components become
    directories of ``mode``) or "file" (the last one an empty 0644 file)."""
    fd = -1
    if use_openat2:
        fd = _openat2(root, path, symlinks)
    if fd < 0:
        fd, _ = _walk(root, path, create, mode, symlinks)
    if root.path == "/":
        return fd  # after pivot_root: nothing is outside '/' (and /proc may be absent)
    try:
        root.host_path(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _openat2(root: Root, path: str, symlinks: bool) -> int:
    """The kernel's resolution; -1 when the walk must do it (missing component, no
    openat2), the error when it is final."""
    global use_openat2
    flags = _RESOLVE if symlinks else _RESOLVE | sc.RESOLVE_NO_SYMLINKS
    for _ in range(_EAGAIN_RETRIES):
        try:
            return sc.openat2(root.fd, path or "/", _O_PATH, flags)
        except OSError as exc:
            if exc.errno == errno.EAGAIN:  # a rename or mount raced the lookup: again
                continue
            if exc.errno in (errno.ENOSYS, errno.EPERM, errno.E2BIG):
                use_openat2 = False
                return -1
            if exc.errno == errno.ENOENT or (exc.errno == errno.ELOOP and not symlinks):
                return -1  # the walk creates, or names the symlink in its error
            raise OSError(exc.errno, exc.strerror, path) from None
    return -1


def _walk(root: Root, path: str, create: str | None, mode: int, symlinks: bool,
          partial: bool = False) -> tuple[int, list[str]]:
    """The component walk; with ``partial`` a missing component ends it, and what was
    not walked is returned beside the fd of the last directory reached."""
    stack = [os.dup(root.fd)]
    pending = _parts(path)
    pending.reverse()
    walked: list[str] = []  # container path so far, for messages
    links = 0
    try:
        while pending:
            part = pending.pop()
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                    walked.pop()
                continue
            try:
                fd = _open_component(stack[-1], part, create if not pending else "dir",
                                     create is not None, mode, walked)
            except FileNotFoundError:
                if not partial:
                    raise
                return stack.pop(), [part, *reversed(pending)]
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                try:
                    if not symlinks:
                        raise UnsafePath("/" + "/".join([*walked, part])
                                         + " is a symbolic link")
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                    # Read from the link's own fd: the text is the one of the inode we
                    # looked at, whatever the name points to now.
                    target = os.readlink("", dir_fd=fd)
                finally:
                    os.close(fd)
                if target.startswith("/"):
                    for extra in stack[1:]:
                        os.close(extra)
                    del stack[1:]
                    walked.clear()
                pending.extend(reversed(_parts(target)))
                continue
            if pending and not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR),
                                         "/" + "/".join([*walked, part]))
            stack.append(fd)
            walked.append(part)
        return stack.pop(), []
    finally:
        for fd in stack:
            os.close(fd)


def _open_component(parent: int, name: str, kind: str | None, create: bool, mode: int,
                    walked: list[str]) -> int:
    """openat(parent, name, O_PATH|O_NOFOLLOW), creating it (a directory, or a file when
    ``kind`` is "file") relative to ``parent`` when missing and ``create``."""
    for _ in range(8):
        try:
            return os.open(name, _O_PATH | os.O_NOFOLLOW, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT),
                                        "/" + "/".join([*walked, name])) from None
        try:
            if kind == "file":
                sc.create_file(name, 0o644, dir_fd=parent)
            else:
                sc.mkdir(name, mode, dir_fd=parent)
        except FileExistsError:
            pass  # made meanwhile by someone else: open what is there now
    raise OSError(errno.EAGAIN, "kept changing while it was created",
                  "/" + "/".join([*walked, name]))


def secure_join(root: str, unsafe: str) -> str:
    """Host path of container path ``unsafe`` under ``root`` (symlinks followed inside
    the root; missing trailing components appended as they are). For messages and tests:
    a string is resolved again by whoever uses it, so nothing may be mounted onto it."""
    with Root(root) as r:
        fd, rest = _walk(r, unsafe, None, 0, True, partial=True)
        try:
            base = r.host_path(fd)
        finally:
            os.close(fd)
    tail: list[str] = []
    for p in rest:
        if p != "..":
            tail.append(p)
        elif tail:
            tail.pop()
        else:
            base = os.path.dirname(base) if base != r.path else base
    return os.path.join(base, *tail)


def ensure_dir(root: str, container_path: str, mode: int = 0o755) -> str:
    """Create directory ``container_path`` (and parents) inside ``root``, through fds;
    return its host path (informational only)."""
    with Root(root) as r:
        fd = resolve(r, container_path, create="dir", mode=mode)
        try:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR),
                                         container_path)
            return r.host_path(fd)
        finally:
            os.close(fd)


def ensure_file(root: str, container_path: str) -> str:
    """Create an empty file at ``container_path`` inside ``root`` (parents too), through
    fds; return its host path (informational only)."""
    with Root(root) as r:
        fd = resolve(r, container_path, create="file")
        try:
            return r.host_path(fd)
        finally:
            os.close(fd)
