"""The cgroup v2 device program: compile_rules run in a small eBPF interpreter must decide
every request exactly as the v1 devices controller (security/device_cgroup.c) would after
the same rules were written to devices.allow/devices.deny in order; install() must attach
the new program before detaching the old ones, through a fake syscall layer."""

from __future__ import annotations

import errno
import itertools
import os
import random
import struct
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pyoci import syscalls as sc
from pyoci.cgroups import CgroupError, bpf_devices
from pyoci.cgroups.bpf_devices import attached_count, compile_rules, install
from pyoci.config.model import DeviceRule

BLOCK, CHAR = 1, 2
MKNOD, READ, WRITE = 1, 2, 4
U64 = (1 << 64) - 1
U32 = (1 << 32) - 1


# --- a tiny eBPF interpreter for the instructions a device program needs -------------------
class _Ctx:
    """Stands for the pointer to struct bpf_cgroup_dev_ctx that R1 holds on entry."""


class BpfError(AssertionError):
    """The program did something the kernel's verifier would refuse (or we do not model)."""


def _decode(program: bytes) -> list[tuple[int, int, int, int, int]]:
    if not program or len(program) % 8:
        raise BpfError(f"program of {len(program)} bytes is not whole instructions")
    insns = []
    for code, regs, off, imm in struct.iter_unpack("=BBhi", program):
        dst, src = (regs & 0xF, regs >> 4) if sys.byteorder == "little" else (regs >> 4,
                                                                              regs & 0xF)
        insns.append((code, dst, src, off, imm))
    return insns


def run_bpf(program: bytes, dev_type: int, major: int, minor: int, access: int) -> int:
    """Execute ``program`` on one request; returns R0 at BPF_EXIT."""
    ctx = struct.pack("=III", (access << 16) | dev_type, major, minor)
    insns = _decode(program)
    regs: list[Any] = [None] * 11
    regs[1] = _Ctx()
    regs[10] = _Ctx()  # frame pointer: never read by these programs

    def val(reg: int) -> int:
        value = regs[reg]
        if value is None or isinstance(value, _Ctx):
            raise BpfError(f"R{reg} read before it holds a scalar")
        return value

    pc = 0
    for _ in range(10_000):
        if not 0 <= pc < len(insns):
            raise BpfError(f"fell off the program at {pc}")
        code, dst, src, off, imm = insns[pc]
        imm64 = imm & U64  # 64-bit compares sign-extend the immediate
        pc += 1
        if code == 0x61:  # ldxw dst, [src + off]
            if not isinstance(regs[src], _Ctx) or off not in (0, 4, 8):
                raise BpfError(f"load from R{src}+{off}")
            regs[dst] = struct.unpack_from("=I", ctx, off)[0]
        elif code == 0xB4:  # mov32 dst, imm
            regs[dst] = imm & U32
        elif code == 0xBC:  # mov32 dst, src
            regs[dst] = val(src) & U32
        elif code == 0x54:  # and32 dst, imm
            regs[dst] = val(dst) & imm & U32
        elif code == 0x74:  # rsh32 dst, imm
            regs[dst] = (val(dst) & U32) >> imm
        elif code in (0x15, 0x55, 0x45, 0x5D, 0x05):
            if off < 0:
                raise BpfError("backward jump")
            if code == 0x15:  # jeq dst, imm
                taken = val(dst) == imm64
            elif code == 0x55:  # jne dst, imm
                taken = val(dst) != imm64
            elif code == 0x45:  # jset dst, imm
                taken = val(dst) & imm64 != 0
            elif code == 0x5D:  # jne dst, src
                taken = val(dst) != val(src)
            else:  # ja
                taken = True
            if taken:
                pc += off
        elif code == 0x95:  # exit
            return val(0)
        else:
            raise BpfError(f"opcode {code:#x} at {pc - 1} is not modelled")
    raise BpfError("no exit within 10000 steps")


# --- the v1 controller, as security/device_cgroup.c does it --------------------------------
class V1DevicesCgroup:
    """A devices cgroup whose list was reset to deny-all (runc's starting point: a
    container's list is applied to an empty deny-all emulator) and then written to."""

    ALL = U32  # ~0: "*"

    def __init__(self) -> None:
        self.default_allow = False
        self.exceptions: list[dict[str, int]] = []

    def write(self, rule: DeviceRule) -> None:
        if rule.type == "a":  # devcgroup_update_access: "a" cleans and sets the behaviour
            self.exceptions = []
            self.default_allow = rule.allow
            return
        ex = {"type": BLOCK if rule.type == "b" else CHAR,
              "major": self.ALL if rule.major is None else rule.major,
              "minor": self.ALL if rule.minor is None else rule.minor,
              "access": sum({"r": READ, "w": WRITE, "m": MKNOD}[c] for c in set(rule.access))}
        if rule.allow == self.default_allow:
            self._rm(ex)
        else:
            self._add(ex)

    def _same(self, a: dict[str, int], b: dict[str, int]) -> bool:
        return (a["type"], a["major"], a["minor"]) == (b["type"], b["major"], b["minor"])

    def _add(self, ex: dict[str, int]) -> None:
        for walk in self.exceptions:
            if self._same(walk, ex):
                walk["access"] |= ex["access"]
                return
        self.exceptions.append(dict(ex))

    def _rm(self, ex: dict[str, int]) -> None:
        for walk in list(self.exceptions):
            if self._same(walk, ex):
                walk["access"] &= ~ex["access"]
                if not walk["access"]:
                    self.exceptions.remove(walk)

    def allows(self, dev_type: int, major: int, minor: int, access: int) -> bool:
        for ex in self.exceptions:
            if dev_type & BLOCK and not ex["type"] & BLOCK:
                continue
            if dev_type & CHAR and not ex["type"] & CHAR:
                continue
            if ex["major"] != self.ALL and ex["major"] != major:
                continue
            if ex["minor"] != self.ALL and ex["minor"] != minor:
                continue
            if self.default_allow:  # match_exception_partial: any overlapping bit denies
                if access & ex["access"]:
                    return False
            elif not access & ~ex["access"]:  # match_exception: one covers every bit
                return True
        return self.default_allow


def v1(rules: Sequence[DeviceRule]) -> V1DevicesCgroup:
    cg = V1DevicesCgroup()
    for rule in rules:
        cg.write(rule)
    return cg


def allow(t: str = "a", major: int | None = None, minor: int | None = None,
          access: str = "rwm") -> DeviceRule:
    return DeviceRule(True, t, major, minor, access)


def deny(t: str = "a", major: int | None = None, minor: int | None = None,
         access: str = "rwm") -> DeviceRule:
    return DeviceRule(False, t, major, minor, access)


RUNC_DEFAULTS = [
    deny(),
    allow("c", None, None, "m"), allow("b", None, None, "m"),
    allow("c", 1, 3), allow("c", 1, 5), allow("c", 1, 7), allow("c", 1, 8), allow("c", 1, 9),
    allow("c", 5, 0), allow("c", 5, 1), allow("c", 5, 2), allow("c", 136, None),
    allow("c", 10, 200),
]
RULE_LISTS = {
    "runc-defaults": RUNC_DEFAULTS,
    "allow-all-then-deny": [allow(), deny("c", 1, 3, "w"), deny("b", 8, None),
                            deny("c", None, 5, "r"), deny("c", 10, 200, "m")],
    "wildcard-majors": [deny(), allow("c", None, 3, "rw"), allow("b", 8, None, "r"),
                        allow("c", None, None, "m")],
    "partial-access": [deny(), allow("c", 1, 3, "rw"), allow("c", 1, 5, "r"),
                       allow("c", 1, 5, "w"), deny("c", 1, 5, "r"), allow("b", 7, 0, "w"),
                       deny("b", 7, 0, "w")],
    "empty": [],
    "reset-in-the-middle": [allow("c", 1, 3), allow(), deny("c", 1, 5), deny(),
                            allow("c", 1, 7, "r")],
    "typed-a-with-numbers-resets": [allow(), deny("a", 1, 3, "r")],
    "hole-in-wildcard-ignored": [deny(), allow("c", None, None), deny("c", 1, 3)],
    "hole-in-blacklist-wildcard": [allow(), deny("c", 1, None, "rw"), allow("c", 1, 3, "r")],
    "large-numbers": [deny(), allow("c", 3_000_000_000, 4_294_967_294, "r"),
                      allow("b", 2_147_483_648, None), allow("c", U32, 9, "w")],
    "large-numbers-denied": [allow(), deny("b", 4_000_000_000, 2_500_000_000, "rw")],
    "empty-access": [deny(), allow("c", 1, 3, ""), allow(), deny("b", 8, 0, "")],
}
MAJORS = [0, 1, 5, 7, 8, 10, 136, 4095, 2_147_483_648, 3_000_000_000, 4_000_000_000]
MINORS = [0, 3, 5, 7, 9, 200, 2_500_000_000, 4_294_967_294]


def _requests(majors: Sequence[int] = MAJORS, minors: Sequence[int] = MINORS):
    return itertools.product((BLOCK, CHAR), majors, minors, range(8))


@pytest.mark.parametrize("name", sorted(RULE_LISTS))
def test_program_decides_like_v1(name: str) -> None:
    rules = RULE_LISTS[name]
    program = compile_rules(rules)
    cg = v1(rules)
    wrong = [req for req in _requests() if run_bpf(program, *req) != int(cg.allows(*req))]
    assert not wrong, f"{len(wrong)} requests differ, e.g. {wrong[:5]}"


def test_random_rule_lists_decide_like_v1() -> None:
    rng = random.Random(20240611)
    majors, minors = [1, 5, 8, 3_000_000_000], [0, 3, 5]
    for _ in range(300):
        rules = []
        for _ in range(rng.randint(0, 8)):
            kind = rng.choice("abcc")
            rules.append(DeviceRule(
                rng.random() < 0.5, kind,
                None if kind == "a" or rng.random() < 0.3 else rng.choice(majors),
                None if kind == "a" or rng.random() < 0.3 else rng.choice(minors),
                "".join(c for c in "rwm" if rng.random() < 0.6)))
        program = compile_rules(rules)
        cg = v1(rules)
        for req in _requests([*majors, 2], [*minors, 7]):
            assert run_bpf(program, *req) == int(cg.allows(*req)), (rules, req)


# Hand-checked decisions, so the semantics do not rest on the reference model alone.
@pytest.mark.parametrize(("name", "request_", "allowed"), [
    ("runc-defaults", (CHAR, 1, 3, READ | WRITE), True),  # /dev/null
    ("runc-defaults", (CHAR, 1, 3, READ | WRITE | MKNOD), True),
    ("runc-defaults", (CHAR, 1, 4, READ), False),  # /dev/port is not in the list
    ("runc-defaults", (CHAR, 1, 4, MKNOD), True),  # c *:* m
    ("runc-defaults", (CHAR, 1, 4, READ | MKNOD), False),  # no single exception has both
    ("runc-defaults", (BLOCK, 8, 0, READ), False),
    ("runc-defaults", (BLOCK, 8, 0, MKNOD), True),
    ("runc-defaults", (CHAR, 136, 7, WRITE), True),  # c 136:* (ptys)
    ("partial-access", (CHAR, 1, 3, READ | WRITE), True),
    ("partial-access", (CHAR, 1, 3, READ | WRITE | MKNOD), False),
    ("partial-access", (CHAR, 1, 3, MKNOD), False),
    ("partial-access", (CHAR, 1, 5, WRITE), True),  # r+w merged, then r removed
    ("partial-access", (CHAR, 1, 5, READ), False),
    ("partial-access", (BLOCK, 7, 0, WRITE), False),  # added, then removed entirely
    ("allow-all-then-deny", (CHAR, 1, 3, READ), True),
    ("allow-all-then-deny", (CHAR, 1, 3, READ | WRITE), False),  # any denied bit denies
    ("allow-all-then-deny", (CHAR, 9, 5, WRITE), True),  # c *:5 denies only r
    ("allow-all-then-deny", (CHAR, 9, 5, READ), False),
    ("allow-all-then-deny", (BLOCK, 8, 17, MKNOD), False),
    ("allow-all-then-deny", (BLOCK, 9, 17, READ | WRITE | MKNOD), True),
    ("empty", (CHAR, 1, 3, READ), False),
    ("empty", (BLOCK, 8, 0, MKNOD), False),
    ("reset-in-the-middle", (CHAR, 1, 3, READ), False),  # wiped by the "deny a"
    ("reset-in-the-middle", (CHAR, 1, 7, READ), True),
    ("reset-in-the-middle", (CHAR, 1, 7, WRITE), False),
    ("typed-a-with-numbers-resets", (BLOCK, 8, 0, READ), False),
    ("hole-in-wildcard-ignored", (CHAR, 1, 3, READ), True),  # v1 does not split c *:*
    ("hole-in-blacklist-wildcard", (CHAR, 1, 3, READ), False),
    ("large-numbers", (CHAR, 3_000_000_000, 4_294_967_294, READ), True),
    ("large-numbers", (CHAR, 3_000_000_000, 4_294_967_294, WRITE), False),
    ("large-numbers", (CHAR, 3_000_000_001, 4_294_967_294, READ), False),
    ("large-numbers", (BLOCK, 2_147_483_648, 12, READ | WRITE), True),
    ("large-numbers", (CHAR, 7, 9, WRITE), True),  # major 4294967295 is the kernel's "*"
    ("large-numbers-denied", (BLOCK, 4_000_000_000, 2_500_000_000, READ), False),
    ("large-numbers-denied", (BLOCK, 4_000_000_000, 2_500_000_000, MKNOD), True),
    ("empty-access", (BLOCK, 8, 0, READ), True),  # a deny of no access bits denies nothing
])
def test_known_decisions(name: str, request_: tuple[int, int, int, int], allowed: bool) -> None:
    assert run_bpf(compile_rules(RULE_LISTS[name]), *request_) == int(allowed)


def test_program_shape() -> None:
    empty = _decode(compile_rules([]))
    assert empty[-2:] == [(0xB4, 0, 0, 0, 0), (0x95, 0, 0, 0, 0)]  # deny by default
    allow_all = _decode(compile_rules([allow()]))
    assert allow_all[-2:] == [(0xB4, 0, 0, 0, 1), (0x95, 0, 0, 0, 0)]
    # Each exception costs a handful of instructions, not a growing amount.
    sizes = [len(compile_rules([deny(), *(allow("c", 1, n) for n in range(k))]))
             for k in (1, 2, 3)]
    assert sizes[2] - sizes[1] == sizes[1] - sizes[0] <= 8 * 8


@pytest.mark.parametrize(("rule", "needle"), [
    (DeviceRule(True, "x", 1, 3, "rwm"), "type must be a, b or c"),
    (DeviceRule(True, "c", 1, 3, "rwx"), "access may only contain"),
    (DeviceRule(True, "c", -1, 3, "rw"), "major -1 is outside"),
    (DeviceRule(True, "b", 1, 1 << 32, "rw"), "minor 4294967296 is outside"),
])
def test_invalid_rules_are_refused(rule: DeviceRule, needle: str) -> None:
    with pytest.raises(CgroupError, match=needle) as info:
        compile_rules([deny(), rule])
    assert "linux.resources.devices" in str(info.value)


# --- install() against a fake syscall layer ------------------------------------------------
class FakeBpf:
    """Mirrors the bpf wrappers of pyoci.syscalls, recording calls; fds are real (dups of
    /dev/null) so install() closing them can be checked."""

    def __init__(self, old_ids: Sequence[int] = (), mode: int = 0) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.attached: list[int] = list(old_ids)
        self.mode = mode if old_ids else 0
        self.fds: list[int] = []
        self.fail: dict[str, OSError] = {}
        self.next_id = 100
        self.fd_ids: dict[int, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(sc, name)  # constants

    def _fd(self, prog_id: int) -> int:
        fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        self.fds.append(fd)
        self.fd_ids[fd] = prog_id
        return fd

    def _maybe_fail(self, name: str) -> None:
        if name in self.fail:
            raise self.fail[name]

    def bpf_prog_query(self, target_fd: int, attach_type: int,
                       query_flags: int = 0) -> tuple[int, list[int]]:
        self.calls.append(("query", attach_type))
        self._maybe_fail("query")
        return self.mode, list(self.attached)

    def bpf_prog_load(self, prog_type: int, insns: bytes, license: str, name: str = "") -> int:
        self.calls.append(("load", prog_type, license))
        self._maybe_fail("load")
        self.next_id += 1
        return self._fd(self.next_id)

    def bpf_prog_attach(self, target_fd: int, prog_fd: int, attach_type: int, flags: int = 0,
                        replace_fd: int = 0) -> None:
        prog_id = self.fd_ids[prog_fd]
        self.calls.append(("attach", prog_id, attach_type, flags))
        self._maybe_fail("attach")
        if flags & sc.BPF_F_ALLOW_MULTI:
            self.attached.append(prog_id)
        else:
            self.attached = [prog_id]
        self.mode = flags

    def bpf_prog_get_fd_by_id(self, prog_id: int) -> int:
        self.calls.append(("get_fd", prog_id))
        self._maybe_fail(f"get_fd {prog_id}")
        return self._fd(prog_id)

    def bpf_prog_detach2(self, target_fd: int, prog_fd: int, attach_type: int) -> None:
        prog_id = self.fd_ids[prog_fd]
        self.calls.append(("detach", prog_id, attach_type))
        self.attached.remove(prog_id)

    def all_closed(self) -> bool:
        for fd in self.fds:
            try:
                os.fstat(fd)
            except OSError:
                continue
            return False
        return True


@pytest.fixture
def cgroup_dir(tmp_path: Path) -> str:
    return str(tmp_path)


def _fake(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> FakeBpf:
    fake = FakeBpf(**kwargs)
    monkeypatch.setattr(bpf_devices, "sc", fake)
    return fake


def test_install_on_a_fresh_cgroup_attaches_multi(monkeypatch: pytest.MonkeyPatch,
                                                  cgroup_dir: str) -> None:
    fake = _fake(monkeypatch)
    install(cgroup_dir, RUNC_DEFAULTS)
    assert fake.calls == [("query", sc.BPF_CGROUP_DEVICE),
                          ("load", sc.BPF_PROG_TYPE_CGROUP_DEVICE, "Apache-2.0"),
                          ("attach", 101, sc.BPF_CGROUP_DEVICE, sc.BPF_F_ALLOW_MULTI)]
    assert fake.attached == [101]
    assert fake.all_closed()
    assert attached_count(cgroup_dir) == 1


def test_install_attaches_new_before_detaching_old(monkeypatch: pytest.MonkeyPatch,
                                                   cgroup_dir: str) -> None:
    fake = _fake(monkeypatch, old_ids=[7, 9], mode=sc.BPF_F_ALLOW_MULTI)
    install(cgroup_dir, RUNC_DEFAULTS)
    ops = [c[0] for c in fake.calls]
    assert ops == ["query", "load", "attach", "get_fd", "detach", "get_fd", "detach"]
    assert [c[1] for c in fake.calls if c[0] == "detach"] == [7, 9]
    assert fake.attached == [101]
    assert fake.all_closed()


def test_install_keeps_a_foreign_single_program_mode(monkeypatch: pytest.MonkeyPatch,
                                                     cgroup_dir: str) -> None:
    fake = _fake(monkeypatch, old_ids=[7], mode=sc.BPF_F_ALLOW_OVERRIDE)
    install(cgroup_dir, [])
    assert ("attach", 101, sc.BPF_CGROUP_DEVICE, sc.BPF_F_ALLOW_OVERRIDE) in fake.calls
    assert not [c for c in fake.calls if c[0] in ("get_fd", "detach")]
    assert fake.attached == [101]


def test_vanished_or_forbidden_old_programs_are_skipped(monkeypatch: pytest.MonkeyPatch,
                                                        cgroup_dir: str) -> None:
    fake = _fake(monkeypatch, old_ids=[7, 8, 9], mode=sc.BPF_F_ALLOW_MULTI)
    fake.fail["get_fd 7"] = OSError(errno.ENOENT, "gone")
    fake.fail["get_fd 8"] = OSError(errno.EPERM, "lsm")
    install(cgroup_dir, [])
    assert fake.attached == [7, 8, 101]  # 7 and 8 stay in the fake; 9 detached
    assert fake.all_closed()


def test_attach_failure_is_a_cgroup_error(monkeypatch: pytest.MonkeyPatch,
                                          cgroup_dir: str) -> None:
    fake = _fake(monkeypatch, old_ids=[7], mode=sc.BPF_F_ALLOW_MULTI)
    fake.fail["attach"] = OSError(errno.EPERM, os.strerror(errno.EPERM))
    with pytest.raises(CgroupError) as info:
        install(cgroup_dir, [])
    assert str(info.value) == (f"linux.resources.devices: cannot attach the device program "
                               f"to {cgroup_dir}: operation not permitted")
    assert fake.attached == [7]  # the old program is not detached
    assert fake.all_closed()


def test_verifier_reason_reaches_the_message(monkeypatch: pytest.MonkeyPatch,
                                             cgroup_dir: str) -> None:
    fake = _fake(monkeypatch)
    fake.fail["load"] = OSError(errno.EACCES, "Permission denied (verifier: R0 !read_ok)")
    with pytest.raises(CgroupError, match=r"refused the device program for .*: permission "
                                          r"denied \(verifier: R0 !read_ok\)"):
        install(cgroup_dir, [])
    assert fake.all_closed()


def test_not_cgroup2_and_missing_directory(monkeypatch: pytest.MonkeyPatch,
                                           cgroup_dir: str) -> None:
    fake = _fake(monkeypatch)
    fake.fail["query"] = OSError(errno.EBADF, os.strerror(errno.EBADF))
    with pytest.raises(CgroupError, match="not a cgroup v2 directory"):
        install(cgroup_dir, [])
    with pytest.raises(CgroupError, match="cannot open the cgroup .*/nope: no such file"):
        attached_count(os.path.join(cgroup_dir, "nope"))
