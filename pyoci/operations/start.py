"""`start` (runtime.md "Operations": start): release the init blocked on the exec FIFO and
return once the user's program has been exec'd (or say why it was not).

The init holds the FIFO's write end with O_CLOEXEC: a successful execve closes it with
nothing written (end of file here); a failure before or at exec writes the reason first.
A pidfd watches the init at the same time, so an init that died never blocks us.
"""

from __future__ import annotations

import os
import select

from pyoci.errors import PyociError, StateError
from pyoci.state import Container

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any


def _await_exec(c: Container) -> bytes:
    # The pidfd first: opening the FIFO releases the init, whose program may exit and be
    # reaped by its parent (containerd's shim, conmon: subreapers) at once -- after that
    # the pid is gone although start worked (Docker: "the container's init is gone", 1 in
    # 30 short-lived runs). status() just saw the recorded init alive.
    try:
        pidfd = os.pidfd_open(c.pid)
    except ProcessLookupError:
        raise PyociError("the container's init is gone") from None
    try:
        fifo = os.open(c.fifo_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except BaseException:
        os.close(pidfd)
        raise
    data = b""
    try:
        poller = select.poll()
        poller.register(fifo, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        while True:
            events = dict(poller.poll())
            if fifo in events:
                chunk = _read_some(fifo)
                if chunk is None:
                    continue
                if not chunk:  # the write end closed: exec'd, or failed after writing why
                    return data
                data += chunk
            elif pidfd in events:
                # Exited without ever opening the FIFO's write end.
                raise PyociError("the container's init exited before it could start the "
                                 "process")
    finally:
        os.close(fifo)
        os.close(pidfd)


def _read_some(fd: int) -> bytes | None:
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return None


def _not_created(status: str) -> str:
    """runc 1.1's texts (start.go), so that logs read the same under either runtime."""
    if status == "running":
        return "cannot start an already running container"
    if status == "stopped":
        return "cannot start a container that has stopped"
    return f"cannot start a container in the {status} state"


def start(root: str, cid: str) -> Container:
    c = Container(root, cid)
    with c.locked():
        status = c.status()
        if status != "created":
            raise StateError(f'container "{cid}": {_not_created(status)}')
        data = _await_exec(c)
        try:
            os.unlink(c.fifo_path)
        except FileNotFoundError:
            pass
        if data:
            raise PyociError(f"start container: {data.decode(errors='replace')}")
        c.record.status = "running"
        c.save()
    hooks = c.private.hooks.poststart
    if hooks:
        _run_poststart(root, c, hooks)
    return c


def _run_poststart(root: str, c: Container, hooks: tuple[dict[str, Any], ...]) -> None:
    """runtime.md v1.3.0 "Lifecycle" step 9: "If any poststart hook fails, the runtime
    MUST generate an error, stop the container, and continue the lifecycle at step 12"
    (12: the container is destroyed by undoing create; 13: the poststop hooks run). So the
    first failing hook ends start with an error, the remaining poststart hooks do not run
    (config.md: hooks run in order, and the lifecycle continues at step 12, not 10), and
    the container is killed and deleted as `delete --force` does, poststop hooks included.
    (v1.0 asked only for a warning; runc 1.1 runs poststart during create and fails it.)"""
    from pyoci.config.loader import load_hook
    from pyoci.executors.hooks import HookError, run_hooks

    try:
        run_hooks("poststart", [load_hook(h) for h in hooks], c.spec_state("running"))
    except HookError as exc:
        from pyoci.operations.delete import delete

        try:
            delete(root, c.id, force=True)
        except PyociError as cleanup:
            raise PyociError(f'container "{c.id}": {exc}; stopping the container then '
                             f"failed too: {cleanup}") from None
        raise PyociError(f'container "{c.id}": {exc}; the container was stopped and '
                         'deleted (runtime.md "Lifecycle" step 9)') from None
