"""Pay the kernel's cgroup-migration wait in the background, while create/exec prepare.

Moving a process into a cgroup (a write to ``cgroup.procs``) takes the global
``cgroup_threadgroup_rwsem`` for writing (kernel/cgroup/cgroup.c, cgroup_attach_lock).
That is a percpu rwsem: its first writer waits for an RCU grace period (rcu_sync_enter,
kernel/rcu/sync.c) -- 7-15 ms on this machine kind, a third of what runc needs for a
whole ``create``, and runc pays it too, in line. Once the writer leaves, the readers'
fast path stays off for one more grace period, and a writer arriving in that window does
not wait at all.

So `create`, `run` and `exec` start a thread, before they import and validate anything,
that writes "0" (the writer itself) to the ``cgroup.procs`` of the cgroup the runtime is
already in: a migration that moves nothing but takes the lock. The main thread imports,
validates and makes the container's cgroup meanwhile; when it moves the container's first
process, the grace period has passed. If the kernel is slower than our preparation, the
wait is one we would have paid in the move anyway.

No thread may be alive across a fork (the child would inherit whatever lock it held, and
pyoci's children run on after the fork). The process driver (pyoci/process_driver.py)
calls :func:`wait` before it forks, and :func:`wait` returns only once the thread has
ended -- joined, not merely done with its write: see there.
"""

from __future__ import annotations

import _thread
import os

_started = False
# Released by the interpreter when the thread's state is gone (how threading.Thread.join
# knows a thread has ended; importing threading would cost ~3 ms on every create).
_ended: _thread.LockType | None = None
_handed: _thread.LockType | None = None   # released once ``_ended`` is set
_handle: object = None                   # Python >= 3.13: start_joinable_thread's handle


def _run() -> None:
    """The thread (Python < 3.13): the sentinel first, so :func:`wait` can join it."""
    global _ended
    try:
        _ended = _thread._set_sentinel()  # type: ignore[attr-defined]
        _ended.acquire()
    finally:
        assert _handed is not None
        _handed.release()
    _migrate_self()


def _migrate_self() -> None:
    """Write our own pid ("0") into our own cgroup in one hierarchy. Errors are ignored:
    this only saves time, the real move reports its own."""
    try:
        from pyoci.cgroups.detect import detect

        layout = detect()
        own = next((h.own_dir for h in layout.hierarchies() if h.own_dir), None) \
            or layout.unified_own_dir
        if own:
            fd = os.open(os.path.join(own, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
    except Exception:  # noqa: BLE001, S110 - an optimisation must never fail a create
        pass


def start() -> None:
    """Begin the background no-op migration; a second call before :func:`wait` does
    nothing. `create` and `run` call it first thing, `exec` when its module is imported."""
    global _started, _handed, _handle
    if _started:
        return
    _started = True
    joinable = getattr(_thread, "start_joinable_thread", None)
    try:
        if joinable is not None:
            _handle = joinable(_migrate_self)
            return
        _handed = _thread.allocate_lock()
        _handed.acquire()
        _thread.start_new_thread(_run, ())
    except RuntimeError:  # no thread could be started: nothing to wait for
        _handed = None


def wait() -> None:
    """Return once the background thread has ended (at once if none was started).

    Called before every fork. There is no timeout on purpose: a wait that gave up would
    fork with the thread alive, which the module's rule forbids -- and the thread cannot
    hang: it reads /proc/self/cgroup and mountinfo and makes one write, whose only wait is
    the kernel's RCU grace period (milliseconds). "Ended" means joined: the lock released
    when the interpreter has deleted the thread's state (on Python >= 3.13 the handle's
    join), not a flag the thread sets before it returns, after which it would still run."""
    global _handed, _handle, _ended, _started
    if _handle is not None:
        _handle.join()  # type: ignore[attr-defined]
        _handle = None
    elif _handed is not None:
        _handed.acquire()  # the thread has set its sentinel (or failed to)
        _handed = None
        if _ended is not None:
            _ended.acquire()
            _ended = None
    # Joined: a later start() (the next create or exec of a Python API caller) primes again.
    _started = False
