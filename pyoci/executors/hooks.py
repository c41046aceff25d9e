"""Run the config's hooks (config.md "POSIX-platform Hooks").

Each hook gets the container's state on stdin, its own args and env (and nothing else),
and is killed when its timeout passes. The caller decides what a failure means: for
prestart/createRuntime/createContainer/startContainer it is an error that stops the
container; for poststart and poststop only a warning.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from typing import Any

from pyoci.config.model import Hook
from pyoci.errors import PyociError


class HookError(PyociError):
    pass


def run_hook(kind: str, index: int, hook: Hook, state: dict[str, Any]) -> None:
    argv = list(hook.args) or [hook.path]
    name = f"{kind} hook #{index} ({hook.path})"
    try:
        proc = subprocess.Popen(argv, executable=hook.path, env=dict(
            e.split("=", 1) if "=" in e else (e, "") for e in hook.env),
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            close_fds=True, cwd="/")
    except OSError as exc:
        raise HookError(f"{name}: cannot run: {exc.strerror.lower()}") from None
    try:
        _, err = proc.communicate(json.dumps(state).encode(), timeout=hook.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise HookError(f"{name}: timed out after {hook.timeout}s") from None
    if proc.returncode != 0:
        detail = err.decode(errors="replace").strip().splitlines()
        why = f": {detail[-1]}" if detail else ""
        code = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
                else f"exit status {proc.returncode}")
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
