"""What `run` and `exec` do while their process runs in the foreground: forward the
signals a user sends to the runtime, relay a terminal, and wait for the exit status."""

from __future__ import annotations

import os

from pyoci import signals

FORWARDED_SIGNALS = (signals.SIGHUP, signals.SIGINT, signals.SIGQUIT, signals.SIGTERM,
                     signals.SIGUSR1, signals.SIGUSR2, signals.SIGWINCH, signals.SIGCONT)


def forward_signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class SignalForwarder:
    """The one signal-forwarding preamble of `run` and `exec` in the foreground: the
    signals a user sends to the runtime (FORWARDED_SIGNALS) are caught from before the
    fork, so one arriving while the process is still being made is held -- rather than
    killing the runtime and leaving a half-made container or process behind -- and
    delivered once :meth:`target` names the process (runc's signal handler does the same
    with its queue)."""

    __slots__ = ("pid", "pending")

    def __init__(self) -> None:
        self.pid = 0
        self.pending: list[int] = []

    def install(self) -> None:
        for sig in FORWARDED_SIGNALS:
            signals.signal(sig, self._on_signal)

    def _on_signal(self, num: int, _frame: object) -> None:
        if self.pid:
            forward_signal(self.pid, num)
        else:
            self.pending.append(num)

    def target(self, pid: int) -> None:
        """From now on signals go to ``pid``; the ones held so far go there first."""
        self.pid = pid
        for num in self.pending:
            forward_signal(pid, num)
        self.pending.clear()

    @staticmethod
    def restore() -> None:
        for sig in FORWARDED_SIGNALS:
            signals.signal(sig, signals.SIG_DFL)


def relay_terminal(master: int, pid: int) -> None:
    from pyoci.executors.terminal import relay

    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        relay(master, pidfd)
    finally:
        os.close(pidfd)


def wait_for(pid: int) -> int:
    """Reap children until ``pid`` exits (as a subreaper we also get orphans of a
    container sharing our pid namespace, and they must not stay zombies)."""
    while True:
        try:
            got, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        if got == pid:
            return status


def exit_status(status: int) -> int:
    """runc's exit status: the process's own, or 128+n when signal n killed it."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)
