"""The runtime's side of a process's setup conversation, shared by `create` and `exec`:
messages from the child are received here, and what the child cannot deliver itself from
inside the container is passed on -- the pty master to --console-socket (or `run`'s relay),
the seccomp notify fd to linux.seccomp.listenerPath (config-linux.md "Seccomp")."""

from __future__ import annotations

import os

from pyoci.errors import PyociError, StepError, describe_oserror

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyoci.config.model import Spec
    from pyoci.state import Container
    from pyoci.sync import Channel


def serve_process_setup(chan: Channel, c: Container, spec: Spec, console_socket: str | None,
                        console_sink: Callable[[int], None] | None, pid: int,
                        status: str = "creating") -> None:
    """Answer the process's setup requests until it says "ready": its pty master goes to the
    console socket (or the sink), its seccomp notify fd to the listener. Also used by exec,
    whose listener gets the container's current state and the exec'd process's pid."""
    while True:
        msg = chan.expect(None, "finish the process setup")
        kind = msg["type"]
        if kind == "ready":
            return
        if kind == "terminal":
            _hand_over_terminal(console_socket, console_sink, msg["fds"][0])
            chan.send("terminal-done")
        elif kind == "seccomp":
            _hand_over_notify_fd(c, spec, pid, msg["fds"][0], status)
            chan.send("seccomp-done")
        else:
            raise PyociError(f"protocol error: unexpected {kind!r}")


def _hand_over_terminal(console_socket: str | None, sink: Callable[[int], None] | None,
                        master: int) -> None:
    if console_socket is None:
        assert sink is not None
        sink(master)  # takes ownership of the fd
        return
    from pyoci.executors.terminal import send_to_console_socket

    try:
        send_to_console_socket(console_socket, master)
    except OSError as exc:
        raise StepError(f"send the terminal to --console-socket {console_socket}",
                        describe_oserror(exc)) from None
    finally:
        os.close(master)


def _hand_over_notify_fd(c: Container, spec: Spec, init_pid: int, fd: int,
                         status: str) -> None:
    """config-linux.md "Seccomp": with SCMP_ACT_NOTIFY rules the runtime sends the notify fd
    and the container's state to linux.seccomp.listenerPath."""
    from pyoci.executors.seccomp import send_to_listener

    seccomp = spec.linux.seccomp
    assert seccomp is not None and seccomp.listener_path
    try:
        send_to_listener(seccomp.listener_path, fd, init_pid,
                         c.spec_state("creating") | {"pid": init_pid}
                         if status == "creating" else c.spec_state(),
                         seccomp.listener_metadata)
    except OSError as exc:
        raise StepError(f"send the seccomp notify fd to {seccomp.listener_path}",
                        describe_oserror(exc)) from None
    finally:
        os.close(fd)

