"""The single thin syscall layer: everything pyoci does through ctypes lives here.

Each wrapper raises ``OSError`` with errno set, so callers above can name the step that
failed and the reason ("mount /proc onto rootfs/proc: permission denied"). Constants come
from <linux/sched.h>, <sys/mount.h> and <linux/prctl.h> (x86_64 and aarch64 agree on these).
Unit tests replace this module's functions with a fake; integration tests use it as is.
"""

from __future__ import annotations

import _signal
import _socket  # not socket: its enums cost ~9 ms at import (issue 5)
import ctypes
import fcntl
import os
import resource as _resource
import struct

TYPE_CHECKING = False  # annotations only: typing costs ~3 ms to import
if TYPE_CHECKING:
    from typing import NoReturn

# --- clone/unshare namespace flags (<linux/sched.h>) -------------------------------------
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# --- mount flags (<sys/mount.h>) ---------------------------------------------------------
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2
PROPAGATION_FLAGS = MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE

# --- prctl (<linux/prctl.h>) -------------------------------------------------------------
PR_SET_NAME = 15
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36

_SYS_NUMBERS = {
    # name: (x86_64, aarch64)
    "pivot_root": (155, 41),
    "keyctl": (250, 219),
}
KEYCTL_JOIN_SESSION_KEYRING = 1

# libc is already loaded in every CPython process: dlopen(NULL) finds it without
# ctypes.util.find_library, which costs milliseconds (it may even run ldconfig).
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), what)
    return result


def _enc(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def _sysno(name: str) -> int:
    machine = os.uname().machine
    index = {"x86_64": 0, "aarch64": 1}.get(machine)
    if index is None:
        raise OSError(38, f"{name}: unsupported architecture {machine}")
    return _SYS_NUMBERS[name][index]


def mount(source: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    _check(_libc.mount(_enc(source), _enc(target), _enc(fstype), flags, _enc(data)), target)


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_enc(target), flags), target)


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(_sysno("pivot_root"), _enc(new_root), _enc(put_old)), new_root)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def setdomainname(name: str) -> None:
    raw = name.encode()
    _check(_libc.setdomainname(raw, len(raw)), "setdomainname")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), "prctl")


def set_no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_child_subreaper() -> None:
    prctl(PR_SET_CHILD_SUBREAPER, 1)


# --- runtime hardening (docs/security.md) ------------------------------------------------
PR_SET_DUMPABLE = 4
PROC_SUPER_MAGIC = 0x9FA0
_MFD_CLOEXEC = 0x1
_MFD_ALLOW_SEALING = 0x2
_MFD_EXEC = 0x10  # kernel >= 6.3: say so explicitly where vm.memfd_noexec asks for it


def set_non_dumpable() -> None:
    """prctl(PR_SET_DUMPABLE, 0): /proc/PID/{exe,fd,mem,environ...} of this process become
    root-owned and closed to ptrace-mode access from anything lacking CAP_SYS_PTRACE in the
    host's user namespace (CVE-2019-5736 class). Inherited across fork; execve of the
    user's program gives the flag back to it."""
    prctl(PR_SET_DUMPABLE, 0)


def new_session() -> None:
    """setsid(2): a session (and process group) of its own, without a controlling terminal.
    runc does it for every init and exec'd process: engines signal their own group, and a
    container must not reach the caller's terminal (/dev/tty, TIOCSTI) or kill it with
    `kill 0`."""
    os.setsid()


def close_fds_except(first: int, keep: tuple[int, ...] | list[int]) -> None:
    """Close every descriptor >= ``first`` but those in ``keep``, with close_range(2)
    through os.closerange: it needs no /proc, which may be the container's (and lie)."""
    low = first
    for fd in sorted(k for k in keep if k >= first):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 0x7FFFFFFF)


def sealed_memfd(name: str, data: bytes) -> int:
    """An anonymous, close-on-exec file holding ``data``, sealed against every change
    (memfd_create(2), F_ADD_SEALS): executing it gives a /proc/PID/exe nobody can write."""
    try:
        fd = os.memfd_create(name, _MFD_CLOEXEC | _MFD_ALLOW_SEALING | _MFD_EXEC)
    except OSError:  # EINVAL before 6.3, which has no MFD_EXEC
        fd = os.memfd_create(name, _MFD_CLOEXEC | _MFD_ALLOW_SEALING)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK
                    | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def fexecve(fd: int, args: list[str], env: dict[str, str]) -> None:
    """execveat(fd, "", AT_EMPTY_PATH) through os.execve; raises OSError on failure."""
    os.execve(fd, args, env)


class _Statfs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_long * 15)]


_libc.fstatfs.argtypes = [ctypes.c_int, ctypes.c_void_p]


def fstatfs_type(fd: int) -> int:
    """f_type of the filesystem ``fd`` is on (statfs(2)): PROC_SUPER_MAGIC for procfs."""
    buf = _Statfs()
    _check(_libc.fstatfs(fd, ctypes.byref(buf)), "fstatfs")
    return int(buf.f_type)


def join_session_keyring(name: str | None = None) -> None:
    """keyctl(KEYCTL_JOIN_SESSION_KEYRING): a fresh session keyring, as runc gives each
    container unless --no-new-keyring, so containers do not share the caller's keys."""
    _check(_libc.syscall(_sysno("keyctl"), KEYCTL_JOIN_SESSION_KEYRING, _enc(name)), "keyctl")


_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def set_link_up(ifname: str) -> None:
    """Bring an interface up with SIOCSIFFLAGS: enough for loopback, no netlink needed."""
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sH22x", ifname.encode(), 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS,
                    struct.pack("16sH22x", ifname.encode(), flags | _IFF_UP))
    finally:
        sock.close()


# --- capabilities (<linux/capability.h>, <linux/prctl.h>) --------------------------------
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
PR_SET_KEEPCAPS = 8
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set the calling thread's three capability sets from 64-bit masks."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def capbset_drop(cap: int) -> None:
    prctl(PR_CAPBSET_DROP, cap)


def set_keepcaps(keep: bool) -> None:
    prctl(PR_SET_KEEPCAPS, int(keep))


def ambient_raise(cap: int) -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)


def ambient_clear() -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


# --- bpf(2) (<linux/bpf.h>): the cgroup v2 device controller ------------------------------
# cgroup v2 has no devices controller; a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the
# cgroup decides each device access instead (Documentation/admin-guide/cgroup-v2.rst,
# "Device controller"). Only the commands that needs are wrapped; each builds its part of
# ``union bpf_attr`` in a zeroed buffer (the kernel accepts a larger attr than it knows as
# long as the tail is zero, and zero means "unset" for every field).
_SYS_NUMBERS["bpf"] = (321, 280)

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_OVERRIDE = 1
BPF_F_ALLOW_MULTI = 2
BPF_F_REPLACE = 4
BPF_F_QUERY_EFFECTIVE = 1
_BPF_ATTR_SIZE = 128
_BPF_INSN_SIZE = 8
_BPF_OBJ_NAME_LEN = 16
# Verifier log: BPF_LOG_LEVEL1 is enough for the reason of a rejection; the buffer must be
# at least 128 bytes and below UINT_MAX >> 8 for older kernels.
_BPF_LOG_LEVEL = 1
_BPF_LOG_SIZE = 1 << 20


def _bpf(cmd: int, attr: ctypes.Array, what: str) -> int:
    """bpf(cmd, &attr, sizeof attr); arguments passed as longs (syscall() is variadic)."""
    return _check(_libc.syscall(ctypes.c_long(_sysno("bpf")), ctypes.c_long(cmd),
                                ctypes.c_void_p(ctypes.addressof(attr)),
                                ctypes.c_long(len(attr))), what)


def _bpf_prog_load_once(prog_type: int, insns: ctypes.Array, count: int, license_: ctypes.Array,
                        name: bytes, log: ctypes.Array | None) -> int:
    attr = ctypes.create_string_buffer(_BPF_ATTR_SIZE)
    # prog_type, insn_cnt, insns, license, log_level, log_size, log_buf, kern_version,
    # prog_flags, prog_name[16]
    struct.pack_into("=IIQQIIQII16s", attr, 0, prog_type, count, ctypes.addressof(insns),
                     ctypes.addressof(license_), _BPF_LOG_LEVEL if log is not None else 0,
                     len(log) if log is not None else 0,
                     ctypes.addressof(log) if log is not None else 0, 0, 0, name)
    return _bpf(BPF_PROG_LOAD, attr, "BPF_PROG_LOAD")


def bpf_prog_load(prog_type: int, insns: bytes, license: str, name: str = "") -> int:
    """Load a program; returns its fd (O_CLOEXEC). Loaded first without a verifier log (a
    log that overflows fails the load on kernels >= 6.4); if the kernel refuses, loaded
    again with a log so the OSError's strerror carries the verifier's reason."""
    if not insns or len(insns) % _BPF_INSN_SIZE:
        raise OSError(22, f"{os.strerror(22)}: program is not a whole number of instructions",
                      "BPF_PROG_LOAD")
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license.encode())
    raw_name = name.encode()[:_BPF_OBJ_NAME_LEN - 1]
    count = len(insns) // _BPF_INSN_SIZE
    try:
        return _bpf_prog_load_once(prog_type, code, count, lic, raw_name, None)
    except OSError as first:
        log = ctypes.create_string_buffer(_BPF_LOG_SIZE)
        try:
            return _bpf_prog_load_once(prog_type, code, count, lic, raw_name, log)
        except OSError as second:
            text = log.value.decode(errors="replace").strip()
            err = first.errno or second.errno or 0
            reason = os.strerror(err) + (f" (verifier: {_last_lines(text)})" if text else "")
            raise OSError(err, reason, "BPF_PROG_LOAD") from None


def _last_lines(text: str, count: int = 2) -> str:
    """The verifier prints the failing instruction and its reason last, then statistics
    ("processed N insns ...", "verification time ...") that say nothing about why."""
    lines = [line.strip() for line in text.splitlines() if line.strip()
             and not line.startswith(("processed ", "verification time"))]
    return " | ".join(lines[-count:])


def bpf_prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0,
                    replace_fd: int = 0) -> None:
    """BPF_PROG_ATTACH: target_fd, attach_bpf_fd, attach_type, attach_flags, replace_bpf_fd."""
    attr = ctypes.create_string_buffer(_BPF_ATTR_SIZE)
    struct.pack_into("=IIIII", attr, 0, target_fd, prog_fd, attach_type, flags, replace_fd)
    _bpf(BPF_PROG_ATTACH, attr, "BPF_PROG_ATTACH")


def bpf_prog_detach2(target_fd: int, prog_fd: int, attach_type: int) -> None:
    """BPF_PROG_DETACH naming the program (needed when several are attached, ALLOW_MULTI)."""
    attr = ctypes.create_string_buffer(_BPF_ATTR_SIZE)
    struct.pack_into("=III", attr, 0, target_fd, prog_fd, attach_type)
    _bpf(BPF_PROG_DETACH, attr, "BPF_PROG_DETACH")


def bpf_prog_query(target_fd: int, attach_type: int,
                   query_flags: int = 0) -> tuple[int, list[int]]:
    """BPF_PROG_QUERY: (attach_flags, program ids) of ``attach_type`` on ``target_fd``.
    Without BPF_F_QUERY_EFFECTIVE only the programs attached to that cgroup itself. The
    kernel answers ENOSPC with the real count when the id array is too small: retry."""
    size = 64
    for _ in range(8):
        ids = (ctypes.c_uint32 * size)()
        attr = ctypes.create_string_buffer(_BPF_ATTR_SIZE)
        # target_fd, attach_type, query_flags, attach_flags, prog_ids, prog_cnt
        struct.pack_into("=IIIIQI", attr, 0, target_fd, attach_type, query_flags, 0,
                         ctypes.addressof(ids), size)
        try:
            _bpf(BPF_PROG_QUERY, attr, "BPF_PROG_QUERY")
        except OSError as exc:
            if exc.errno != 28:  # ENOSPC
                raise
            size = max(struct.unpack_from("=I", attr, 24)[0], size * 2)
            continue
        attach_flags = struct.unpack_from("=I", attr, 12)[0]
        count = struct.unpack_from("=I", attr, 24)[0]
        return attach_flags, list(ids[:count])
    raise OSError(28, os.strerror(28), "BPF_PROG_QUERY")


def bpf_prog_get_fd_by_id(prog_id: int) -> int:
    """BPF_PROG_GET_FD_BY_ID: an fd (O_CLOEXEC) for an attached program, e.g. to detach it."""
    attr = ctypes.create_string_buffer(_BPF_ATTR_SIZE)
    struct.pack_into("=I", attr, 0, prog_id)
    return _bpf(BPF_PROG_GET_FD_BY_ID, attr, f"BPF_PROG_GET_FD_BY_ID {prog_id}")


# --- mounts-security: openat2(2) for in-rootfs resolution (issue 11 item 3) ---------------
_SYS_NUMBERS["openat2"] = (437, 437)  # one number on every architecture (kernel >= 5.6)
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(dirfd, path, {flags, mode, resolve}): the kernel resolves ``path`` with the
    RESOLVE_* rules in one call (RESOLVE_IN_ROOT: '/' and '..' stop at ``dirfd``, as if
    chrooted there, and it fails with EAGAIN rather than race a rename). Raises OSError;
    ENOSYS before Linux 5.6 (or where seccomp hides it)."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    return _check(_libc.syscall(ctypes.c_long(_sysno("openat2")), ctypes.c_long(dirfd),
                                ctypes.c_char_p(os.fsencode(path)),
                                ctypes.c_void_p(ctypes.addressof(how)),
                                ctypes.c_long(ctypes.sizeof(how))), path)


# --- fields: scheduling attributes and personality (issue 13) ----------------------------
_SYS_NUMBERS["sched_setattr"] = (314, 274)
_SYS_NUMBERS["ioprio_set"] = (251, 30)
_SYS_NUMBERS["ioprio_get"] = (252, 31)
IOPRIO_WHO_PROCESS = 1
_libc.personality.argtypes = [ctypes.c_ulong]


def sched_setattr(policy: int, flags: int = 0, nice: int = 0, priority: int = 0,
                  runtime: int = 0, deadline: int = 0, period: int = 0, pid: int = 0) -> None:
    """sched_setattr(2) with the VER0 struct sched_attr (48 bytes: size, policy, flags,
    nice, priority, runtime, deadline, period). pid 0 is the calling thread, which in
    pyoci's single-threaded children is the process."""
    attr = struct.pack("=IIQiIQQQ", 48, policy, flags, nice, priority, runtime, deadline,
                       period)
    buf = ctypes.create_string_buffer(attr, len(attr))
    _check(_libc.syscall(ctypes.c_long(_sysno("sched_setattr")), ctypes.c_long(pid), buf,
                         ctypes.c_long(0)), "sched_setattr")


def ioprio_set(value: int, pid: int = 0) -> None:
    """ioprio_set(IOPRIO_WHO_PROCESS, pid, value); pid 0 is the caller."""
    _check(_libc.syscall(ctypes.c_long(_sysno("ioprio_set")), ctypes.c_long(IOPRIO_WHO_PROCESS),
                         ctypes.c_long(pid), ctypes.c_long(value)), "ioprio_set")


def ioprio_get(pid: int = 0) -> int:
    """ioprio_get(IOPRIO_WHO_PROCESS, pid): (class << 13) | level."""
    return _check(_libc.syscall(ctypes.c_long(_sysno("ioprio_get")),
                                ctypes.c_long(IOPRIO_WHO_PROCESS), ctypes.c_long(pid)),
                  "ioprio_get")


def personality(persona: int) -> int:
    """personality(2); returns the previous persona. 0xffffffff only queries."""
    return _check(_libc.personality(persona), "personality")


# --- api (pyoci/api.py) ------------------------------------------------------------------
PR_GET_CHILD_SUBREAPER = 37


def child_subreaper() -> bool:
    """prctl(PR_GET_CHILD_SUBREAPER): whether the caller is a child subreaper. The Python
    API sets the flag around run's create and exec (the container's process must become
    the caller's child to be waited for) and restores the caller's own setting after: a
    library must not leave its caller collecting every orphan of its descendants."""
    flag = ctypes.c_int(0)
    prctl(PR_GET_CHILD_SUBREAPER, ctypes.addressof(flag))
    return bool(flag.value)


# --- syscall seam (issue 14 item 4): every effect of the container's children -------------
# The init, exec's children and the executors they call change the machine only through
# the functions below (and the ones above), never through os/resource directly, so that a
# unit test can replace this module's functions with a recording fake
# (tests/unit/fake_syscalls.py) and check the whole order of effects without root. Each
# is a thin wrapper: same arguments as the os/resource call, same OSError (errno set).
# Reads without an effect (stat, readlink, reading /proc) stay with os.

def setresuid(ruid: int, euid: int, suid: int) -> None:
    os.setresuid(ruid, euid, suid)


def setresgid(rgid: int, egid: int, sgid: int) -> None:
    os.setresgid(rgid, egid, sgid)


def setgroups(groups: list[int]) -> None:
    os.setgroups(groups)


def prlimit(resource_: int, limits: tuple[int, int]) -> None:
    """prlimit(0, ...), not setrlimit: CPython turns setrlimit's EPERM into a ValueError."""
    _resource.prlimit(0, resource_, limits)


def sched_setaffinity(cpus: set[int] | list[int]) -> None:
    os.sched_setaffinity(0, cpus)


def umask(mask: int) -> int:
    return os.umask(mask)


def chdir(path: str) -> None:
    os.chdir(path)


def fchdir(fd: int) -> None:
    os.fchdir(fd)


def chroot(path: str) -> None:
    os.chroot(path)


def mkdir(name: str, mode: int, dir_fd: int | None = None) -> None:
    os.mkdir(name, mode, dir_fd=dir_fd)


def open_file(path: str, flags: int, mode: int = 0o777,
              dir_fd: int | None = None) -> int:
    """os.open for the opens that change something: O_CREAT, a write, a pty."""
    return os.open(path, flags, mode, dir_fd=dir_fd)


def create_file(name: str, mode: int, dir_fd: int | None = None) -> None:
    """An empty file, which must not exist yet (O_CREAT|O_EXCL, never through a link)."""
    os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                     mode, dir_fd=dir_fd))


def write(fd: int, data: bytes) -> int:
    return os.write(fd, data)


def write_file(path: str, text: str) -> None:
    """Write ``text`` to an existing file (a /proc knob: never created or truncated)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def sendfile(out_fd: int, in_fd: int, count: int) -> int:
    return os.sendfile(out_fd, in_fd, None, count)


def mknod(name: str, mode: int, device: int, dir_fd: int | None = None) -> None:
    os.mknod(name, mode, device, dir_fd=dir_fd)


def symlink(target: str, name: str, dir_fd: int | None = None) -> None:
    os.symlink(target, name, dir_fd=dir_fd)


def unlink(name: str, dir_fd: int | None = None) -> None:
    os.unlink(name, dir_fd=dir_fd)


def chmod(path: str, mode: int) -> None:
    os.chmod(path, mode)


def fchmod(fd: int, mode: int) -> None:
    os.fchmod(fd, mode)


def chown(path: str, uid: int, gid: int, dir_fd: int | None = None,
          follow_symlinks: bool = True) -> None:
    os.chown(path, uid, gid, dir_fd=dir_fd, follow_symlinks=follow_symlinks)


def fchown(fd: int, uid: int, gid: int) -> None:
    os.fchown(fd, uid, gid)


def utime(path: str | int, ns: tuple[int, int], dir_fd: int | None = None,
          follow_symlinks: bool = True) -> None:
    if isinstance(path, int):
        os.utime(path, ns=ns)
    else:
        os.utime(path, ns=ns, dir_fd=dir_fd, follow_symlinks=follow_symlinks)


def dup2(fd: int, fd2: int) -> None:
    os.dup2(fd, fd2)


def ioctl(fd: int, request: int, arg: int | bytes = 0) -> int | bytes:
    return fcntl.ioctl(fd, request, arg)


def fork() -> int:
    return os.fork()


def exit_now(code: int) -> NoReturn:
    """os._exit: a child never returns into the CLI (no atexit, no buffers flushed twice)."""
    os._exit(code)


def load_seccomp(flt: object) -> int | None:
    """Install a compiled filter (pyoci.executors.seccomp.SeccompFilter.load, which calls
    libseccomp's seccomp_load): the listener fd, or None."""
    return flt.load()  # type: ignore[attr-defined, no-any-return]


def spawn(path: str, argv: list[str], env: dict[str, str], cwd: str) -> tuple[int, int, int]:
    """fork + execve of a hook: (pid, write end of its stdin, read end of its stderr);
    its stdout is /dev/null. What subprocess.Popen(close_fds=True, restore_signals=True)
    does, without importing subprocess: its import (locale, re, signal, selectors,
    threading) cost ~8 ms on every `create` Docker makes (dockerd adds a prestart hook to
    every container; issue 16). The child calls only built-in functions (nothing to
    import, init.seal_imports); an exec failure comes back as its errno through a
    close-on-exec pipe, as in subprocess, and is raised here as OSError."""
    in_r, in_w = os.pipe()
    err_r, err_w = os.pipe()
    exc_r, exc_w = os.pipe()
    devnull = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            for sig in (_signal.SIGPIPE, _signal.SIGXFSZ):  # ignored by Python; exec keeps
                _signal.signal(sig, _signal.SIG_DFL)
            os.chdir(cwd)
            os.dup2(in_r, 0)
            os.dup2(devnull, 1)
            os.dup2(err_w, 2)
            os.closerange(3, exc_w)
            os.closerange(exc_w + 1, 0x7FFFFFFF)
            os.execve(path, argv, env)
        except OSError as exc:
            os.write(exc_w, str(exc.errno or 0).encode())
        finally:
            os._exit(255)
    for fd in (in_r, err_w, exc_w, devnull):
        os.close(fd)
    try:
        failed = os.read(exc_r, 64)
    finally:
        os.close(exc_r)
    if failed:
        os.waitpid(pid, 0)
        os.close(in_w)
        os.close(err_r)
        err = int(failed)
        raise OSError(err, os.strerror(err))
    return pid, in_w, err_r
