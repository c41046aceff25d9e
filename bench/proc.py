"""Running one command and measuring it: wall time, CPU time and peak RSS.

Why `os.wait4` rather than `Popen.wait`: wait4 hands back the rusage of the reaped child,
which is what getrusage(RUSAGE_CHILDREN) would grow by for that child alone (the kernel
fills it with the child's own usage plus that of every descendant the child itself waited
for). That is "the runtime and what it waited for": its intermediate processes and, for
`run`, the container's process. A process that outlives the command (the init a `create`
leaves behind) is not counted, for either runtime. `ru_maxrss` is likewise the largest
resident set of the child and of those descendants (getrusage(2): RUSAGE_BOTH at reaping).

The child is watched through a pidfd, so a timeout can SIGKILL it without any risk of
signalling a recycled pid, and the wait does not poll.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

TIMEOUT = 120.0


class BenchError(RuntimeError):
    """A command the harness needs failed; the message carries its output."""


@dataclass(frozen=True)
class Sample:
    """One measured command."""

    wall: float  # seconds, from before fork to after reaping
    cpu: float  # seconds, user + sys of the child and the processes it waited for
    maxrss_kib: int  # peak resident set (KiB) of the child and what it waited for


@dataclass(frozen=True)
class Finished:
    args: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str
    sample: Sample

    def check(self) -> Finished:
        if self.rc != 0:
            raise BenchError(self.describe())
        return self

    def describe(self) -> str:
        err = self.stderr.strip()[-1500:]
        return f"$ {' '.join(self.args)}\n-> exit {self.rc}\n{err}"


class _Running:
    """A started child with its output files and its pidfd."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str] | None) -> None:
        # Output goes through unlinked files, never pipes: the init a `create` leaves
        # behind inherits stdout/stderr and would hold a pipe open for its whole life.
        self.args = tuple(args)
        # Closed in reap(): they outlive this call, so no context manager.
        self.out = tempfile.TemporaryFile()  # noqa: SIM115
        self.err = tempfile.TemporaryFile()  # noqa: SIM115
        self.start = time.perf_counter()
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=self.err, env=env, cwd="/")
        self.pidfd = os.pidfd_open(self.proc.pid)

    def reap(self, deadline: float) -> Finished:
        poller = select.poll()
        poller.register(self.pidfd, select.POLLIN)
        remaining = max(0.0, deadline - time.monotonic())
        timed_out = not poller.poll(remaining * 1000)
        if timed_out:
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        _, status, usage = os.wait4(self.proc.pid, 0)
        end = time.perf_counter()
        os.close(self.pidfd)
        self.proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        self.out.seek(0)
        self.err.seek(0)
        stdout = self.out.read().decode(errors="replace")
        stderr = self.err.read().decode(errors="replace")
        self.out.close()
        self.err.close()
        if timed_out:
            stderr += f"\n(killed by the harness after {TIMEOUT:.0f} s)"
        sample = Sample(end - self.start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)
        return Finished(self.args, self.proc.returncode, stdout, stderr, sample)


def run(args: Sequence[str], env: Mapping[str, str] | None = None,
        timeout: float = TIMEOUT) -> Finished:
    """Run one command to completion and measure it."""
    child = _Running(args, env)
    return child.reap(time.monotonic() + timeout)


def run_many(commands: Sequence[Sequence[str]], env: Mapping[str, str] | None = None,
             timeout: float = TIMEOUT) -> tuple[float, list[Finished]]:
    """Start every command at once, then reap them all: (wall time of the whole batch,
    each command's result in order)."""
    start = time.perf_counter()
    children = [_Running(c, env) for c in commands]
    deadline = time.monotonic() + timeout
    results = [c.reap(deadline) for c in children]
    return time.perf_counter() - start, results


def check_all(results: Sequence[Finished], what: str) -> None:
    """A batch of ``run_many`` must all succeed: BenchError with how many failed and the
    first failure's output otherwise."""
    failed = [r for r in results if r.rc != 0]
    if failed:
        raise BenchError(f"{len(failed)}/{len(results)} {what} failed; first:\n"
                         + failed[0].describe())
