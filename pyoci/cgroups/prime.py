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
process, the grace period has passed. :func:`wait` is called before forking, so no
thread is ever running across a fork; if the kernel is slower than our preparation, the
wait is one we would have paid in the move anyway.
"""

from __future__ import annotations

import _thread
import os

_done: _thread.LockType | None = None


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
    finally:
        if _done is not None:
            _done.release()


def start() -> None:
    """Begin the background no-op migration (once per process)."""
    global _done
    if _done is not None:
        return
    _done = _thread.allocate_lock()
    _done.acquire()
    try:
        _thread.start_new_thread(_migrate_self, ())
    except RuntimeError:  # no thread could be started: nothing to wait for
        _done.release()


def wait(timeout: float = 2.0) -> None:
    """Block until the background migration is over (before any fork)."""
    if _done is not None and _done.acquire(timeout=timeout):
        _done.release()
