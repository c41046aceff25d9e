"""pyoci's Python API: the container lifecycle on bundles, without shelling out.

crun ships libcrun and youki libcontainer for the same reason (issue 14): tools and tests
written in Python should drive containers with calls that return typed results and raise
typed errors, not parse a command's stdout and exit status. Every function wraps the
operation module the CLI runs (pyoci/operations/*), so a container made here is the same
container ``pyoci state`` sees, under the same state root, with the same messages::

    from pyoci import api

    api.create("c1", bundle="/srv/bundle")       # ContainerState(status='created', ...)
    api.start("c1")
    api.kill("c1", "KILL"); api.delete("c1", force=True)
    api.run("c2", bundle="/srv/bundle").status   # the process's exit status

The contract (docs/api.md):

* Results are frozen records (pyoci/record.py): :class:`ContainerState`,
  :class:`ExitStatus`, :class:`Event`.
* Every failure is a :class:`~pyoci.errors.PyociError` with the CLI's message; the
  subclasses say which kind (``ContainerNotFound``, ``ContainerExists``,
  ``ContainerStateError``, ``ConfigError``, ``StepError``). An ``OSError`` that no
  operation turned into a message becomes a ``PyociError`` with the file it concerns.
  A failed ``create``/``run`` leaves nothing behind, as with the CLI.
* Nothing is printed and nothing exits: pyoci's warnings (an unknown capability, a
  damaged record skipped by ``list_containers``) go to the ``logging`` logger ``"pyoci"``
  once the call returns. The caller's signal handlers are left alone, and its
  child-subreaper flag is restored after ``run``/``exec``.
* ``root`` defaults to pyoci.rootless.default_root() (``/run/pyoci`` for root), as the
  CLI's ``--root`` does.

Importing this module costs what pyoci.errors and pyoci.record cost (no stdlib module
beyond ``os``): the operation modules are imported by the function that needs them, so a
tool that only asks for ``state`` never pays for ``create``'s imports.
"""

from __future__ import annotations

import os

from pyoci.errors import (
    ConfigError,
    ContainerExists,
    ContainerNotFound,
    ContainerStateError,
    PyociError,
    StepError,
)
from pyoci.record import frozen

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from typing import Any

    from pyoci.cgroups.manager import Manager
    from pyoci.state import Container

__all__ = ["ConfigError", "ContainerExists", "ContainerNotFound", "ContainerState",
           "ContainerStateError", "Event", "ExitStatus", "PyociError", "StepError",
           "create", "delete", "events", "exec", "exec_detached", "kill", "list_containers",
           "pause", "ps", "resume", "run", "start", "state", "stats"]


# --- results -------------------------------------------------------------------------------

@frozen
class ContainerState:
    """What ``pyoci state`` prints (runtime.md "State" plus runc's rootfs/created/owner),
    the status derived at the time of the call. ``pid`` is 0 once the container stopped.
    ``annotations`` is a plain dict, so a ContainerState is not hashable when it has any."""

    id: str
    status: str  # "creating", "created", "running", "paused" or "stopped"
    pid: int
    bundle: str
    rootfs: str = ""
    created: str = ""
    owner: str = ""
    oci_version: str = ""
    annotations: dict[str, str] | None = None


@frozen
class ExitStatus:
    """How a process ended. ``status`` is runc's exit status -- the process's own, or
    128+n when signal n killed it -- and ``signal`` that n (0 if it exited)."""

    pid: int
    status: int
    signal: int = 0

    @property
    def ok(self) -> bool:
        return self.status == 0


@frozen
class Event:
    """One item of ``pyoci events``: ``type`` "stats" (``data``: runc's stats document) or
    "oom" (the kernel's OOM killer struck in the container's cgroup; ``data`` None)."""

    type: str
    id: str
    data: dict[str, Any] | None = None


# --- the call boundary -------------------------------------------------------------------

class _Call:
    """Around every API call: pyoci's log messages are collected instead of written to
    stderr (handed to ``logging`` afterwards, in the caller's process and never in a
    forked child, whose imports are sealed), and a stray OSError becomes a PyociError."""

    __slots__ = ("messages", "saved")

    def __enter__(self) -> _Call:
        from pyoci import log

        self.messages: list[tuple[str, str]] = []
        self.saved = log.sink
        log.sink = self._collect
        return self

    def _collect(self, level: str, msg: str) -> None:
        self.messages.append((level, msg))

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        from pyoci import log

        log.sink = self.saved
        if self.messages:
            import logging

            logger = logging.getLogger("pyoci")
            for level, msg in self.messages:
                logger.log(logging.getLevelName(level.upper()), msg)
        if isinstance(exc, OSError) and not isinstance(exc, PyociError):
            where = f" ({exc.filename})" if exc.filename else ""
            raise PyociError(f"{exc.strerror or exc}{where}") from exc


def _root(root: str | None) -> str:
    if root:
        return root
    from pyoci.rootless import default_root

    return default_root()


def _state_of(c: Container) -> ContainerState:
    doc = c.cli_state()
    return ContainerState(id=doc["id"], status=doc["status"], pid=doc["pid"],
                          bundle=doc["bundle"], rootfs=doc.get("rootfs", ""),
                          created=doc.get("created", ""), owner=doc.get("owner", ""),
                          oci_version=doc.get("ociVersion", ""),
                          annotations=dict(doc.get("annotations") or {}))


def _exit_status(pid: int, wait_status: int) -> ExitStatus:
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        return ExitStatus(pid, 128 + sig, sig)
    return ExitStatus(pid, os.WEXITSTATUS(wait_status))


def _wait(pid: int) -> ExitStatus:
    """Wait for our child ``pid`` only (never waitpid(-1): the caller's other children
    are its own business)."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            raise PyociError(f"process {pid}: its exit status was collected elsewhere "
                             "(is SIGCHLD ignored in this process?)") from None
        return _exit_status(pid, status)


def _reap_quietly(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


class _Subreaper:
    """The caller a child subreaper while the container's process is handed to it (the
    process is forked by an intermediate child that exits), then its own setting again."""

    __slots__ = ("was",)

    def __enter__(self) -> None:
        from pyoci import syscalls as sc

        self.was = sc.child_subreaper()
        if not self.was:
            sc.set_child_subreaper()

    def __exit__(self, *exc: object) -> None:
        if not self.was:
            from pyoci import syscalls as sc

            sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 0)


def _create_options(bundle: str, pid_file: str | None, console_socket: str | None,
                    no_pivot: bool, no_new_keyring: bool, preserve_fds: int,
                    systemd_cgroup: bool) -> Any:
    from pyoci.operations.create import CreateOptions

    return CreateOptions(bundle=bundle, pid_file=pid_file, console_socket=console_socket,
                         no_pivot=no_pivot, no_new_keyring=no_new_keyring,
                         preserve_fds=preserve_fds, systemd_cgroup=systemd_cgroup)


def _force_delete(root: str, cid: str) -> None:
    from pyoci.operations.delete import delete as do_delete

    try:
        do_delete(root, cid, force=True)
    except Exception:  # noqa: BLE001 - the original error is the one to report
        pass


# --- the lifecycle -----------------------------------------------------------------------

def create(cid: str, bundle: str = ".", *, root: str | None = None,
           pid_file: str | None = None, console_socket: str | None = None,
           no_pivot: bool = False, no_new_keyring: bool = False, preserve_fds: int = 0,
           systemd_cgroup: bool = False) -> ContainerState:
    """``pyoci create``: validate the bundle and leave the init waiting for :func:`start`.
    The init inherits the caller's stdin/stdout/stderr (as with the CLI) and the
    ``preserve_fds`` descriptors from 3 on."""
    from pyoci.operations.create import create as do_create

    with _Call():
        c = do_create(_root(root), cid, _create_options(
            bundle, pid_file, console_socket, no_pivot, no_new_keyring, preserve_fds,
            systemd_cgroup))
        return _state_of(c)


def start(cid: str, *, root: str | None = None) -> ContainerState:
    """``pyoci start``: returns once the user's program has been exec'd."""
    from pyoci.operations.start import start as do_start

    with _Call():
        return _state_of(do_start(_root(root), cid))


def state(cid: str, *, root: str | None = None) -> ContainerState:
    """``pyoci state``: the status is derived now (docs/architecture.md)."""
    from pyoci.state import Container

    with _Call():
        return _state_of(Container(_root(root), cid).load())


def list_containers(*, root: str | None = None) -> list[ContainerState]:
    """``pyoci list``: every container whose state can be read, by id; one that cannot is
    left out with a warning (logger "pyoci"), as runc's list does."""
    from pyoci.state import list_containers as containers

    with _Call():
        problems: list[str] = []
        found = [_state_of(c) for c in containers(_root(root), problems)]
        from pyoci import log

        for problem in problems:
            log.warn(problem)
        return found


def kill(cid: str, signal: str | int = "SIGTERM", *, root: str | None = None,
         all_processes: bool = False) -> None:
    """``pyoci kill``: ``signal`` a name ("KILL", "SIGTERM") or a number; 0 only checks."""
    from pyoci.operations.kill import kill as do_kill

    with _Call():
        do_kill(_root(root), cid, str(signal), all_processes)


def delete(cid: str, *, root: str | None = None, force: bool = False) -> None:
    """``pyoci delete``: a stopped container; with ``force`` any, killed first (and a
    missing one is then no error, as with runc)."""
    from pyoci.operations.delete import delete as do_delete

    with _Call():
        do_delete(_root(root), cid, force)


def pause(cid: str, *, root: str | None = None) -> None:
    """``pyoci pause``: freeze every process of the container through its cgroup."""
    from pyoci.operations.pause import pause as do_pause

    with _Call():
        do_pause(_root(root), cid)


def resume(cid: str, *, root: str | None = None) -> None:
    """``pyoci resume``: thaw a paused container."""
    from pyoci.operations.pause import resume as do_resume

    with _Call():
        do_resume(_root(root), cid)


def ps(cid: str, *, root: str | None = None) -> list[int]:
    """``pyoci ps --format json``: the host pids in the container's cgroup, sorted."""
    from pyoci.operations.ps import container_pids

    with _Call():
        return container_pids(_root(root), cid)


def run(cid: str, bundle: str = ".", *, root: str | None = None, keep: bool = False,
        pid_file: str | None = None, console_socket: str | None = None,
        no_pivot: bool = False, no_new_keyring: bool = False, preserve_fds: int = 0,
        systemd_cgroup: bool = False) -> ExitStatus:
    """``pyoci run``: create, start, wait, delete (unless ``keep``); the process's exit
    status. Unlike the CLI it forwards no signals (the caller's handlers stay its own:
    :func:`kill` reaches the container) and waits for the init alone: the caller is a
    subreaper only while create hands the init to it, so orphans of a container sharing
    the caller's pid namespace go to the caller's reaper, as with ``run --no-subreaper``.
    A failure, or an exception while waiting (KeyboardInterrupt), deletes the container
    (unless ``keep``) before it propagates. ``process.terminal`` needs
    ``console_socket``."""
    from pyoci.operations.create import create as do_create
    from pyoci.operations.delete import delete as do_delete
    from pyoci.operations.start import start as do_start

    root = _root(root)
    opts = _create_options(bundle, pid_file, console_socket, no_pivot, no_new_keyring,
                           preserve_fds, systemd_cgroup)
    with _Call():
        with _Subreaper():
            pid = do_create(root, cid, opts).pid
        try:
            do_start(root, cid)
        except BaseException:
            _force_delete(root, cid)  # the program never ran: nothing to keep
            _reap_quietly(pid)
            raise
        try:
            result = _wait(pid)
        except BaseException:
            if not keep:
                _force_delete(root, cid)
                _reap_quietly(pid)
            raise
        if not keep:
            do_delete(root, cid, force=True)
        return result


def _exec_options(args: Sequence[str], pid_file: str, **kw: Any) -> Any:
    from pyoci.operations.exec import ExecOptions

    if kw["tty"] and not kw["console_socket"]:
        raise PyociError("exec: tty=True needs console_socket, the unix socket to send the "
                         "terminal to")
    return ExecOptions(args=list(args), detach=True, pid_file=pid_file,
                       process_file=kw["process_file"], tty=kw["tty"],
                       console_socket=kw["console_socket"], cwd=kw["cwd"],
                       env=list(kw["env"]), user=kw["user"],
                       additional_gids=list(kw["additional_gids"]), caps=list(kw["caps"]),
                       no_new_privs=kw["no_new_privs"], preserve_fds=kw["preserve_fds"],
                       cgroup=list(kw["cgroup"]), ignore_paused=kw["ignore_paused"])


def _exec(cid: str, args: Sequence[str], root: str | None, wait: bool,
          kw: dict[str, Any]) -> ExitStatus | int:
    import tempfile

    from pyoci.operations.exec import exec_process

    with _Call():
        root = _root(root)
        tmp = tempfile.mkdtemp(prefix="pyoci-exec-")
        pid_file = os.path.join(tmp, "pid")
        try:
            opts = _exec_options(args, pid_file, **kw)
            if wait:
                with _Subreaper():
                    exec_process(root, cid, opts)
            else:
                exec_process(root, cid, opts)
            with open(pid_file) as f:
                pid = int(f.read())
        finally:
            for name in os.listdir(tmp):
                os.unlink(os.path.join(tmp, name))
            os.rmdir(tmp)
        return _wait(pid) if wait else pid


def exec(cid: str, args: Sequence[str] = (), *, root: str | None = None,  # noqa: A001
         process_file: str | None = None, env: Sequence[str] = (), cwd: str | None = None,
         user: str | None = None, additional_gids: Sequence[int] = (),
         caps: Sequence[str] = (), no_new_privs: bool = False, tty: bool = False,
         console_socket: str | None = None, preserve_fds: int = 0,
         cgroup: Sequence[str] = (), ignore_paused: bool = False) -> ExitStatus:
    """``pyoci exec``: run ``args`` (or the process of ``process_file``, a process.json)
    in a running container and wait for it; its exit status. The process inherits the
    caller's stdin/stdout/stderr. The keywords are exec's flags (``user``: "uid[:gid]",
    ``env``: "KEY=VALUE" items, ``cgroup``: ``--cgroup`` values); as with :func:`run`, no
    signal is forwarded and only this process is waited for."""
    kw = dict(process_file=process_file, env=env, cwd=cwd, user=user,
              additional_gids=additional_gids, caps=caps, no_new_privs=no_new_privs,
              tty=tty, console_socket=console_socket, preserve_fds=preserve_fds,
              cgroup=cgroup, ignore_paused=ignore_paused)
    result = _exec(cid, args, root, True, kw)
    assert isinstance(result, ExitStatus)
    return result


def exec_detached(cid: str, args: Sequence[str] = (), *, root: str | None = None,
                  process_file: str | None = None, env: Sequence[str] = (),
                  cwd: str | None = None, user: str | None = None,
                  additional_gids: Sequence[int] = (), caps: Sequence[str] = (),
                  no_new_privs: bool = False, tty: bool = False,
                  console_socket: str | None = None, preserve_fds: int = 0,
                  cgroup: Sequence[str] = (), ignore_paused: bool = False) -> int:
    """``pyoci exec --detach``: start the process and return its host pid at once. It is
    not the caller's child (as with the CLI): watch it with ``os.pidfd_open``."""
    kw = dict(process_file=process_file, env=env, cwd=cwd, user=user,
              additional_gids=additional_gids, caps=caps, no_new_privs=no_new_privs,
              tty=tty, console_socket=console_socket, preserve_fds=preserve_fds,
              cgroup=cgroup, ignore_paused=ignore_paused)
    result = _exec(cid, args, root, False, kw)
    assert isinstance(result, int)
    return result


# --- events ----------------------------------------------------------------------------

#: OOM kills are looked for at least this often (as pyoci/operations/events.py).
_OOM_CHECK = 0.5


def _running_cgroup(root: str, cid: str) -> tuple[Container, Manager]:
    from pyoci.operations.common import require_cgroup
    from pyoci.state import Container

    c = Container(root, cid).load()
    if c.status() == "stopped":
        raise ContainerStateError(f'container "{cid}" is not running')  # events' text
    return c, require_cgroup(c)


def stats(cid: str, *, root: str | None = None) -> Event:
    """``pyoci events --stats``: one "stats" event of the container's cgroup."""
    with _Call():
        _, mgr = _running_cgroup(_root(root), cid)
        return Event("stats", cid, mgr.stats())


def events(cid: str, *, root: str | None = None, interval: float = 5.0) -> Iterator[Event]:
    """``pyoci events``: a "stats" event every ``interval`` seconds and an "oom" event
    whenever the OOM killer struck, until the container's init exits (then the iterator
    ends). A missing or stopped container raises here, at the call, not at the first
    ``next()``; close the iterator (or drop it) to stop early."""
    if not interval > 0:
        raise PyociError(f"events: interval {interval!r} must be greater than zero")
    with _Call():
        c, mgr = _running_cgroup(_root(root), cid)
        try:
            pidfd = os.pidfd_open(c.pid)
        except ProcessLookupError:
            pidfd = -1
    return _stream(cid, mgr, pidfd, interval)


def _stream(cid: str, mgr: Manager, pidfd: int, interval: float) -> Iterator[Event]:
    import select
    import time

    if pidfd < 0:
        return
    try:
        with _Call():
            ooms = mgr.oom_kill_count()
        next_stats = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= next_stats:
                with _Call():
                    data = mgr.stats()
                yield Event("stats", cid, data)
                next_stats = time.monotonic() + interval
            with _Call():
                count = mgr.oom_kill_count()
            if count > ooms:
                yield Event("oom", cid)
            ooms = count
            wait = min(_OOM_CHECK, max(0.0, next_stats - time.monotonic()))
            # The pidfd turns readable when the init exits: the stream ends with it.
            if select.select([pidfd], [], [], wait)[0]:
                with _Call():
                    last = mgr.oom_kill_count()
                if last > ooms:
                    yield Event("oom", cid)
                return
    finally:
        os.close(pidfd)
