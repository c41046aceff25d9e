"""The command line: one parser over the command table (:mod:`pyoci.commands`).

Every command -- the hot ones engines call per container (state, kill, start, delete,
create, exec, ...) and the rest -- is parsed here, with runc's spellings: ``--name value``,
``--name=value``, ``-n value``, ``-nvalue``, one-letter flags grouped (``-ad``), ``--``
ending the options. Global options come before the command. ``-h``/``--help``, ``help
[COMMAND]`` and the usage errors are rendered from the same table (:mod:`pyoci.clihelp`,
imported only to print help).

Errors are raised as PyociError anywhere below and caught once, here: one line on stderr,
the same message in --log (JSON lines with level/msg/time under --log-format json), exit 1.
Usage errors also exit 1, as runc's do, in one line naming the command and what is wrong.
This module imports nothing but pyoci.commands and pyoci.log: the hot path must not pay
for typer/click (~40 ms), re, json or typing (tests/unit/test_hot_path.py).
"""

from __future__ import annotations

import sys

from pyoci import log
from pyoci.commands import COMMANDS, GLOBAL_OPTS, Globals, find, version_text
from pyoci.errors import PyociError

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any

    from pyoci.commands import Arg, Command, Opt


class UsageError(PyociError):
    """A command line that does not fit the table: exit 1, as runc's usage errors."""


class _Help(Exception):
    """-h/--help was given: print the help of ``command`` (None: the main help)."""

    def __init__(self, command: Command | None) -> None:
        super().__init__()
        self.command = command


_INDEX: dict[int, dict[str, Opt]] = {}


def _index(opts: tuple[Opt, ...]) -> dict[str, Opt]:
    """Every spelling of every option of a table row, built once per row."""
    found = _INDEX.get(id(opts))
    if found is None:
        found = _INDEX[id(opts)] = {name: o for o in opts for name in o.names}
    return found


def _store(o: Opt, name: str, text: str, values: dict[str, Any]) -> None:
    value: object = text
    if o.kind == "int":
        try:
            value = int(text)
        except ValueError:
            raise UsageError(f"invalid value for {name}: {text!r} is not an integer") from None
        if o.min is not None and value < o.min:
            raise UsageError(f"invalid value for {name}: {text} is below {o.min}")
    elif o.choices is not None and text not in o.choices:
        raise UsageError(f"invalid value for {name}: {text!r} is not one of "
                         + ", ".join(o.choices))
    if o.multiple:
        values[o.dest].append(value)
    else:
        values[o.dest] = value


def parse_options(opts: tuple[Opt, ...], argv: list[str], interspersed: bool,
                  help_of: Command | None) -> tuple[dict[str, Any], list[str]]:
    """(option values by dest, positionals). ``interspersed=False`` stops at the first
    positional: it and everything after are positionals. -h/--help raises _Help."""
    index = _index(opts)
    values: dict[str, Any] = {o.dest: [] if o.multiple else o.default for o in opts}
    positionals: list[str] = []
    i, n = 0, len(argv)
    while i < n:
        arg = argv[i]
        i += 1
        if arg == "--":
            positionals.extend(argv[i:])
            break
        if arg[:1] != "-" or arg == "-":
            positionals.append(arg)
            if not interspersed:
                positionals.extend(argv[i:])
                break
            continue
        if arg in ("-h", "--help"):
            raise _Help(help_of)
        if arg[1] == "-":
            name, eq, text = arg.partition("=")
            o = index.get(name)
            if o is None:
                raise UsageError(f"no such option {name}")
            if o.kind == "flag":
                if eq:
                    raise UsageError(f"option {name} takes no value")
                values[o.dest] = True
                continue
            if not eq:
                if i >= n:
                    raise UsageError(f"option {name} needs a value")
                text = argv[i]
                i += 1
            _store(o, name, text, values)
            continue
        j = 1  # one-letter options: -a, -ad (flags grouped), -b X, -bX
        while j < len(arg):
            name = "-" + arg[j]
            j += 1
            o = index.get(name)
            if o is None:
                raise UsageError(f"no such option {name}")
            if o.kind == "flag":
                values[o.dest] = True
                continue
            if j < len(arg):
                text = arg[j:]
            elif i < n:
                text = argv[i]
                i += 1
            else:
                raise UsageError(f"option {name} needs a value")
            _store(o, name, text, values)
            break
    return values, positionals


def _bind(specs: tuple[Arg, ...], positionals: list[str], values: dict[str, Any]) -> None:
    """Positionals onto the command's arguments, in order."""
    rest = list(positionals)
    for spec in specs:
        if spec.variadic:
            if spec.required and not rest:
                raise UsageError(f"missing argument {spec.name}")
            values[spec.dest], rest = rest, []
        elif rest:
            value = rest.pop(0)
            if spec.choices is not None and value not in spec.choices:
                raise UsageError(f"invalid value for {spec.name}: {value!r} is not one of "
                                 + ", ".join(spec.choices))
            values[spec.dest] = value
        elif spec.required:
            raise UsageError(f"missing argument {spec.name}")
        else:
            values[spec.dest] = spec.default
    if rest:
        raise UsageError(f"unexpected extra argument{'s' if len(rest) > 1 else ''} "
                         + " ".join(repr(a) for a in rest))


def _usage_hint(cmd: Command | None) -> str:
    return (f" (pyoci {cmd.name} --help shows its usage)" if cmd is not None
            else " (pyoci --help shows the usage)")


def run(argv: list[str]) -> tuple[int, bool]:
    """(exit status, whether the process may leave with os._exit: see pyoci/__main__.py)."""
    cmd: Command | None = None
    try:
        gvalues, rest = parse_options(GLOBAL_OPTS, argv, False, None)
        if gvalues["version"]:
            sys.stdout.write(version_text())  # eager, as runc's --version
            return 0, True
        if not rest:
            raise UsageError("missing command")
        cmd = find(rest[0])
        if cmd is None:
            raise UsageError(f"no such command '{rest[0]}'")
        from pyoci import rootless

        rootless.set_mode(gvalues["rootless"])
        g = Globals(gvalues["root"] or rootless.default_root(), gvalues["systemd_cgroup"])
        log.configure(gvalues["log"] or None, gvalues["log_format"], gvalues["debug"])
        if cmd.raw:
            values: dict[str, Any] = {"args": rest[1:]}
        else:
            values, positionals = parse_options(cmd.opts, rest[1:], cmd.interspersed, cmd)
            _bind(cmd.args, positionals, values)
        code = cmd.handler(g, values)
        return (code if isinstance(code, int) else 0), not cmd.teardown
    except _Help as asked:
        from pyoci.clihelp import command_help, main_help

        sys.stdout.write(main_help() if asked.command is None else command_help(asked.command))
        return 0, True
    except UsageError as exc:
        where = f"{cmd.name}: " if cmd is not None else ""
        log.error(f"{where}{exc}{_usage_hint(cmd)}")
        return 1, True
    except (PyociError, KeyboardInterrupt, OSError) as exc:
        return log.fail(exc), cmd is None or not cmd.teardown


def run_cli(argv: list[str]) -> int:
    """Run one command line; its exit status."""
    return run(argv)[0]


__all__ = ["COMMANDS", "UsageError", "parse_options", "run", "run_cli"]
