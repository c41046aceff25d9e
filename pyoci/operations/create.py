"""`create`: validate the bundle, fork the init and leave it waiting on the exec FIFO
(runtime.md "Lifecycle" steps 1-6 up to, not including, the user's program).

The work is in pyoci/create_parent.py (the parent side, with the sequence drawn) and
pyoci/init.py (the children); docs/architecture.md has the whole picture.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyoci.state import Container


class CreateOptions:
    """``console_sink``: `run` in the foreground takes the pty master itself (it relays it)
    instead of sending it to a --console-socket."""
    __slots__ = ("bundle", "pid_file", "console_socket", "no_pivot", "no_new_keyring",
                 "preserve_fds", "systemd_cgroup", "console_sink")

    def __init__(self, bundle: str = ".", pid_file: str | None = None,
                 console_socket: str | None = None, no_pivot: bool = False,
                 no_new_keyring: bool = False, preserve_fds: int = 0,
                 systemd_cgroup: bool = False,
                 console_sink: Callable[[int], None] | None = None) -> None:
        self.bundle = os.path.abspath(bundle)
        self.pid_file = pid_file
        self.console_socket = os.path.abspath(console_socket) if console_socket else None
        self.console_sink = console_sink
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds
        self.systemd_cgroup = systemd_cgroup


def create(root: str, cid: str, opts: CreateOptions) -> Container:
    """Create the container; on any failure undo everything and raise.

    The kernel's wait for a cgroup move (pyoci/cgroups/prime.py: an RCU grace period,
    7-15 ms here) starts first, in the background; the parent side
    (pyoci/create_parent.py) is imported after it, so the imports overlap the wait
    (measured: ~12 ms more per create when they came first). The driver joins the thread
    before it forks.
    """
    from pyoci.cgroups import prime

    prime.start()
    from pyoci.create_parent import run_create

    return run_create(root, cid, opts)
