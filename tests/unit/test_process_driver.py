"""The process driver shared by create and exec (pyoci/process_driver.py), driven against
a fake child: the channel protocol, a child's failure naming its step, and the undo at
each point where the parent's side can fail (nothing may be left: no child, no process).
Also the one ``Channel.expect`` and prime.wait joining its thread."""

from __future__ import annotations

import _thread
import os
import select
import time

import pytest

from pyoci.cgroups import prime
from pyoci.errors import PyociError, StepError
from pyoci.process_driver import ProcessDriver
from pyoci.sync import Channel, ChannelClosed


def _gone(pidfd: int, timeout: float = 5.0) -> bool:
    return bool(select.select([pidfd], [], [], timeout)[0])


class FakeDriver(ProcessDriver):
    """The first child asks "userns" once, forks "the process" and reports its pid; the
    process waits for "go", optionally fails a named step, else says "ready"; then it
    sleeps until killed (a closed channel does not end it: the undo's kill must).
    ``fail_at`` makes one parent hook raise."""

    joining = "fake join"

    def __init__(self, fail_at: str = "", child_fails: str = "", middle_dies: bool = False,
                 ) -> None:
        super().__init__()
        self.fail_at, self.child_fails, self.middle_dies = fail_at, child_fails, middle_dies
        self.calls: list[str] = []
        self.seen_middle = 0
        self.watch = -1  # our own pidfd of the process, to check it is gone after undo

    def child_main(self):  # type: ignore[no-untyped-def]
        chan = self.child_chan
        code = 1
        try:
            chan.expect("cgroup")
            chan.send("userns")
            chan.expect("userns-done")
            pid = os.fork()
            if pid == 0:
                try:
                    chan.expect("go")
                    if self.child_fails:
                        chan.send("error", step=self.child_fails, reason="it broke")
                    else:
                        chan.send("ready")
                        chan.recv()  # until the parent closes or kills us
                except BaseException:  # noqa: BLE001, S110
                    pass
                while not self.middle_dies:  # only the driver's kill ends it
                    time.sleep(60)
                os._exit(0)
            if not self.middle_dies:
                chan.send("pid", pid=pid)
            code = 0
        except BaseException:  # noqa: BLE001, S110
            pass
        os._exit(code)

    def _step(self, name: str) -> None:
        self.calls.append(name)
        if self.fail_at == name:
            raise PyociError(f"{name} failed")

    def join_cgroup(self, middle: int) -> None:
        self.seen_middle = middle
        self._step("join_cgroup")

    def answer(self, msg):  # type: ignore[no-untyped-def]
        if msg["type"] != "userns":
            super().answer(msg)
        self._step("answer")
        self.chan.send("userns-done")

    def started(self) -> None:
        self.watch = os.pidfd_open(self.pid)
        self._step("started")

    def setup(self) -> None:
        self.chan.expect("ready", "fake setup")
        self._step("setup")

    def finish(self) -> None:
        self._step("finish")

    def undo(self) -> None:
        self.calls.append("undo")


def _middle_reaped(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_the_whole_sequence() -> None:
    d = FakeDriver()
    pid = d.run()
    try:
        assert pid > 0 and pid == d.pid
        assert d.calls == ["join_cgroup", "answer", "started", "setup", "finish"]
        assert _middle_reaped(d.seen_middle)
        assert d.middle == 0
        assert not _gone(d.watch, 0)  # the process lives on: success kills nothing
    finally:
        os.kill(pid, 9)
        assert _gone(d.watch)
        os.close(d.watch)


@pytest.mark.parametrize("point", ["join_cgroup", "answer", "started", "setup", "finish"])
def test_undo_at_each_failure_point(point: str) -> None:
    d = FakeDriver(fail_at=point)
    with pytest.raises(PyociError, match=f"{point} failed"):
        d.run()
    assert d.calls[-1] == "undo"
    assert d.seen_middle and _middle_reaped(d.seen_middle), "first child left behind"
    if d.watch >= 0:  # the process existed: it was killed
        assert _gone(d.watch), "process left behind"
        os.close(d.watch)
    assert d.chan.sock.fileno() == -1 and d.pidfd >= -1


def test_child_failure_names_its_step() -> None:
    d = FakeDriver(child_fails="mount /proc")
    with pytest.raises(StepError) as info:
        d.run()
    assert info.value.step == "mount /proc"
    assert str(info.value) == "mount /proc: it broke"
    assert d.calls[-1] == "undo"
    assert _gone(d.watch)
    os.close(d.watch)


def test_first_child_dying_silently_is_seen_through_its_pidfd() -> None:
    """Its own child still holds the channel open: end of file never comes, the pidfd
    watch ends the wait and names what the child was doing."""
    d = FakeDriver(middle_dies=True)
    with pytest.raises(StepError, match="^fake join: the container's init exited"):
        d.run()
    assert d.calls[-1] == "undo"
    assert _middle_reaped(d.seen_middle)
    # Its orphan ("the process") ends when it sees the channel close.


def test_expect() -> None:
    a, b = Channel.pair()
    try:
        b.send("error", step="pivot_root", reason="invalid argument", hook=False)
        with pytest.raises(StepError) as info:
            a.expect("ready", "set up")
        assert info.value.step == "pivot_root"
        b.send("hooks")
        with pytest.raises(PyociError, match="protocol error: expected 'ready', got 'hooks'"):
            a.expect("ready")
        b.send("pid", pid=5)
        assert a.expect(None)["pid"] == 5
        b.close()
        with pytest.raises(StepError, match="^set up: the container's init exited"):
            a.expect("ready", "set up")
        with pytest.raises(ChannelClosed):
            a.expect("ready")  # the child's side: no step of its own to blame
    finally:
        a.close()


def test_prime_wait_joins_a_slow_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """wait() may only return once the thread has ended: the old wait(timeout=2.0) let a
    fork happen with it alive."""
    from pyoci.cgroups import detect

    def slow_detect():  # type: ignore[no-untyped-def]
        time.sleep(2.3)
        raise OSError("no cgroups here")

    monkeypatch.setattr(detect, "detect", slow_detect)
    for name, value in (("_started", False), ("_handed", None), ("_ended", None),
                        ("_handle", None), ("_done", None)):  # _done: the old module's
        if hasattr(prime, name):
            monkeypatch.setattr(prime, name, value)
    before = _thread._count()
    prime.start()
    prime.wait()
    assert _thread._count() == before, "prime.wait returned with its thread alive"
    prime.wait()  # a second wait (or one with no thread) returns at once
