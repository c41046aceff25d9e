"""`run`: create + start + wait + delete, with runc's exit status (the process's, or
128+n when it was killed by signal n)."""

from __future__ import annotations

import os

from pyoci import signals
from pyoci import syscalls as sc
from pyoci.operations.create import CreateOptions, create
from pyoci.operations.delete import delete
from pyoci.operations.foreground import (
    FORWARDED_SIGNALS,
    exit_status,
    forward_signal,
    relay_terminal,
    wait_for,
)
from pyoci.operations.start import start


def run(root: str, cid: str, opts: CreateOptions, detach: bool = False) -> int:
    if detach:
        create(root, cid, opts)
        _start_or_delete(root, cid)
        return 0
    # The init is forked by an intermediate child that exits; as a subreaper we inherit
    # the init and can wait for it.
    sc.set_child_subreaper()
    # Catch the forwarded signals from the start: one arriving during create or start is
    # held and delivered to the init once it exists, rather than killing us and leaving
    # the container behind.
    target = {"pid": 0}
    pending: list[int] = []

    def on_signal(num: int, _frame: object) -> None:
        if target["pid"]:
            forward_signal(target["pid"], num)
        else:
            pending.append(num)

    for sig in FORWARDED_SIGNALS:
        signals.signal(sig, on_signal)
    # runc run with terminal: true and no --console-socket relays the pty itself.
    master: list[int] = []
    if opts.console_socket is None:
        opts.console_sink = master.append
    try:
        c = create(root, cid, opts)
        target["pid"] = c.pid
        for num in pending:
            forward_signal(c.pid, num)
        _start_or_delete(root, cid)
        try:
            if master:
                relay_terminal(master[0], c.pid)
            status = wait_for(c.pid)
        except BaseException:
            _force_delete(root, cid)  # as runc: a failed run leaves no container
            raise
    finally:
        for fd in master:
            os.close(fd)
        for sig in FORWARDED_SIGNALS:
            signals.signal(sig, signals.SIG_DFL)
    delete(root, cid, force=True)
    return exit_status(status)


def _start_or_delete(root: str, cid: str) -> None:
    try:
        start(root, cid)
    except BaseException:
        _force_delete(root, cid)
        raise


def _force_delete(root: str, cid: str) -> None:
    try:
        delete(root, cid, force=True)
    except Exception:  # noqa: BLE001 - the original error is the one to report
        pass
