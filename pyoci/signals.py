"""Signal numbers, names and handlers without the :mod:`signal` module's enums.

``import signal`` builds ``Signals``, ``Handlers`` and ``Sigmasks`` with :mod:`enum`, which
costs more than the whole of ``kill`` should (issue 5). The C module underneath,
``_signal``, has every constant and function pyoci calls, taking and returning plain ints.
"""

from __future__ import annotations

import _signal
from _signal import (  # noqa: F401 - re-exported for the operations
    NSIG,
    SIG_DFL,
    SIG_SETMASK,
    SIGCONT,
    SIGHUP,
    SIGINT,
    SIGKILL,
    SIGQUIT,
    SIGRTMAX,
    SIGRTMIN,
    SIGTERM,
    SIGUSR1,
    SIGUSR2,
    SIGWINCH,
    pidfd_send_signal,
    pthread_sigmask,
    signal,
    valid_signals,
)

from pyoci.errors import PyociError

#: "SIGKILL" -> 9, ... for every signal this platform defines (aliases such as SIGIOT and
#: SIGCLD included, as in ``signal.Signals``).
NAMES: dict[str, int] = {name: getattr(_signal, name) for name in dir(_signal)
                         if name.startswith("SIG") and not name.startswith("SIG_")}


def parse(value: str | int) -> int:
    """runc accepts 'KILL', 'SIGKILL', '9' and, for real-time signals, 'RTMIN+3'."""
    text = str(value).strip()
    if text.isdigit():
        num = int(text)
        if 0 < num < NSIG:
            return num
    else:
        name = text.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        if name in NAMES:
            return NAMES[name]
        if name.startswith("SIGRTMIN+") and name[9:].isdigit():
            num = SIGRTMIN + int(name[9:])
            if num <= SIGRTMAX:
                return num
    raise PyociError(f"invalid signal {value!r}: use a name (TERM, SIGKILL) or a number")
