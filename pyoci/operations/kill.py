"""`kill` (runtime.md "Operations": kill): signal a created or running container.

The answers are runc 1.1's, because engines read them (docs/engines.md, "What engines
read from pyoci"):

* ``kill --all`` of a stopped container succeeds (exit 0), after signalling whatever is
  still in its cgroup. containerd's shim runs ``kill --all ID 9`` after the init of a
  container without a pid namespace of its own exits (every Kubernetes container that
  joins its pod's pid namespace) and treats any error as a failed cleanup
  (pkg/process/init.go KillAll).
* plain ``kill`` of a container that is not created, running or paused fails with a
  message containing runc's ``container not running`` (libcontainer ErrNotRunning):
  containerd's shim maps that text to "process already finished" (pkg/process/utils.go
  checkKillError), which Docker and the CRI plugin take as "already exited"; any other
  text is an "unknown error after kill".
* a missing container: "does not exist" (errors.ContainerNotFound), the shim's "no such
  container".
* signal 0 is accepted, as runc passes any number to kill(2): it only checks that the
  init exists.
* SIGKILL to a paused container thaws it afterwards (runc's Signal): under the v1 freezer
  a frozen task dies only once thawed, and `docker kill`/`podman kill` of a paused
  container expect it gone.
"""

from __future__ import annotations

from pyoci import signals
from pyoci.errors import StateError
from pyoci.operations.common import container_cgroup, parse_signal, signal_container
from pyoci.state import Container

#: runc's ErrNotRunning text (libcontainer/error.go), matched by containerd's shim.
NOT_RUNNING = "container not running"


def kill(root: str, cid: str, signal_name: str = "SIGTERM", all_processes: bool = False) -> None:
    sig = 0 if str(signal_name).strip() == "0" else parse_signal(signal_name)
    c = Container(root, cid).load()
    status = c.status()
    if all_processes and status == "stopped":
        # runc: a stopped container's --all reaches what is left in its cgroup (processes
        # of a container without its own pid namespace outlive the init) and succeeds
        # when nothing is left, or the cgroup is gone.
        mgr = container_cgroup(c)
        if mgr is not None and mgr.exists() and mgr.pids():
            mgr.kill(sig)
        return
    if status not in ("created", "running", "paused"):
        raise StateError(f'cannot kill container "{cid}": {NOT_RUNNING} (it is {status})')
    signal_container(c, sig, all_processes)
    if status == "paused" and sig == signals.SIGKILL and not all_processes:
        mgr = container_cgroup(c)  # --all thaws in Manager.kill already
        if mgr is not None and mgr.exists():
            mgr.thaw()
