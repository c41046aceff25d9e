"""A recording fake of pyoci.syscalls, the one layer through which the container's children
change anything (youki's ``Syscall`` trait with its ``TestHelperSyscall`` is the model).

:meth:`FakeSyscalls.install` replaces every function of :mod:`pyoci.syscalls` with one of
the fake's: each call is appended to :attr:`FakeSyscalls.calls` as ``(name, *args)`` in
the order made, nothing happens to the machine, and a plausible value comes back (a
/dev/null fd for a file opened to be changed, the old umask, a pid for fork).
Two exceptions keep the executors' own checks working without root:

- inside :attr:`sandbox` (a test's temporary directory: the rootfs, the exec FIFO)
  directories, empty files, symlinks, writes and modes are made for real as well, since
  the executors open what they just made and check it;
- calls that only look (openat2 for reading, fstatfs) go to the real layer unrecorded.

``fail(name, errno)`` makes the next matching call record itself and raise OSError, as
the kernel would. ``exit_now`` raises :class:`FakeExit` instead of ending the test.
"""

from __future__ import annotations

import errno as _errno
import os
from typing import TYPE_CHECKING, Any

from pyoci import syscalls as sc

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest


class FakeExit(BaseException):
    """sc.exit_now in a faked process: unwinds to the test (not caught as an Exception)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


#: Functions of the real layer that only look: passed through, not recorded.
_LOOKS = ("fstatfs_type", "ioprio_get", "child_subreaper", "bpf_prog_query")
_WRITE_ACCESS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC


def _real(name: str) -> Callable[..., Any]:
    return getattr(sc, name)


class FakeSyscalls:
    """Records calls; mirrors the functions and constants of pyoci.syscalls."""

    def __init__(self, sandbox: str | None = None, fork_pid: int = 4242) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.sandbox = os.path.realpath(sandbox) if sandbox else None
        self.fork_pid = fork_pid
        self._umask = 0o022
        self._failures: list[tuple[str, int, Callable[..., bool] | None]] = []
        self._stand_ins: dict[int, str] = {}  # fd of /dev/null -> what it stands in for
        self._real: dict[str, Callable[..., Any]] = {}

    # --- set-up -------------------------------------------------------------------------
    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeSyscalls:
        """Replace every function of pyoci.syscalls (modules call them as ``sc.name``)."""
        for name in dir(sc):
            value = getattr(sc, name)
            if name.startswith("_") or not callable(value) or isinstance(value, type) \
                    or getattr(value, "__module__", None) != sc.__name__:
                continue
            self._real[name] = value
            if name in _LOOKS:
                continue
            handler = getattr(type(self), name, None)
            fake = getattr(self, name) if handler is not None else self._recorder(name)
            monkeypatch.setattr(sc, name, self._guarded(name, fake))
        return self

    def fail(self, name: str, err: int, when: Callable[..., bool] | None = None) -> None:
        """The next call of ``name`` (whose arguments satisfy ``when``) is recorded, then
        raises OSError(err), as the kernel refusing it would."""
        self._failures.append((name, err, when))

    def __getattr__(self, name: str) -> Any:
        return getattr(sc, name)  # constants, for modules given the fake object itself

    # --- what tests read ----------------------------------------------------------------
    def of(self, name: str) -> list[tuple[Any, ...]]:
        """The calls of ``name`` only, in order."""
        return [c for c in self.calls if c[0] == name]

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    def index(self, name: str, pred: Callable[[tuple[Any, ...]], bool] | None = None,
              last: bool = False) -> int:
        """Position of the first (or last) call of ``name`` matching ``pred``."""
        found = [i for i, c in enumerate(self.calls) if c[0] == name and (pred is None
                                                                         or pred(c))]
        if not found:
            raise AssertionError(f"no {name} call recorded; calls: {self.names()}")
        return found[-1] if last else found[0]

    # --- machinery ----------------------------------------------------------------------
    def _guarded(self, name: str, fake: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            for i, (fname, err, when) in enumerate(self._failures):
                if fname == name and (when is None or when(*args, **kwargs)):
                    del self._failures[i]
                    self.calls.append((name, *args))
                    raise OSError(err, os.strerror(err), name)
            return fake(*args, **kwargs)
        return call

    def _recorder(self, name: str) -> Callable[..., Any]:
        def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, *args, *kwargs.values()))
        return record

    def _where(self, path: str | int, dir_fd: int | None = None) -> str:
        """The host path a call names (fds and /proc/self/fd links read back)."""
        if isinstance(path, int):
            return os.readlink(f"/proc/self/fd/{path}")
        if path.startswith("/proc/self/fd/"):
            try:
                return os.readlink(path)
            except OSError:
                return path
        if dir_fd is not None and not os.path.isabs(path):
            return os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        return path

    def _inside(self, where: str) -> bool:
        s = self.sandbox
        return s is not None and (where == s or where.startswith(s + "/"))

    def _stand_in(self, what: str) -> int:
        fd = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        self._stand_ins[fd] = what
        return fd

    # --- the calls that need more than recording ----------------------------------------
    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None = None) -> None:
        # Targets are /proc/self/fd/N of an fd open only during the call: record the path.
        if source is not None and source.startswith("/proc/self/fd/"):
            source = self._where(source)
        self.calls.append(("mount", source, self._where(target), fstype, flags, data))

    def setns(self, fd: int, nstype: int = 0) -> None:
        self.calls.append(("setns", nstype))

    def fork(self) -> int:
        self.calls.append(("fork",))
        return self.fork_pid

    def exit_now(self, code: int) -> None:
        self.calls.append(("exit_now", code))
        raise FakeExit(code)

    def umask(self, mask: int) -> int:
        self.calls.append(("umask", mask))
        old, self._umask = self._umask, mask
        return old

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0,
              arg5: int = 0) -> int:
        self.calls.append(("prctl", option, arg2, arg3, arg4, arg5))
        return 0

    def personality(self, persona: int) -> int:
        self.calls.append(("personality", persona))
        return 0

    def fchdir(self, fd: int) -> None:
        self.calls.append(("fchdir", self._where(fd)))

    def openat2(self, dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
        if not flags & _WRITE_ACCESS:
            return self._real["openat2"](dirfd, path, flags, resolve, mode)
        where = os.path.join(self._where(dirfd), path)
        self.calls.append(("openat2", where, flags))
        return self._stand_in(where)

    def open_file(self, path: str, flags: int, mode: int = 0o777,
                  dir_fd: int | None = None) -> int:
        where = self._where(path, dir_fd)
        self.calls.append(("open_file", where, flags))
        if self._inside(where):
            return os.open(path, flags, mode, dir_fd=dir_fd)
        return self._stand_in(where)

    def write(self, fd: int, data: bytes) -> int:
        where = self._stand_ins.get(fd) or self._where(fd)
        self.calls.append(("write", where, bytes(data)))
        if self._inside(where):
            return os.write(fd, data)
        return len(data)

    def sealed_memfd(self, name: str, data: bytes) -> int:
        self.calls.append(("sealed_memfd", name))
        return self._stand_in(f"memfd:{name}")

    def fexecve(self, fd: int, args: list[str], env: dict[str, str]) -> None:
        self.calls.append(("fexecve", self._stand_ins.get(fd, fd), list(args)))

    def spawn(self, path: str, argv: list[str], env: dict[str, str],
              cwd: str) -> tuple[int, int, int]:
        """A hook: recorded, and `true` run in its place (it reads stdin, exits 0)."""
        self.calls.append(("spawn", path, list(argv), cwd))
        return self._real["spawn"]("/bin/true", ["true"], {}, "/")

    def load_seccomp(self, flt: object) -> int | None:
        self.calls.append(("load_seccomp", flt))
        return None

    def ioctl(self, fd: int, request: int, arg: int | bytes = 0) -> int | bytes:
        self.calls.append(("ioctl", fd, request, arg))
        return arg

    # Filesystem changes: made for real inside the sandbox (the executors open and check
    # what they made), only recorded anywhere else.
    def _fs(self, name: str, path: str, dir_fd: int | None, *rest: Any) -> bool:
        where = self._where(path, dir_fd)
        self.calls.append((name, where, *rest))
        return self._inside(where)

    def mkdir(self, name: str, mode: int, dir_fd: int | None = None) -> None:
        if self._fs("mkdir", name, dir_fd, mode):
            os.mkdir(name, mode, dir_fd=dir_fd)

    def create_file(self, name: str, mode: int, dir_fd: int | None = None) -> None:
        if self._fs("create_file", name, dir_fd, mode):
            self._real["create_file"](name, mode, dir_fd)

    def symlink(self, target: str, name: str, dir_fd: int | None = None) -> None:
        if self._fs("symlink", name, dir_fd, target):
            os.symlink(target, name, dir_fd=dir_fd)

    def unlink(self, name: str, dir_fd: int | None = None) -> None:
        if self._fs("unlink", name, dir_fd):
            os.unlink(name, dir_fd=dir_fd)

    def chmod(self, path: str, mode: int) -> None:
        if self._fs("chmod", path, None, mode):
            os.chmod(path, mode)

    def fchmod(self, fd: int, mode: int) -> None:
        if self._fs("fchmod", self._where(fd), None, mode):
            os.fchmod(fd, mode)

    def mknod(self, name: str, mode: int, device: int, dir_fd: int | None = None) -> None:
        """Recorded; refused with EPERM as in a user namespace (no device nodes without
        root), so devices.py takes its path of binding the host's node."""
        self._fs("mknod", name, dir_fd, mode, device)
        raise PermissionError(_errno.EPERM, os.strerror(_errno.EPERM), name)

    def chown(self, path: str, uid: int, gid: int, dir_fd: int | None = None,
              follow_symlinks: bool = True) -> None:
        self._fs("chown", path, dir_fd, uid, gid)

    def fchown(self, fd: int, uid: int, gid: int) -> None:
        self.calls.append(("fchown", self._where(fd), uid, gid))
