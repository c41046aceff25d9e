"""`delete` (runtime.md "Operations": delete, "Lifecycle" steps 11-12)."""

from __future__ import annotations

import shutil
import signal

from pyoci.errors import PyociError, StateError
from pyoci.operations.common import signal_container, wait_gone
from pyoci.state import Container


def delete(root: str, cid: str, force: bool = False) -> None:
    c = Container(root, cid)
    with c.locked():
        status = c.status()
        if status != "stopped":
            if not force:
                raise StateError(f'cannot delete container "{cid}": it is {status}, not '
                                 "stopped (use --force to kill it first)")
            signal_container(c, signal.SIGKILL, all_processes=True)
            if not wait_gone(c.pid, 10):
                raise PyociError(f'container "{cid}": init {c.pid} did not exit after SIGKILL')
        shutil.rmtree(c.dir)
    hooks = c.doc.get("pyoci", {}).get("hooks", {}).get("poststop")
    if hooks:
        from pyoci.config.loader import load_hook
        from pyoci.executors.hooks import run_hooks_warn

        run_hooks_warn("poststop", [load_hook(h) for h in hooks], c.spec_state("stopped"))
