"""A small ctypes binding to libseccomp.so.2, loaded on first use.

Besides :mod:`pyoci.syscalls` this is the only module that uses ctypes. libseccomp turns
rule lists into a BPF program for the architectures asked for (config-linux.md "Seccomp":
the action, architecture and operator names are those of libseccomp's seccomp.h), so
pyoci uses it rather than generating BPF itself, as runc and crun do.

The library is opened lazily: commands that never touch seccomp (state, kill, ...) do not
pay for it, and a machine without libseccomp still runs containers without
``linux.seccomp``. Every failure is a :class:`LibseccompError` (a
:class:`~pyoci.errors.PyociError`) carrying the errno libseccomp returned; a missing
library is :class:`LibseccompMissing`.

Numeric values are libseccomp's ABI (seccomp.h): they are part of its stable interface and
identical on every architecture.
"""

from __future__ import annotations

import ctypes
import os

from pyoci.errors import PyociError

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

SONAME = "libseccomp.so.2"

# --- actions (seccomp.h SCMP_ACT_*; the kernel's SECCOMP_RET_* values) ---------------------
ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_KILL = ACT_KILL_THREAD  # seccomp.h keeps SCMP_ACT_KILL as the old name of KILL_THREAD
ACT_TRAP = 0x00030000
ACT_ERRNO_BASE = 0x00050000
ACT_NOTIFY = 0x7FC00000
ACT_TRACE_BASE = 0x7FF00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000
ACT_DATA_MASK = 0x0000FFFF  # the 16 bits of SECCOMP_RET_DATA


def act_errno(errno_value: int) -> int:
    """SCMP_ACT_ERRNO(x): fail the call with ``errno_value``."""
    return ACT_ERRNO_BASE | (errno_value & ACT_DATA_MASK)


def act_trace(msg: int) -> int:
    """SCMP_ACT_TRACE(x): stop for a ptrace tracer, which sees ``msg``."""
    return ACT_TRACE_BASE | (msg & ACT_DATA_MASK)


# --- argument comparison operators (enum scmp_compare) -------------------------------------
CMP_NE = 1
CMP_LT = 2
CMP_LE = 3
CMP_EQ = 4
CMP_GE = 5
CMP_GT = 6
CMP_MASKED_EQ = 7

# --- filter attributes (enum scmp_filter_attr) ---------------------------------------------
ATTR_ACT_DEFAULT = 1
ATTR_ACT_BADARCH = 2
ATTR_CTL_NNP = 3        # set no_new_privs on load (libseccomp's default is on)
ATTR_CTL_TSYNC = 4      # SECCOMP_FILTER_FLAG_TSYNC
ATTR_API_TSKIP = 5
ATTR_CTL_LOG = 6        # SECCOMP_FILTER_FLAG_LOG (libseccomp >= 2.4)
ATTR_CTL_SSB = 7        # SECCOMP_FILTER_FLAG_SPEC_ALLOW (>= 2.5)
ATTR_CTL_OPTIMIZE = 8   # 1 = priority/complexity, 2 = binary tree (>= 2.5)
ATTR_API_SYSRAWRC = 9   # return the kernel's own errno from load (>= 2.5)
ATTR_CTL_WAITKILL = 10  # SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (>= 2.6)

ARCH_NATIVE = 0
NR_SCMP_ERROR = -1  # seccomp_syscall_resolve_name*: "no such name"

#: A syscall has at most six arguments (seccomp_data.args[6]).
MAX_ARGS = 6


class LibseccompError(PyociError):
    """A libseccomp call failed; ``errno`` is the positive errno it returned (0 if none)."""

    def __init__(self, message: str, errno_value: int = 0) -> None:
        super().__init__(message)
        self.errno = errno_value


class LibseccompMissing(LibseccompError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"libseccomp is not installed ({SONAME}: {detail}); linux.seccomp "
                         "cannot be applied without it (Debian/Ubuntu: apt-get install "
                         "libseccomp2)")


class ArgCmp(ctypes.Structure):
    """struct scmp_arg_cmp: one comparison of one syscall argument."""

    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),  # enum scmp_compare
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


_lib: ctypes.CDLL | None = None
_load_error: str | None = None

_c = ctypes
_CTX = _c.c_void_p
#: name -> (restype, argtypes); functions newer than 2.3 are looked up when first called.
_PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    "seccomp_init": (_CTX, [_c.c_uint32]),
    "seccomp_release": (None, [_CTX]),
    "seccomp_arch_add": (_c.c_int, [_CTX, _c.c_uint32]),
    "seccomp_arch_remove": (_c.c_int, [_CTX, _c.c_uint32]),
    "seccomp_arch_exist": (_c.c_int, [_CTX, _c.c_uint32]),
    "seccomp_arch_native": (_c.c_uint32, []),
    "seccomp_arch_resolve_name": (_c.c_uint32, [_c.c_char_p]),
    "seccomp_syscall_resolve_name": (_c.c_int, [_c.c_char_p]),
    "seccomp_syscall_resolve_name_arch": (_c.c_int, [_c.c_uint32, _c.c_char_p]),
    "seccomp_rule_add_array": (_c.c_int, [_CTX, _c.c_uint32, _c.c_int, _c.c_uint,
                                          _c.POINTER(ArgCmp)]),
    "seccomp_attr_set": (_c.c_int, [_CTX, _c.c_int, _c.c_uint32]),
    "seccomp_attr_get": (_c.c_int, [_CTX, _c.c_int, _c.POINTER(_c.c_uint32)]),
    "seccomp_load": (_c.c_int, [_CTX]),
    "seccomp_export_bpf": (_c.c_int, [_CTX, _c.c_int]),
    "seccomp_notify_fd": (_c.c_int, [_CTX]),
    "seccomp_version": (_c.POINTER(_Version), []),
    "seccomp_api_get": (_c.c_uint, []),
}


def _library() -> ctypes.CDLL:
    """libseccomp, opened once; :class:`LibseccompMissing` when it cannot be."""
    global _lib, _load_error
    if _lib is not None:
        return _lib
    if _load_error is None:
        try:
            lib = ctypes.CDLL(SONAME)
        except OSError as exc:
            _load_error = str(exc).split(": ")[-1] or "cannot be opened"
        else:
            for name, (restype, argtypes) in _PROTOTYPES.items():
                func = getattr(lib, name, None)
                if func is not None:
                    func.restype = restype
                    func.argtypes = argtypes
            _lib = lib
            return lib
    raise LibseccompMissing(_load_error)


def _func(name: str) -> Any:
    func = getattr(_library(), name, None)
    if func is None:
        raise LibseccompError(f"this libseccomp ({version_string()}) has no {name}()")
    return func


def _check(rc: int, what: str) -> int:
    if rc < 0:
        raise LibseccompError(f"{what}: {os.strerror(-rc).lower()}", -rc)
    return rc


def available() -> bool:
    """Whether libseccomp can be opened."""
    try:
        _library()
    except LibseccompMissing:
        return False
    return True


def version() -> tuple[int, int, int]:
    """(major, minor, micro) of the library actually loaded (seccomp_version, >= 2.3)."""
    func = getattr(_library(), "seccomp_version", None)
    if func is None:
        return (2, 2, 0)  # seccomp_version() appeared in 2.3.0: older is all we know
    v = func().contents
    return (v.major, v.minor, v.micro)


def version_string() -> str:
    return ".".join(map(str, version()))


def api_level() -> int:
    """libseccomp's API level: what this library *and the running kernel* support.

    libseccomp probes the kernel once (seccomp(2) flags and actions) and caches it:
    1 base, 2 TSYNC, 3 LOG flag + LOG and KILL_PROCESS actions, 4 SPEC_ALLOW,
    5 NOTIFY, 6 TSYNC together with a listener, 7 WAIT_KILLABLE_RECV. A library older
    than 2.4 has no seccomp_api_get(): 0, as runc counts it.
    """
    func = getattr(_library(), "seccomp_api_get", None)
    return 0 if func is None else int(func())


def arch_native() -> int:
    return int(_func("seccomp_arch_native")())


def arch_resolve(name: str) -> int | None:
    """The token of a libseccomp architecture name ("x86_64", "aarch64"), None if unknown."""
    token = int(_func("seccomp_arch_resolve_name")(name.encode()))
    return token or None


def syscall_resolve(name: str, arch: int = ARCH_NATIVE) -> int | None:
    """The number of syscall ``name`` for ``arch``; None when libseccomp does not know it.

    For a name libseccomp knows from another architecture only, this is a negative
    pseudo-number that rules accept and apply where the call exists.
    """
    if arch == ARCH_NATIVE:
        num = _func("seccomp_syscall_resolve_name")(name.encode())
    else:
        num = _func("seccomp_syscall_resolve_name_arch")(arch, name.encode())
    return None if num == NR_SCMP_ERROR else int(num)


class Filter:
    """A libseccomp filter context (scmp_filter_ctx) being built, then loaded.

    The context is plain process memory: built in the runtime before fork, the forked
    init inherits a copy and loads it. :meth:`release` frees this process's copy.
    """

    def __init__(self, default_action: int) -> None:
        ctx = _func("seccomp_init")(default_action)
        if not ctx:
            raise LibseccompError(
                f"seccomp_init: libseccomp or the kernel refused default action "
                f"{default_action:#010x}", 22)
        self._ctx: int | None = ctx

    @property
    def ctx(self) -> int:
        if self._ctx is None:
            raise LibseccompError("the seccomp filter was already released")
        return self._ctx

    def release(self) -> None:
        if self._ctx is not None:
            _func("seccomp_release")(self._ctx)
            self._ctx = None

    def __enter__(self) -> Filter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def arch_add(self, token: int) -> bool:
        """Add an architecture; False when the filter already has it."""
        rc = _func("seccomp_arch_add")(self.ctx, token)
        if rc == -17:  # EEXIST
            return False
        _check(rc, f"seccomp_arch_add({token:#x})")
        return True

    def arch_remove(self, token: int) -> None:
        _check(_func("seccomp_arch_remove")(self.ctx, token), f"seccomp_arch_remove({token:#x})")

    def arch_exists(self, token: int) -> bool:
        rc = _func("seccomp_arch_exist")(self.ctx, token)
        if rc == -17:  # EEXIST means "not present" here (seccomp.h)
            return False
        _check(rc, f"seccomp_arch_exist({token:#x})")
        return True

    def attr_set(self, attr: int, value: int) -> None:
        _check(_func("seccomp_attr_set")(self.ctx, attr, value), f"seccomp_attr_set({attr})")

    def attr_get(self, attr: int) -> int:
        out = ctypes.c_uint32()
        _check(_func("seccomp_attr_get")(self.ctx, attr, ctypes.byref(out)),
               f"seccomp_attr_get({attr})")
        return out.value

    def rule_add(self, action: int, syscall: int,
                 conditions: Sequence[tuple[int, int, int, int]] = ()) -> None:
        """Add a rule; ``conditions`` are (arg index, CMP_*, datum_a, datum_b), AND'ed."""
        arr = (ArgCmp * max(len(conditions), 1))()
        for i, (arg, op, a, b) in enumerate(conditions):
            arr[i] = ArgCmp(arg, op, a, b)
        _check(_func("seccomp_rule_add_array")(self.ctx, action, syscall, len(conditions), arr),
               f"seccomp_rule_add({syscall})")

    def load(self) -> None:
        """Install the filter in the calling thread (seccomp(2) SECCOMP_SET_MODE_FILTER)."""
        _check(_func("seccomp_load")(self.ctx), "seccomp_load")

    def notify_fd(self) -> int:
        """The listener fd the kernel returned at load (libseccomp >= 2.5)."""
        return _check(_func("seccomp_notify_fd")(self.ctx), "seccomp_notify_fd")

    def export_bpf(self) -> bytes:
        """The BPF program load() would install (struct sock_filter, 8 bytes each)."""
        fd = os.memfd_create("pyoci-seccomp-bpf", os.MFD_CLOEXEC)
        try:
            _check(_func("seccomp_export_bpf")(self.ctx, fd), "seccomp_export_bpf")
            size = os.lseek(fd, 0, os.SEEK_END)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)
