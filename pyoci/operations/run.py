"""`run`: create + start + wait + delete, with runc's exit status (the process's, or
128+n when it was killed by signal n).

runc's `run` flags beyond create's: ``--keep`` (the container is not deleted after its
process exits: it stays, stopped, for `state` and a later `delete`) and
``--no-subreaper`` (runc does not make itself a child subreaper, so processes orphaned
inside a container sharing the caller's pid namespace go to the caller's reaper instead of
runc). pyoci's init is forked by an intermediate child (docs/architecture.md), so `run`
must be a subreaper while `create` runs for the init to become its child at all; with
``--no-subreaper`` it stops being one as soon as the init is its child -- from then on it
is exactly what runc is without a subreaper (runc's init is its child through
CLONE_PARENT).
"""

from __future__ import annotations

import os

from pyoci import syscalls as sc
from pyoci.cgroups import prime
from pyoci.operations.create import CreateOptions, create
from pyoci.operations.delete import delete
from pyoci.operations.foreground import (
    SignalForwarder,
    exit_status,
    relay_terminal,
    wait_for,
)
from pyoci.operations.start import start


def run(root: str, cid: str, opts: CreateOptions, detach: bool = False, *,
        keep: bool = False, no_subreaper: bool = False) -> int:
    prime.start()  # the kernel's wait for a cgroup move, paid in the background
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
    forwarder = SignalForwarder()
    forwarder.install()
    # runc run with terminal: true and no --console-socket relays the pty itself.
    master: list[int] = []
    if opts.console_socket is None:
        opts.console_sink = master.append
    try:
        c = create(root, cid, opts)
        if no_subreaper:
            # create has reaped the intermediate child: the init is our child now and
            # stays so. Orphans of the container go to the caller's reaper from here on.
            sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 0)
        forwarder.target(c.pid)
        _start_or_delete(root, cid)
        try:
            if master:
                relay_terminal(master[0], c.pid)
            status = wait_for(c.pid)
        except BaseException:
            if not keep:
                _force_delete(root, cid)  # as runc: a failed run leaves no container
            raise
    finally:
        for fd in master:
            os.close(fd)
        forwarder.restore()
    if not keep:
        delete(root, cid, force=True)
    return exit_status(status)


def _start_or_delete(root: str, cid: str) -> None:
    """A start that fails leaves no container, with or without --keep: the user's program
    never ran, so there is nothing to keep (start itself deletes the container after a
    failing poststart hook, runtime.md "Lifecycle" step 9)."""
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
