"""The cgroup v2 device controller: an eBPF program instead of devices.allow/deny.

cgroup v2 has no devices controller; access to device nodes is decided by a
BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup (kernel
Documentation/admin-guide/cgroup-v2.rst, "Device controller"). The kernel calls it with
``struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor}`` -- the device type
(BPF_DEVCG_DEV_BLOCK/CHAR) in the low 16 bits of access_type, the requested access
(BPF_DEVCG_ACC_MKNOD/READ/WRITE, several at once for an O_RDWR open) in the high 16 bits --
and allows the access when the program returns 1.

The runtime-spec (config-linux.md, "Allowed Device List") describes
``linux.resources.devices`` in terms of the v1 controller, so the program must decide
exactly as security/device_cgroup.c would after the rules were written to
devices.allow/devices.deny in order:

* a rule of type ``a`` (whatever its numbers and access) empties the exception list and
  sets the default: allow-all for an allow rule, deny-all for a deny rule;
* any other rule whose action differs from the default adds an exception -- merged (access
  OR-ed) with an exception of the very same type/major/minor -- and a rule whose action
  equals the default removes those access bits from the exception of the very same
  type/major/minor only (the kernel does not split a wildcard exception, so "allow c *:*"
  then "deny c 1:3" in deny-all mode leaves c 1:3 allowed, as on v1; runc refuses such a
  list instead);
* deny-all default: a request is allowed when *one* exception matches the device and holds
  *every* requested access bit (``match_exception``);
* allow-all default: a request is denied when an exception matches the device and holds
  *any* of the requested bits (``match_exception_partial``) -- so O_RDWR on a device whose
  write is denied fails, as on v1.

An empty list is deny-all with no exceptions: every device access is refused, which is what
runc's emulator yields too. Like runc's device filter the program uses no helper
functions, so the kernel accepts any license string (only GPL-only helpers need a GPL one).
"""

from __future__ import annotations

import errno
import os
import resource
import struct
import sys

from pyoci import log
from pyoci import syscalls as sc
from pyoci.cgroups import CgroupError
from pyoci.config.model import DeviceRule

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Sequence

# <linux/bpf.h>: struct bpf_cgroup_dev_ctx values.
BPF_DEVCG_DEV_BLOCK = 1
BPF_DEVCG_DEV_CHAR = 2
BPF_DEVCG_ACC_MKNOD = 1
BPF_DEVCG_ACC_READ = 2
BPF_DEVCG_ACC_WRITE = 4

LICENSE = "Apache-2.0"
PROG_NAME = "pyoci_devices"
JSON_PATH = "linux.resources.devices"

_TYPES = {"b": BPF_DEVCG_DEV_BLOCK, "c": BPF_DEVCG_DEV_CHAR}
_ACCESS = {"m": BPF_DEVCG_ACC_MKNOD, "r": BPF_DEVCG_ACC_READ, "w": BPF_DEVCG_ACC_WRITE}
_U32_MAX = 0xFFFFFFFF  # the kernel stores "*" as ~0, so that number is a wildcard too
_S32_MAX = 0x7FFFFFFF

# Opcodes (<linux/bpf_common.h>, <linux/bpf.h>): class | size/op | source.
_LDX_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
_AND32_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
_RSH32_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K
_MOV32_K = 0xB4  # BPF_ALU | BPF_MOV | BPF_K (zero-extends into the 64-bit register)
_MOV32_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K
_JNE_X = 0x5D  # BPF_JMP | BPF_JNE | BPF_X
_JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K: jump if dst & imm
_EXIT = 0x95  # BPF_JMP | BPF_EXIT

# Registers: R1 holds the context on entry and is a scratch register after the prologue.
_R0, _R1, _R_TYPE, _R_ACCESS, _R_MAJOR, _R_MINOR = 0, 1, 2, 3, 4, 5
_NEXT = None  # placeholder offset: "skip to the next block"

DeviceException = tuple[int, int | None, int | None, int]  # type, major, minor, access bits


def _rule_text(rule: DeviceRule) -> str:
    def num(value: int | None) -> str:
        return "*" if value is None else str(value)

    return f"{rule.type} {num(rule.major)}:{num(rule.minor)} {rule.access}"


def _number(rule: DeviceRule, value: int | None, what: str) -> int | None:
    if value is None or value == _U32_MAX:
        return None
    if not 0 <= value < _U32_MAX:
        raise CgroupError(f"{JSON_PATH}: rule '{_rule_text(rule)}': {what} {value} is outside "
                          f"0..{_U32_MAX}")
    return value


def _access_bits(rule: DeviceRule) -> int:
    bits = 0
    for char in rule.access:
        if char not in _ACCESS:
            raise CgroupError(f"{JSON_PATH}: rule '{_rule_text(rule)}': access may only "
                              f"contain r, w and m, found {char!r}")
        bits |= _ACCESS[char]
    return bits


def emulate(rules: Sequence[DeviceRule]) -> tuple[bool, list[DeviceException]]:
    """Apply ``rules`` in order as the v1 controller would, from deny-all.

    Returns the default (True = allow-all) and the exception list in the kernel's order.
    """
    default_allow = False
    exceptions: dict[tuple[int, int | None, int | None], int] = {}
    for rule in rules:
        if rule.type == "a":
            default_allow = rule.allow
            exceptions.clear()
            continue
        if rule.type not in _TYPES:
            raise CgroupError(f"{JSON_PATH}: rule '{_rule_text(rule)}': type must be a, b "
                              f"or c, found {rule.type!r}")
        key = (_TYPES[rule.type], _number(rule, rule.major, "major"),
               _number(rule, rule.minor, "minor"))
        access = _access_bits(rule)
        if rule.allow != default_allow:
            exceptions[key] = exceptions.get(key, 0) | access
        elif key in exceptions:
            remaining = exceptions[key] & ~access
            if remaining:
                exceptions[key] = remaining
            else:
                del exceptions[key]
    return default_allow, [(*key, access) for key, access in exceptions.items()]


def _encode(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """struct bpf_insn {u8 code; u8 dst_reg:4, src_reg:4; s16 off; s32 imm} (bitfields in
    the machine's order)."""
    regs = (src << 4) | dst if sys.byteorder == "little" else (dst << 4) | src
    if imm > _S32_MAX:
        imm -= 1 << 32
    return struct.pack("=BBhi", code, regs, off, imm)


def _compare(register: int, value: int) -> list[tuple[int, int, int, int | None, int]]:
    """Skip the block unless ``register == value``. A 64-bit compare with an immediate
    sign-extends it, so a number above 2**31-1 goes through R1 (a 32-bit mov zero-extends)."""
    if value <= _S32_MAX:
        return [(_JNE_K, register, 0, _NEXT, value)]
    return [(_MOV32_K, _R1, 0, 0, value), (_JNE_X, register, _R1, _NEXT, 0)]


def _block(exception: DeviceException, default_allow: bool) -> list[bytes]:
    dev_type, major, minor, access = exception
    insns: list[tuple[int, int, int, int | None, int]] = [
        (_JNE_K, _R_TYPE, 0, _NEXT, dev_type)]
    if major is not None:
        insns += _compare(_R_MAJOR, major)
    if minor is not None:
        insns += _compare(_R_MINOR, minor)
    if default_allow:
        # Deny when any requested bit is in the exception: skip if request & access == 0.
        insns += [(_MOV32_X, _R1, _R_ACCESS, 0, 0), (_AND32_K, _R1, 0, 0, access),
                  (_JEQ_K, _R1, 0, _NEXT, 0)]
    else:
        # Allow when every requested bit is in the exception: skip if any bit is outside.
        insns.append((_JSET_K, _R_ACCESS, 0, _NEXT, ~access & 0xFFFF))
    insns += [(_MOV32_K, _R0, 0, 0, 0 if default_allow else 1), (_EXIT, 0, 0, 0, 0)]
    last = len(insns) - 1
    return [_encode(code, dst, src, last - i if off is _NEXT else off, imm)
            for i, (code, dst, src, off, imm) in enumerate(insns)]


def compile_rules(rules: Sequence[DeviceRule]) -> bytes:
    """The BPF_PROG_TYPE_CGROUP_DEVICE instructions deciding as v1 would after ``rules``.

    One block per exception, each falling through to the next when it does not match; the
    end returns the default. Exceptions of an allow-all cgroup without access bits can never
    match a request and are left out (a deny-all one still matches a request of no bits).
    """
    default_allow, exceptions = emulate(rules)
    out = [
        _encode(_LDX_W, _R_TYPE, _R1, 0),
        _encode(_AND32_K, _R_TYPE, imm=0xFFFF),
        _encode(_LDX_W, _R_ACCESS, _R1, 0),
        _encode(_RSH32_K, _R_ACCESS, imm=16),
        _encode(_LDX_W, _R_MAJOR, _R1, 4),
        _encode(_LDX_W, _R_MINOR, _R1, 8),
    ]
    for exception in exceptions:
        if default_allow and not exception[3]:
            continue
        out += _block(exception, default_allow)
    out += [_encode(_MOV32_K, _R0, imm=int(default_allow)), _encode(_EXIT)]
    return b"".join(out)


def _fail(action: str, directory: str, exc: OSError) -> CgroupError:
    reason = exc.strerror or os.strerror(exc.errno or 0)
    if exc.errno == errno.EBADF:
        reason = "not a cgroup v2 directory"
    return CgroupError(f"{JSON_PATH}: {action} {directory}: {reason[:1].lower()}{reason[1:]}")


def _open(directory: str) -> int:
    try:
        return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise _fail("cannot open the cgroup", directory, exc) from None


def _query(dirfd: int, directory: str) -> tuple[int, list[int]]:
    try:
        return sc.bpf_prog_query(dirfd, sc.BPF_CGROUP_DEVICE)
    except OSError as exc:
        raise _fail("cannot list the device programs of", directory, exc) from None


def _load(program: bytes, directory: str) -> int:
    """Load the program. Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK (runc
    raises it for the same reason); on EPERM the limit is raised for the load and restored,
    so no process forked later inherits it."""
    try:
        return sc.bpf_prog_load(sc.BPF_PROG_TYPE_CGROUP_DEVICE, program, LICENSE, PROG_NAME)
    except OSError as exc:
        first = exc
    limit = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if first.errno == errno.EPERM and limit[0] != resource.RLIM_INFINITY:
        try:
            resource.setrlimit(resource.RLIMIT_MEMLOCK,
                               (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        except (OSError, ValueError):
            pass
        else:
            try:
                return sc.bpf_prog_load(sc.BPF_PROG_TYPE_CGROUP_DEVICE, program, LICENSE,
                                        PROG_NAME)
            except OSError as exc:
                first = exc
            finally:
                resource.setrlimit(resource.RLIMIT_MEMLOCK, limit)
    raise _fail("the kernel refused the device program for", directory, first)


def _detach(dirfd: int, prog_id: int, directory: str) -> None:
    """Detach an old program by id. One that vanished meanwhile is fine; one we may not
    open (an LSM label, as runc notes for systemd's) stays: programs only add restrictions."""
    try:
        prog_fd = sc.bpf_prog_get_fd_by_id(prog_id)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.EPERM, errno.EACCES):
            log.debug(f"{JSON_PATH}: old device program {prog_id} of {directory} left "
                      f"attached: {os.strerror(exc.errno)}")
            return
        raise _fail(f"cannot open old device program {prog_id} of", directory, exc) from None
    try:
        sc.bpf_prog_detach2(dirfd, prog_fd, sc.BPF_CGROUP_DEVICE)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise _fail(f"cannot detach old device program {prog_id} from", directory,
                        exc) from None
    finally:
        os.close(prog_fd)


def install(directory: str, rules: Sequence[DeviceRule]) -> None:
    """Make ``rules`` the device policy of the cgroup v2 ``directory``.

    The new program is attached (BPF_F_ALLOW_MULTI) before the old ones are detached: in
    between both run and an access needs both to allow it, so an update never opens a
    window with fewer restrictions. If someone attached programs to this cgroup in another
    mode (no flag or BPF_F_ALLOW_OVERRIDE: one program at most), the kernel refuses
    ALLOW_MULTI there, so the attach uses that mode, which replaces the program in place.
    """
    program = compile_rules(rules)
    dirfd = _open(directory)
    try:
        mode, old_ids = _query(dirfd, directory)
        multi = not old_ids or bool(mode & sc.BPF_F_ALLOW_MULTI)
        prog_fd = _load(program, directory)
        try:
            sc.bpf_prog_attach(dirfd, prog_fd, sc.BPF_CGROUP_DEVICE,
                               sc.BPF_F_ALLOW_MULTI if multi else mode)
        except OSError as exc:
            raise _fail("cannot attach the device program to", directory, exc) from None
        finally:
            os.close(prog_fd)  # the attachment holds its own reference
        if multi:
            for prog_id in old_ids:
                _detach(dirfd, prog_id, directory)
    finally:
        os.close(dirfd)


def attached_count(directory: str) -> int:
    """How many device programs are attached to ``directory`` itself (not its parents)."""
    dirfd = _open(directory)
    try:
        return len(_query(dirfd, directory)[1])
    finally:
        os.close(dirfd)
