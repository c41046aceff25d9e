"""runc-compatible logging to ``--log`` in text or JSON lines.

Where each message goes is runc's rule (runc 1.1 main.go: logrus writes to the ``--log``
file when one is given, to stderr otherwise; ``fatal`` also prints the error on stderr):

* with ``--log FILE``: warnings, info and (with ``--debug``) debug lines go to the file
  only; errors go to the file *and* stderr;
* without ``--log``: warnings and errors go to stderr, info and debug lines too with
  ``--debug``.

Engines depend on both halves. During ``create`` the runtime's stderr is the container's
own stderr under Docker (containerd's shim) and podman (conmon), so a warning written there
shows up in ``docker logs`` as if the container had printed it; and containerd's shim reads
the last ``level=error`` line of the ``--log`` file (pkg/process/utils.go
getLastRuntimeError) while go-runc folds the runtime's stderr into the error it returns
(runOrError), which is where the shim looks for "container not running" or "does not
exist" (checkKillError). Kept free of the ``logging`` package: one write per message.
"""

from __future__ import annotations

import os
import sys
import time

from pyoci import jsonio
from pyoci.errors import printable

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Callable

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_path: str | None = None
_fmt = "text"
_threshold = _LEVELS["info"]
#: Set by the Python API (pyoci/api.py) for the length of a call: every message goes to
#: it, as (level, message), instead of stderr or --log -- a library must not write to its
#: caller's stderr. Never set by the CLI.
sink: Callable[[str, str], None] | None = None


def configure(path: str | None, fmt: str = "text", debug: bool = False) -> None:
    global _path, _fmt, _threshold
    _path = path
    _fmt = fmt
    _threshold = _LEVELS["debug"] if debug else _LEVELS["info"]


def _timestamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"


def _format(level: str, msg: str) -> str:
    if _fmt == "json":
        return jsonio.dumps({"level": level, "msg": msg, "time": _timestamp()})
    return f'time="{_timestamp()}" level={level} msg={jsonio.encode_string(msg)}'


def emit(level: str, msg: str) -> None:
    """Write one message to the --log file if there is one, else to stderr (warnings and
    errors; every level with --debug). Errors go to stderr in any case (see above)."""
    if sink is not None:
        sink(level, msg)
        return
    if _LEVELS[level] < _threshold:
        return
    line = _format(level, msg) + "\n"
    if _path:
        # O_APPEND keeps lines whole when several runtime calls share one log file.
        fd = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    if level == "error" or (_path is None and (level == "warning"
                                               or _threshold == _LEVELS["debug"])):
        prefix = "" if level == "error" else f"{level}: "
        # Escaped here, once for every message: paths, hook output and the init's reasons
        # may carry text the container chose (docs/security.md).
        sys.stderr.write(f"pyoci: {prefix}{printable(msg)}\n")
        sys.stderr.flush()


def debug(msg: str) -> None:
    emit("debug", msg)


def info(msg: str) -> None:
    emit("info", msg)


def warn(msg: str) -> None:
    emit("warning", msg)


def error(msg: str) -> None:
    emit("error", msg)


def fail(exc: BaseException) -> int:
    """Report an error caught at the CLI boundary once and give runc's exit status: 130
    after ^C, 1 otherwise. An OSError should have become a PyociError nearer its cause;
    it still gets one line, with the file it concerns."""
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        error(f"{exc.strerror or exc}{where}")
    else:
        error(str(exc))
    return 1
