"""Run the config's hooks (config.md "POSIX-platform Hooks").

Each hook gets the container's state on stdin, its own args and env (the runtime's environment
when it has none, as runc),
and is killed when its timeout passes. The caller decides what a failure means:
for prestart/createRuntime/createContainer/startContainer and (runtime.md v1.3.0)
poststart it is an error that stops the container; for poststop only a warning.
"""

from __future__ import annotations

import os
import select
import time

from pyoci import jsonio
from pyoci import syscalls as sc
from pyoci.errors import HookError as HookError  # re-exported: callers catch it here

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from pyoci.config.model import Hook


# HookError lives in pyoci.errors (the children's step reporting needs it without this
# module); re-exported here, where hooks fail.


def preload() -> None:
    """Import what running a hook needs while the runtime's files are still reachable:
    startContainer hooks run in the init after pivot_root, where pyoci's and Python's own
    files are gone. Since issue 16 hooks need nothing beyond this module's imports (all
    built in); kept so that callers need not know."""


# Run in the runtime's namespaces, so in the bundle directory as runc (which chdirs there).
RUNTIME_NAMESPACE_HOOKS = ("prestart", "createRuntime", "poststart", "poststop")


def _hook_env(hook: Hook) -> dict[str, str]:
    """hook.env when given; otherwise the runtime's own environment, as runc and crun pass
    it (Go's exec.Cmd with a nil Env)."""
    if not hook.env:
        return dict(os.environ)
    return dict(e.partition("=")[::2] for e in hook.env)


def _hook_cwd(kind: str, state: dict[str, Any]) -> str:
    bundle = state.get("bundle")
    return bundle if kind in RUNTIME_NAMESPACE_HOOKS and isinstance(bundle, str) else "/"


class _Spawned:
    """A hook's process: pid, the write end of its stdin, the read end of its stderr."""

    __slots__ = ("pid", "stdin", "stderr")

    def __init__(self, pid: int, stdin: int, stderr: int) -> None:
        self.pid, self.stdin, self.stderr = pid, stdin, stderr


def _spawn(path: str, argv: list[str], env: dict[str, str], cwd: str) -> _Spawned:
    """The hook's process, made through the syscall layer (:func:`pyoci.syscalls.spawn`:
    fork + execve without subprocess), so a test's fake sees it in the init's order."""
    return _Spawned(*sc.spawn(path, argv, env, cwd))


def _communicate(proc: _Spawned, data: bytes, timeout: float | None) -> tuple[bytes, int]:
    """Feed ``data`` to stdin, collect stderr until EOF, wait: (stderr, returncode as
    Popen gives it: -N after signal N). TimeoutError when ``timeout`` passes first (the
    process is left running for the caller to kill)."""
    deadline = None if timeout is None else time.monotonic() + timeout

    def remaining() -> float | None:
        if deadline is None:
            return None
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    err = bytearray()
    os.set_blocking(proc.stdin, False)
    reading, writing = [proc.stderr], [proc.stdin]
    offset = 0
    try:
        while reading or writing:
            r, w, _ = select.select(reading, writing, [], remaining())
            if not r and not w:
                raise TimeoutError
            if w:
                try:
                    offset += os.write(proc.stdin, data[offset:offset + 65536])
                except BlockingIOError:
                    pass
                except BrokenPipeError:
                    offset = len(data)
                if offset >= len(data):
                    os.close(proc.stdin)
                    writing = []
            if r:
                chunk = os.read(proc.stderr, 65536)
                if chunk:
                    err += chunk
                else:
                    reading = []
    finally:
        for fd in writing + reading:
            os.close(fd)
    pidfd = os.pidfd_open(proc.pid)
    try:
        if not select.select([pidfd], [], [], remaining())[0]:
            raise TimeoutError
    finally:
        os.close(pidfd)
    _, status = os.waitpid(proc.pid, 0)
    return bytes(err), os.waitstatus_to_exitcode(status)


def run_hook(kind: str, index: int, hook: Hook, state: dict[str, Any]) -> None:
    argv = list(hook.args) or [hook.path]
    name = f"{kind} hook #{index} ({hook.path})"
    try:
        proc = _spawn(hook.path, argv, _hook_env(hook), _hook_cwd(kind, state))
    except OSError as exc:
        raise HookError(f"{name}: cannot run: {(exc.strerror or str(exc)).lower()}") from None
    try:
        err, returncode = _communicate(proc, jsonio.dumps(state).encode(), hook.timeout)
    except TimeoutError:
        os.kill(proc.pid, 9)
        os.waitpid(proc.pid, 0)
        raise HookError(f"{name}: timed out after {hook.timeout}s") from None
    if returncode != 0:
        # The last line the hook wrote (its binary may be the image's: log.emit escapes it).
        detail = [line for line in err.decode(errors="replace").strip().split("\n") if line]
        why = f": {detail[-1]}" if detail else ""
        code = (f"killed by signal {-returncode}" if returncode < 0
                else f"exit status {returncode}")
        raise HookError(f"{name}: {code}{why}")


def run_hooks(kind: str, hooks: Sequence[Hook], state: dict[str, Any]) -> None:
    """Run hooks in order, stopping at the first failure (config.md: "in order")."""
    for i, hook in enumerate(hooks):
        run_hook(kind, i, hook, state)


def run_hooks_warn(kind: str, hooks: Sequence[Hook], state: dict[str, Any]) -> None:
    """poststart/poststop: a failure is logged and the remaining hooks still run."""
    from pyoci import log

    for i, hook in enumerate(hooks):
        try:
            run_hook(kind, i, hook, state)
        except HookError as exc:
            log.warn(str(exc))
