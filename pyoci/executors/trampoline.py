"""The exec trampoline: the last hop from pyoci into the user's program.

Why (CVE-2019-5736, docs/security.md): the process that calls execve(2) on the
container's program is pyoci itself, a host python interpreter. If that program is a
script starting with ``#!/proc/self/exe``, the kernel resolves the interpreter in the
caller, so the container would run *the host's python binary* as its own process -- a
dumpable process whose /proc/PID/exe is the host interpreter, which the container can
then open and, once no python runs, rewrite: host code execution at the next python
call. runc defends its own binary by running from a sealed memfd copy of itself.

pyoci cannot copy a whole interpreter per call, so the final execve is made from a
trampoline instead: a 60-byte static ELF program, kept in a sealed memfd (written per
exec, never on disk), that does only ``execve(argv[0], argv + 1, envp)`` and exits 127 if
that fails. pyoci fexecve()s it with ``[program, *args]``; its /proc/self/exe is the
sealed memfd, so ``#!/proc/self/exe`` can only ever reach the trampoline again, and
nothing anybody can open for writing. Capabilities survive the extra hop unchanged: the
trampoline has no file capabilities and is not set-id, so execve(2)'s transformation
(capabilities(7)) is the same for both hops.

The machine code is given as bytes for the architectures pyoci runs on (x86_64, aarch64);
the instructions are written beside each encoding.
"""

from __future__ import annotations

import os
import struct

from pyoci import syscalls as sc

# x86_64: at entry rsp -> argc, argv[0..argc-1], NULL, envp...
_X86_64 = bytes.fromhex(
    "488b0c24"        # mov  rcx, [rsp]            ; argc
    "488b7c2408"      # mov  rdi, [rsp+8]          ; argv[0]: the program's path
    "488d742410"      # lea  rsi, [rsp+16]         ; argv + 1: its argv
    "488d54cc10"      # lea  rdx, [rsp+rcx*8+16]   ; envp
    "b83b000000"      # mov  eax, 59               ; execve
    "0f05"            # syscall
    "bf7f000000"      # mov  edi, 127
    "b8e7000000"      # mov  eax, 231              ; exit_group
    "0f05"            # syscall
)

# aarch64: the same, sp -> argc, argv..., NULL, envp...
_AARCH64 = struct.pack(
    "<10I",
    0xF94003E3,  # ldr  x3, [sp]             ; argc
    0xF94007E0,  # ldr  x0, [sp, #8]         ; argv[0]
    0x910043E1,  # add  x1, sp, #16          ; argv + 1
    0x8B236FE2,  # add  x2, sp, x3, uxtx #3  ; sp + 8*argc
    0x91004042,  # add  x2, x2, #16          ; envp
    0xD2801BA8,  # mov  x8, #221             ; execve
    0xD4000001,  # svc  #0
    0xD2800FE0,  # mov  x0, #127
    0xD2800BC8,  # mov  x8, #94              ; exit_group
    0xD4000001,  # svc  #0
)

_MACHINES = {"x86_64": (62, _X86_64), "aarch64": (183, _AARCH64)}
_BASE = 0x400000
_EHDR = 64
_PHDR = 56


def elf_image(machine: str) -> bytes:
    """A static ELF64 executable: one read+execute PT_LOAD of the whole file, and a
    PT_GNU_STACK without execute permission."""
    e_machine, code = _MACHINES[machine]
    entry = _BASE + _EHDR + 2 * _PHDR
    size = _EHDR + 2 * _PHDR + len(code)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # 64-bit, little endian, SysV
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, e_machine, 1, entry, _EHDR, 0, 0,
                                 _EHDR, _PHDR, 2, 0, 0, 0)
    load = struct.pack("<IIQQQQQQ", 1, 5, 0, _BASE, _BASE, size, size, 0x10000)
    stack = struct.pack("<IIQQQQQQ", 0x6474E551, 6, 0, 0, 0, 0, 0, 16)
    return header + load + stack + code


class Trampoline:
    """The sealed memfd, made before the process loses the right to make it (rlimits,
    seccomp), and executed last."""

    __slots__ = ("fd",)

    def __init__(self) -> None:
        machine = os.uname().machine
        if machine not in _MACHINES:
            raise OSError(95, f"pyoci has no exec trampoline for {machine}; refusing to "
                              "exec the container's program from the runtime's own binary")
        self.fd = sc.sealed_memfd("pyoci-exec", elf_image(machine))

    def execve(self, path: str, args: list[str], env: dict[str, str]) -> None:
        """Replace this process with ``path``; returns only by raising OSError."""
        sc.fexecve(self.fd, [path, *args], env)
