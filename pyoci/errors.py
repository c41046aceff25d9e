"""Exceptions carrying a message meant for the user.

Every failure that reaches the CLI is a :class:`PyociError`; the CLI prints its message
once, writes it to ``--log`` and exits 1, as runc does.
"""

from __future__ import annotations

import errno as _errno
import os


class PyociError(Exception):
    """A failure with a message the user can act on."""


class ConfigError(PyociError):
    """The bundle's config.json is invalid; ``problems`` holds every finding."""

    def __init__(self, problems: list[tuple[str, str]], source: str = "config.json") -> None:
        self.problems = problems
        self.source = source
        lines = [f"{source}: {path or '(root)'}: {msg}" for path, msg in problems]
        super().__init__("invalid configuration:\n  " + "\n  ".join(lines) if len(lines) > 1
                         else "invalid configuration: " + lines[0])


class ContainerNotFound(PyociError):
    def __init__(self, cid: str) -> None:
        super().__init__(f'container "{cid}" does not exist')


class ContainerExists(PyociError):
    """``create``/``run`` with an id that is already taken under the state root."""

    def __init__(self, cid: str) -> None:
        super().__init__(f'container "{cid}" already exists')


class StateError(PyociError):
    """An operation the lifecycle forbids in the container's current status."""


#: The name the Python API documents (pyoci/api.py) for :class:`StateError`.
ContainerStateError = StateError


class StepError(PyociError):
    """A step of the container's setup failed; ``step`` names it. ``hook`` is true when
    a hook failed, after which the lifecycle still runs the poststop hooks."""

    def __init__(self, step: str, reason: str, hook: bool = False) -> None:
        self.step = step
        self.reason = reason
        self.hook = hook
        super().__init__(reason if hook else f"{step}: {reason}")


def describe_oserror(exc: BaseException) -> str:
    """A short lower-case reason for an OSError ("permission denied"), else str(exc)."""
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower() if exc.errno in _errno.errorcode else str(exc)
    return str(exc)


def printable(text: str) -> str:
    """``text`` with every control character but newline and tab escaped (\\x1b, \\r,
    ...): what a container, its image or its hook wrote must not reach the user's
    terminal as escape sequences (a forged line, a changed title), as runc's logrus
    quoting prevents. Newlines stay: multi-line messages (every config problem at once)
    keep their lines."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in text)


class HookError(PyociError):
    """A hook failed (runtime.md "Lifecycle"): its message names the hook and the reason."""
