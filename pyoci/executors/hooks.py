"""Run the config's hooks (config.md "POSIX-platform Hooks").

Each hook gets the container's state on stdin, its own args and env (and nothing else),
and is killed when its timeout passes. The caller decides what a failure means: for
prestart/createRuntime/createContainer/startContainer it is an error that stops the
container; for poststart and poststop only a warning.
"""

from __future__ import annotations

import os

from pyoci import jsonio
from pyoci.errors import PyociError

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from pyoci.config.model import Hook


class HookError(PyociError):
    pass


def preload() -> None:
    """Import what running a hook needs while the runtime's files are still reachable:
    startContainer hooks run in the init after pivot_root, where pyoci's and Python's own
    files are gone (subprocess is imported lazily: ~6 ms that containers without hooks
    need not pay, issue 5)."""
    import subprocess  # noqa: F401


# Run in the runtime's namespaces, so in the bundle directory as runc (which chdirs there).
RUNTIME_NAMESPACE_HOOKS = ("prestart", "createRuntime", "poststart", "poststop")


def _hook_env(hook: Hook) -> dict[str, str]:
    """hook.env when given; otherwise the runtime's own environment, as runc and crun pass
    it (Go's exec.Cmd with a nil Env)."""
    if not hook.env:
        return dict(os.environ)
    return dict(e.split("=", 1) if "=" in e else (e, "") for e in hook.env)


def _hook_cwd(kind: str, state: dict[str, Any]) -> str:
    bundle = state.get("bundle")
    return bundle if kind in RUNTIME_NAMESPACE_HOOKS and isinstance(bundle, str) else "/"


def run_hook(kind: str, index: int, hook: Hook, state: dict[str, Any]) -> None:
    import subprocess

    argv = list(hook.args) or [hook.path]
    name = f"{kind} hook #{index} ({hook.path})"
    try:
        proc = subprocess.Popen(argv, executable=hook.path, env=_hook_env(hook),
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            close_fds=True, cwd=_hook_cwd(kind, state))
    except OSError as exc:
        raise HookError(f"{name}: cannot run: {exc.strerror.lower()}") from None
    try:
        _, err = proc.communicate(jsonio.dumps(state).encode(), timeout=hook.timeout)
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
