"""The runtime's side of making a container process, shared by `create` and `exec`.

Both fork a first (intermediate) child, which joins or makes the namespaces and forks the
process itself -- the container's init for `create`, the exec'd process for `exec` -- since
a new or joined pid or time namespace applies to children only. The conversation:

  parent (ProcessDriver.run)              first child                 the process
  prime.wait(), flush stdio, fork  ---->  non-dumpable, seal_imports,
                                          close_range
  join_cgroup(first child)
                     --- "cgroup" --->    join / unshare namespaces
  answer(request)   <--- e.g. "userns"    (create: uid/gid maps)
                     --- "userns-done" ->
  pidfd of the process <--- "pid" -----   fork --------------------->  (waits for "go")
  reap the first child                    exit 0
  started()          (create: record the pid, lend network devices)
                     --- "go" ---------------------------------------->  setup
  setup()            (create: hooks; both: terminal and seccomp fds, until "ready")
  finish()           (create: status "created"; exec: end of file = execve done)

Everything that differs between the two is a method of the subclass (create's
``_CreateDriver``, exec's ``_ExecDriver``): the child's entry point, the fds lent to the
child, the cgroup join, the requests answered before "pid", and what happens after
"pid", after "go" and after "ready". The sequence, the channel, the waits (one
:meth:`pyoci.sync.Channel.expect`: a child's failure names its step), the reaping and the
undo are here, once.

Undo: if anything fails (a child's error, a callback's, a signal's KeyboardInterrupt), the
subclass's :meth:`ProcessDriver.undo` runs first (create gives back the network devices),
then the first child is killed and reaped if it still exists and the process is killed
through the pidfd taken when its pid arrived (never by number: with --detach it is not
our child and its number could be someone else's once reaped elsewhere). Nothing the
driver made is left; what the caller made before (state directory, cgroup) is the
caller's to undo.
"""

from __future__ import annotations

import os
import sys

from pyoci import signals
from pyoci.cgroups import prime
from pyoci.errors import PyociError
from pyoci.sync import Channel

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any, NoReturn


def reap(pid: int, kill: bool = False) -> None:
    """Wait for our child ``pid`` (after SIGKILL with ``kill``); one that is gone already,
    or is not our child, is no error. The one way the runtime reaps a child it made (the
    foreground wait, which also reaps a subreaper's orphans, is foreground.wait_for)."""
    if kill:
        try:
            os.kill(pid, signals.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


class ProcessDriver:
    """One fork of a container process, driven up to its "ready" (see the module
    docstring). Subclasses set :attr:`joining` and override the hooks; :meth:`run` is the
    sequence."""

    #: The first child's job until it reports the pid: names the step when it dies
    #: without a word.
    joining = "join the container"

    def __init__(self) -> None:
        self.chan, self.child_chan = Channel.pair()
        self.middle = 0   # the first child, until reaped (0 after: its pid is free then)
        self.pid = 0      # the process, once the first child has reported it
        self.pidfd = -1   # ... held from then on: signals go to it, never to a number

    # --- what create and exec do differently ---------------------------------------

    def child_main(self) -> NoReturn:
        """The first child's whole life (it never returns; the channel is
        :attr:`child_chan`)."""
        raise NotImplementedError

    def lent_fds(self) -> list[int]:
        """Descriptors opened for the child: the parent closes them once it has forked."""
        return []

    def parent_only_fds(self) -> list[int]:
        """Descriptors of the parent's that the child closes at once (create's lock)."""
        return []

    def join_cgroup(self, middle: int) -> None:
        """Move the first child into the container's cgroup, before it unshares (a new
        cgroup namespace is rooted where it is) or forks."""

    def answer(self, msg: dict[str, Any]) -> None:
        """A request of the first child's before it reports the pid."""
        raise PyociError(f"protocol error: unexpected {msg['type']!r}")

    def started(self) -> None:
        """The process exists (:attr:`pid`, :attr:`pidfd`) and waits for "go"."""

    def setup(self) -> None:
        """After "go": serve the process's setup requests until it says "ready"."""

    def finish(self) -> None:
        """After "ready", still under the undo."""

    def undo(self) -> None:
        """The subclass's own undo, before the processes are killed."""

    # --- the sequence -------------------------------------------------------------

    def run(self) -> int:
        """Fork, drive the child to "ready" and return the process's pid; on any failure
        undo everything done here and re-raise."""
        try:
            self._fork()
            self._drive()
        except BaseException:
            self._undo()
            raise
        finally:
            self.chan.close()
            if self.pidfd >= 0:
                os.close(self.pidfd)
        return self.pid

    def _fork(self) -> None:
        prime.wait()  # no thread may run across the fork (see prime.wait)
        sys.stdout.flush()
        sys.stderr.flush()
        lent = self.lent_fds()
        try:
            middle = os.fork()
        except BaseException:
            self._close_lent(lent)
            raise
        if middle == 0:
            self.chan.close()
            for fd in self.parent_only_fds():
                os.close(fd)
            self.child_main()  # never returns
        self.middle = middle
        self._close_lent(lent)

    def _close_lent(self, lent: list[int]) -> None:
        """The child's end of the channel and the fds lent to it: the parent's copies go."""
        self.child_chan.close()
        for fd in lent:
            os.close(fd)

    def _drive(self) -> None:
        middle_fd = os.pidfd_open(self.middle)
        try:
            self.join_cgroup(self.middle)
            self.chan.send("cgroup")
            while True:
                # Watching the first child: if it dies, the process it may have forked
                # still holds the channel open and end of file would never come.
                msg = self.chan.expect(None, self.joining, middle_fd)
                if msg["type"] == "pid":
                    break
                self.answer(msg)
        finally:
            os.close(middle_fd)
        self.pid = msg["pid"]
        # Before the first child is reaped: until then the pid is surely the process's.
        self.pidfd = os.pidfd_open(self.pid)
        reap(self.middle)
        self.middle = 0
        self.started()
        self.chan.send("go")
        self.setup()
        self.finish()

    def _undo(self) -> None:
        try:
            self.undo()
        finally:
            if self.middle > 0:  # not reaped yet, so the pid is still our child's
                reap(self.middle, kill=True)
                self.middle = 0
            if self.pidfd >= 0:
                try:
                    signals.pidfd_send_signal(self.pidfd, signals.SIGKILL)
                except ProcessLookupError:
                    pass
