"""The hot path's command line: the calls engines make over and over, parsed without typer.

Importing typer and click costs about 40 ms, more than the work of `state`, `start`,
`kill` or `delete` (issue 5: within 2-3x of runc). These commands, in the exact shapes
containerd and podman use (see ../shared/reference/README.md), are parsed here with the
same flags and meanings as in :mod:`pyoci.cli`; anything else -- help, an unknown flag,
a missing argument, any other command -- returns None and goes to the full typer CLI,
which also produces the usage errors. Errors are handled as in ``cli.run_cli``.
"""

from __future__ import annotations

import sys

from pyoci.errors import PyociError

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Callable

_GLOBAL_VALUES = {"--root": "root", "--log": "log", "--log-format": "log_format",
                  "--rootless": "rootless", "--criu": "criu"}
_GLOBAL_FLAGS = {"--debug": "debug", "--systemd-cgroup": "systemd_cgroup"}


class _Fallback(Exception):
    """This call is not one the fast path knows: let typer handle it."""


def _split(argv: list[str], values: dict[str, str], flags: dict[str, str],
           stop_at_positional: bool) -> tuple[dict[str, object], list[str]]:
    """Options (``--x v``, ``--x=v``, flags) until the first positional (global options)
    or all of them (a command's); unknown options fall back."""
    opts: dict[str, object] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i + 1:])
            break
        if not arg.startswith("-") or arg == "-":
            if stop_at_positional:
                return opts, argv[i:]
            rest.append(arg)
            i += 1
            continue
        name, eq, value = arg.partition("=")
        if name in values:
            if not eq:
                if i + 1 >= len(argv):
                    raise _Fallback
                value = argv[i + 1]
                i += 1
            opts[values[name]] = value
        elif name in flags and not eq:
            opts[flags[name]] = True
        else:
            raise _Fallback
        i += 1
    return opts, rest


def _one_id(rest: list[str]) -> str:
    if len(rest) != 1:
        raise _Fallback
    return rest[0]


def _state(root: str, argv: list[str]) -> int:
    from pyoci import jsonio
    from pyoci.operations.query import state

    _, rest = _split(argv, {}, {}, False)
    sys.stdout.write(jsonio.dumps(state(root, _one_id(rest)), indent=2) + "\n")
    return 0


def _start(root: str, argv: list[str]) -> int:
    from pyoci.operations.start import start

    _, rest = _split(argv, {}, {}, False)
    start(root, _one_id(rest))
    return 0


def _kill(root: str, argv: list[str]) -> int:
    from pyoci.operations.kill import kill

    opts, rest = _split(argv, {}, {"--all": "all", "-a": "all"}, False)
    if len(rest) not in (1, 2):
        raise _Fallback
    kill(root, rest[0], rest[1] if len(rest) == 2 else "SIGTERM", bool(opts.get("all")))
    return 0


def _delete(root: str, argv: list[str]) -> int:
    from pyoci.operations.delete import delete

    opts, rest = _split(argv, {}, {"--force": "force", "-f": "force"}, False)
    if not rest:
        raise _Fallback
    for cid in rest:
        delete(root, cid, bool(opts.get("force")))
    return 0


def _pause(root: str, argv: list[str]) -> int:
    from pyoci.operations.pause import pause

    _, rest = _split(argv, {}, {}, False)
    pause(root, _one_id(rest))
    return 0


def _resume(root: str, argv: list[str]) -> int:
    from pyoci.operations.pause import resume

    _, rest = _split(argv, {}, {}, False)
    resume(root, _one_id(rest))
    return 0


def _ps(root: str, argv: list[str]) -> int:
    from pyoci.operations.ps import ps

    # Like runc (and the full CLI): what follows the id belongs to ps(1).
    opts, rest = _split(argv, {"--format": "format", "-f": "format"}, {}, True)
    if opts.get("format") != "json":
        raise _Fallback  # the table form may carry ps(1) options: typer parses those
    sys.stdout.write(ps(root, _one_id(rest), "json", []))
    return 0


def _list(root: str, argv: list[str]) -> int:
    """`list` (crictl and `podman ps` callers, people): typer's ~50 ms were 12x runc's
    whole `list` (issue 16). Another format or an argument goes to typer (its errors)."""
    from pyoci.operations.query import list_table

    opts, rest = _split(argv, {"--format": "format", "-f": "format"},
                        {"--quiet": "quiet", "-q": "quiet"}, False)
    fmt = str(opts.get("format", "table"))
    if rest or fmt not in ("table", "json"):
        raise _Fallback
    sys.stdout.write(list_table(root, bool(opts.get("quiet")), fmt))
    return 0


def _version() -> int:
    """runc's three lines, as cli._version prints them (engines and people ask often)."""
    from pyoci import OCI_VERSION, __version__

    try:
        from pyoci.libseccomp import version_string

        seccomp = version_string()
    except PyociError:
        seccomp = "not installed"
    sys.stdout.write(f"pyoci version {__version__}\nspec: {OCI_VERSION}\n"
                     f"libseccomp: {seccomp}\n")
    return 0


_CREATE_VALUES = {"--bundle": "bundle", "-b": "bundle", "--pid-file": "pid_file",
                  "--console-socket": "console_socket", "--preserve-fds": "preserve_fds"}
_CREATE_FLAGS = {"--no-pivot": "no_pivot", "--no-new-keyring": "no_new_keyring"}


def _create_options(opts: dict[str, object], systemd: bool):  # noqa: ANN202
    from pyoci.operations.create import CreateOptions

    try:
        preserve = int(str(opts.get("preserve_fds", 0)))
    except ValueError:
        raise _Fallback from None
    if preserve < 0:
        raise _Fallback
    return CreateOptions(bundle=str(opts.get("bundle", ".")),
                         pid_file=opts.get("pid_file"),  # type: ignore[arg-type]
                         console_socket=opts.get("console_socket"),  # type: ignore[arg-type]
                         no_pivot=bool(opts.get("no_pivot")),
                         no_new_keyring=bool(opts.get("no_new_keyring")),
                         preserve_fds=preserve, systemd_cgroup=systemd)


def _prime_cgroup_move() -> None:
    """Start the kernel's wait for a cgroup move now, in the background (see
    pyoci/cgroups/prime.py): create, run and exec move a process into a cgroup later."""
    from pyoci.cgroups import prime

    prime.start()


def _create(root: str, argv: list[str], systemd: bool) -> int:
    opts, rest = _split(argv, _CREATE_VALUES, _CREATE_FLAGS, False)
    cid = _one_id(rest)
    _prime_cgroup_move()
    from pyoci.operations.create import create

    create(root, cid, _create_options(opts, systemd))
    return 0


def _run(root: str, argv: list[str], systemd: bool) -> int:
    opts, rest = _split(argv, _CREATE_VALUES,
                        _CREATE_FLAGS | {"--detach": "detach", "-d": "detach",
                                         "--keep": "keep", "--no-subreaper": "no_subreaper"},
                        False)
    cid = _one_id(rest)
    _prime_cgroup_move()
    from pyoci.operations.run import run

    return run(root, cid, _create_options(opts, systemd), bool(opts.get("detach")),
               keep=bool(opts.get("keep")), no_subreaper=bool(opts.get("no_subreaper")))


_EXEC_VALUES = {"--process": "process_file", "-p": "process_file", "--pid-file": "pid_file",
                "--console-socket": "console_socket", "--cwd": "cwd", "--user": "user",
                "-u": "user", "--preserve-fds": "preserve_fds", "--apparmor": "apparmor",
                "--process-label": "process_label"}
_EXEC_FLAGS = {"--detach": "detach", "-d": "detach", "--tty": "tty", "-t": "tty",
               "--no-new-privs": "no_new_privs", "--ignore-paused": "ignore_paused"}


def _exec(root: str, argv: list[str]) -> int:
    """exec in the shapes podman and containerd use (--process FILE --detach --pid-file,
    --tty --console-socket); repeatable flags (--env, --cap, ...) go to the full CLI."""
    opts, rest = _split(argv, _EXEC_VALUES, _EXEC_FLAGS, True)
    if not rest:
        raise _Fallback
    try:
        preserve = int(str(opts.pop("preserve_fds", 0)))
    except ValueError:
        raise _Fallback from None
    if preserve < 0:
        raise _Fallback
    _prime_cgroup_move()
    from pyoci.operations.exec import ExecOptions, exec_process

    return exec_process(root, rest[0], ExecOptions(args=rest[1:], preserve_fds=preserve,
                                                   **opts))  # type: ignore[arg-type]


_COMMANDS: dict[str, Callable[[str, list[str]], int]] = {
    "exec": _exec,
    "state": _state, "start": _start, "kill": _kill, "delete": _delete, "pause": _pause,
    "resume": _resume, "ps": _ps, "list": _list,
}


def try_run(argv: list[str]) -> int | None:
    """Run ``argv`` if it is a hot-path call; None when typer must handle it."""
    from pyoci import log

    try:
        if argv[-1:] in (["--version"], ["-v"]) and not _split(
                argv[:-1], _GLOBAL_VALUES, _GLOBAL_FLAGS, True)[1]:
            return _version()  # after global options only, as typer's eager option
        gopts, rest = _split(argv, _GLOBAL_VALUES, _GLOBAL_FLAGS, True)
        if not rest:
            return None
        command, args = rest[0], rest[1:]
        if any(a in ("-h", "--help") for a in args):
            return None
        fmt = str(gopts.get("log_format", "text"))
        if fmt not in ("text", "json"):
            return None
        from pyoci import rootless

        rootless.set_mode(gopts.get("rootless"))  # type: ignore[arg-type]
        root = str(gopts.get("root") or rootless.default_root())
        systemd = bool(gopts.get("systemd_cgroup"))
        log.configure(gopts.get("log") or None, fmt,  # type: ignore[arg-type]
                      bool(gopts.get("debug")))
        if command == "create":
            return _create(root, args, systemd)
        if command == "run":
            return _run(root, args, systemd)
        handler = _COMMANDS.get(command)
        if handler is None:
            return None
        return handler(root, args)
    except _Fallback:
        return None
    except (PyociError, KeyboardInterrupt, OSError) as exc:
        return log.fail(exc)
