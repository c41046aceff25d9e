"""The command line: the command table and its one parser.

**The table** (the first half of this module): every command, argument and option of
pyoci's command line, once -- runc's commands with runc's spellings (urfave/cli: long
names, one-letter aliases, values, repeatable flags) and the handler each one calls.
Everything else is derived from it: the parser below, which runs every command, hot or
not; ``--help``, ``help [COMMAND]``, the usage errors and ``pyoci completion bash``
(:mod:`pyoci.clihelp`, imported only to print help). Before, the hot commands were parsed
twice -- by a hand parser and by typer, with flag tables kept in step by hand (issue 14)
-- and typer's import alone cost ~40 ms, more than a whole `state` (issue 5). The table is
plain classes with ``__slots__``; the handlers import their operation when called, so a
`state` never loads what `create` needs.

**The parser** (the second half): ``--name value``, ``--name=value``, ``-n value``,
``-nvalue``, one-letter flags grouped (``-ad``), ``--`` ending the options; global
options before the command.

Errors are raised as PyociError anywhere below and caught once, here: one line on stderr,
the same message in --log (JSON lines with level/msg/time under --log-format json), exit 1.
Usage errors also exit 1, as runc's do, in one line naming the command and what is wrong.
This module imports nothing but pyoci.log and pyoci.errors: the hot path must not pay for
typer/click (~40 ms), re, json or typing (tests/unit/test_hot_path.py). Table and parser
are one module because every call needs both and each module costs ~0.1 ms to import on
this machine kind (issue 16).
"""

from __future__ import annotations

import os
import sys

from pyoci import log
from pyoci.errors import PyociError

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Values = dict[str, Any]
    Handler = Callable[["Globals", Values], "int | None"]


class Opt:
    """One option; its first name is the long one. ``kind``: "flag" (no value), "str" or
    "int" (one value; ``min`` bounds an int, ``choices`` a str). ``multiple``: repeatable,
    the values in order (a list). ``dest``: the key in the parsed values (by default the
    long name: ``--pid-file`` -> ``pid_file``)."""

    __slots__ = ("names", "dest", "kind", "default", "help", "choices", "min", "multiple",
                 "hidden")

    def __init__(self, *names: str, kind: str = "flag", help: str = "",  # noqa: A002
                 default: object = None, dest: str | None = None,
                 choices: tuple[str, ...] | None = None, min: int | None = None,  # noqa: A002
                 multiple: bool = False, hidden: bool = False) -> None:
        self.names = names
        self.dest = dest or names[0][2:].replace("-", "_")
        self.kind = kind
        self.help = help
        self.default = None if multiple else False if kind == "flag" else default
        self.choices = choices
        self.min = min
        self.multiple = multiple
        self.hidden = hidden


class Arg:
    """One positional. ``variadic``: takes every remaining positional (a list)."""

    __slots__ = ("name", "dest", "required", "variadic", "default", "help", "choices")

    def __init__(self, name: str, help: str = "", required: bool = True,  # noqa: A002
                 variadic: bool = False, default: object = None,
                 choices: tuple[str, ...] | None = None) -> None:
        self.name = name
        self.dest = name.lower()
        self.required = required
        self.variadic = variadic
        self.default = default
        self.help = help
        self.choices = choices


class Command:
    """One command. ``interspersed=False``: options only before the first positional, the
    rest are arguments (exec's command line, ps's ps(1) options: runc's SkipFlagParsing
    after the id). ``raw``: every argument is accepted unparsed (checkpoint/restore, which
    only explain they are not implemented). ``teardown``: leave through a normal
    interpreter exit rather than os._exit (pyoci.cli.main); set for the commands that
    load libraries (jsonschema, pyroute2, ...) whose finalizers were never audited."""

    __slots__ = ("name", "help", "args", "opts", "handler", "interspersed", "raw", "aliases",
                 "hidden", "teardown")

    def __init__(self, name: str, help: str, handler: Handler,  # noqa: A002
                 args: tuple[Arg, ...] = (), opts: tuple[Opt, ...] = (),
                 interspersed: bool = True, raw: bool = False,
                 aliases: tuple[str, ...] = (), hidden: bool = False,
                 teardown: bool = False) -> None:
        self.name = name
        self.help = help
        self.handler = handler
        self.args = args
        self.opts = opts
        self.interspersed = interspersed
        self.raw = raw
        self.aliases = aliases
        self.hidden = hidden
        self.teardown = teardown

    @property
    def summary(self) -> str:
        return self.help.split("\n", 1)[0]


class Globals:
    """The global options a handler needs, once parsed."""

    __slots__ = ("root", "systemd_cgroup")

    def __init__(self, root: str, systemd_cgroup: bool) -> None:
        self.root = root
        self.systemd_cgroup = systemd_cgroup


def _out(text: str) -> None:
    sys.stdout.write(text)


# --- handlers: parsed values -> operation ---------------------------------------------------

def version_text() -> str:
    """runc's three lines: version, runtime-spec version, libseccomp version."""
    from pyoci import OCI_VERSION, __version__

    try:
        from pyoci.libseccomp import version_string

        seccomp = version_string()
    except PyociError:
        seccomp = "not installed"
    return f"pyoci version {__version__}\nspec: {OCI_VERSION}\nlibseccomp: {seccomp}\n"


def _create_options(g: Globals, v: Values):  # noqa: ANN202 - CreateOptions, lazily imported
    from pyoci.operations.create import CreateOptions

    return CreateOptions(bundle=v["bundle"], pid_file=v["pid_file"],
                         console_socket=v["console_socket"], no_pivot=v["no_pivot"],
                         no_new_keyring=v["no_new_keyring"], preserve_fds=v["preserve_fds"],
                         systemd_cgroup=g.systemd_cgroup)


def _create(g: Globals, v: Values) -> None:
    from pyoci.operations.create import create

    create(g.root, v["container_id"], _create_options(g, v))


def _run(g: Globals, v: Values) -> int:
    from pyoci.operations.run import run

    return run(g.root, v["container_id"], _create_options(g, v), v["detach"],
               keep=v["keep"], no_subreaper=v["no_subreaper"])


def _start(g: Globals, v: Values) -> None:
    from pyoci.operations.start import start

    start(g.root, v["container_id"])


def _state(g: Globals, v: Values) -> None:
    from pyoci import jsonio
    from pyoci.operations.query import state

    _out(jsonio.dumps(state(g.root, v["container_id"]), indent=2) + "\n")


def _kill(g: Globals, v: Values) -> None:
    from pyoci.operations.kill import kill

    kill(g.root, v["container_id"], v["signal"], v["all"])


def _delete(g: Globals, v: Values) -> None:
    from pyoci.operations.delete import delete

    for cid in v["container_id"]:
        delete(g.root, cid, v["force"])


def _exec(g: Globals, v: Values) -> int:
    from pyoci.operations.exec import ExecOptions, exec_process

    return exec_process(g.root, v["container_id"], ExecOptions(
        args=v["command"], process_file=v["process_file"], tty=v["tty"],
        console_socket=v["console_socket"], detach=v["detach"], pid_file=v["pid_file"],
        cwd=v["cwd"], env=v["env"], user=v["user"], additional_gids=v["additional_gids"],
        caps=v["cap"], no_new_privs=v["no_new_privs"], apparmor=v["apparmor"],
        process_label=v["process_label"], preserve_fds=v["preserve_fds"],
        cgroup=v["cgroup"], ignore_paused=v["ignore_paused"]))


def _pause(g: Globals, v: Values) -> None:
    from pyoci.operations.pause import pause

    pause(g.root, v["container_id"])


def _resume(g: Globals, v: Values) -> None:
    from pyoci.operations.pause import resume

    resume(g.root, v["container_id"])


def _ps(g: Globals, v: Values) -> None:
    from pyoci.operations.ps import ps

    _out(ps(g.root, v["container_id"], v["format"], v["ps_args"]))


def _list(g: Globals, v: Values) -> None:
    from pyoci.operations.query import list_table

    _out(list_table(g.root, v["quiet"], v["format"]))


def _inspect(g: Globals, v: Values) -> None:
    from pyoci import jsonio
    from pyoci.inspect import inspect_container, inspect_pid, render_table

    cid, pid = v["container_id"], v["pid"]
    if (cid is None) == (pid is None):
        raise PyociError("inspect: give a container id or --pid PID (one of them)")
    report = (inspect_pid(pid, all_processes=v["all"], compare_host=v["compare_host"])
              if pid is not None else
              inspect_container(g.root, cid, all_processes=v["all"],
                                compare_host=v["compare_host"]))
    _out(jsonio.dumps(report, indent=1) + "\n" if v["format"] == "json"
         else render_table(report))


def _events(g: Globals, v: Values) -> None:
    from pyoci.operations.events import events

    events(g.root, v["container_id"], v["stats"], v["interval"])


def _update(g: Globals, v: Values) -> None:
    """The resource flags given, in the table's order, keyed as operations/update.FLAGS."""
    from pyoci.operations.update import update

    flags = {o.dest: v[o.dest] for o in UPDATE_FLAGS if v[o.dest] is not None}
    update(g.root, v["container_id"], v["resources"], flags)


def _spec(g: Globals, v: Values) -> None:
    from pyoci.operations.spec import write_spec

    write_spec(v["bundle"], v["rootless"])


def _features(g: Globals, v: Values) -> None:
    from pyoci.operations.features import features_json

    _out(features_json() + "\n")


def _validate(g: Globals, v: Values) -> None:
    """Errors exit 1; what create would only warn about is listed (exit 0)."""
    import os

    from pyoci.config.bundle import read_bundle
    from pyoci.config.check import check

    bundle = v["bundle"]
    checked = check(read_bundle(bundle), os.path.abspath(bundle))
    checked.release()
    for line in checked.warnings:
        _out(f"{bundle}: warning: {line}\n")
    _out(f"{bundle}: config.json is valid\n")


_CRIU_TEXT = ("pyoci does not implement checkpoint/restore: it has no CRIU support "
              "(docs/status.md). Use runc with CRIU for it")


def _checkpoint(g: Globals, v: Values) -> None:
    raise PyociError(f"checkpoint: {_CRIU_TEXT}")


def _restore(g: Globals, v: Values) -> None:
    raise PyociError(f"restore: {_CRIU_TEXT}")


def _help(g: Globals, v: Values) -> None:
    from pyoci.clihelp import command_help, main_help

    topic = v["command"]
    if topic is None:
        _out(main_help())
        return
    cmd = find(topic)
    if cmd is None:
        raise PyociError(f"No help topic for '{topic}'")  # runc's words
    _out(command_help(cmd))


def _completion(g: Globals, v: Values) -> None:
    from pyoci.clihelp import bash_completion

    _out(bash_completion())


# --- the table ----------------------------------------------------------------------------

_ID = Arg("CONTAINER_ID", "container id")
_BUNDLE = Opt("--bundle", "-b", kind="str", default=".", help="path to the bundle directory")
_PID_FILE = Opt("--pid-file", kind="str", help="write the process's pid here")
_CONSOLE = Opt("--console-socket", kind="str", help="unix socket to send the pty master to")
_PRESERVE = Opt("--preserve-fds", kind="int", default=0, min=0,
                help="pass N extra fds (from fd 3) to the process")
_CREATE_OPTS = (
    _BUNDLE, _PID_FILE, _CONSOLE,
    Opt("--no-pivot", help="use MS_MOVE+chroot, not pivot_root"),
    Opt("--no-new-keyring", help="keep the caller's session keyring"),
    _PRESERVE,
)
_FORMAT = Opt("--format", "-f", kind="str", default="table", choices=("table", "json"),
              help="table or json")


def _res(name: str, text: str) -> Opt:
    return Opt(name, kind="str", help=text)


#: update's resource flags: their dests are operations/update.FLAGS's keys.
UPDATE_FLAGS = (
    _res("--blkio-weight", "block IO weight"), _res("--cpu-period", "CFS period (µs)"),
    _res("--cpu-quota", "CFS quota (µs)"), _res("--cpu-burst", "CFS burst (µs)"),
    _res("--cpu-share", "CPU shares"), _res("--cpu-rt-period", "realtime period"),
    _res("--cpu-rt-runtime", "realtime runtime"),
    _res("--cpu-idle", "SCHED_IDLE for the cgroup"),
    _res("--cpuset-cpus", "CPUs, e.g. 0-1"), _res("--cpuset-mems", "memory nodes"),
    _res("--memory", "memory limit, e.g. 64m"), _res("--memory-reservation", "soft limit"),
    _res("--memory-swap", "memory+swap limit"), _res("--kernel-memory", "deprecated"),
    _res("--kernel-memory-tcp", "deprecated"), _res("--pids-limit", "max processes"),
)

#: Before the command, as runc's global flags.
GLOBAL_OPTS = (
    Opt("--root", kind="str", help="state directory (default /run/pyoci; "
        "$XDG_RUNTIME_DIR/pyoci when not root)"),
    Opt("--log", kind="str", help="log file"),
    Opt("--log-format", kind="str", default="text", choices=("text", "json"),
        help="text or json"),
    Opt("--debug", help="debug logging"),
    Opt("--criu", kind="str", default="criu", help="path to the criu binary for "
        "checkpoint/restore (accepted as runc's; pyoci implements neither)"),
    Opt("--systemd-cgroup", hidden=True),
    Opt("--rootless", kind="str", hidden=True),
    Opt("--version", "-v", help="print the version"),
)

COMMANDS = (
    Command("create", "Create a container (its process waits for `start`).", _create,
            (_ID,), _CREATE_OPTS),
    Command("start", "Start the process of a created container.", _start, (_ID,)),
    Command("state", "Print the state of a container as JSON.", _state, (_ID,)),
    Command("kill", "Send a signal to the container's init (default SIGTERM).", _kill,
            (_ID, Arg("SIGNAL", "signal name or number", required=False, default="SIGTERM")),
            (Opt("--all", "-a", help="signal every process of the container"),)),
    Command("delete", "Delete a stopped container (with --force, any container).", _delete,
            (Arg("CONTAINER_ID", "container id(s)", variadic=True),),
            (Opt("--force", "-f", help="kill the container first"),)),
    Command("run", "Create and start a container, wait for it and delete it.", _run,
            (_ID,), (*_CREATE_OPTS,
                     Opt("--detach", "-d", help="do not wait for the process"),
                     Opt("--keep", help="do not delete the container after it exits"),
                     Opt("--no-subreaper", help="do not reap the container's orphans (pyoci "
                         "is a subreaper only until its init is its child)"))),
    Command("exec", "Run a process in a running container.", _exec,
            (_ID, Arg("COMMAND", "command and arguments", required=False, variadic=True)),
            (Opt("--process", "-p", kind="str", dest="process_file",
                 help="process.json to run"),
             Opt("--tty", "-t", help="allocate a pseudo-TTY"),
             _CONSOLE,
             Opt("--detach", "-d", help="do not wait"),
             _PID_FILE,
             Opt("--cwd", kind="str", help="working directory"),
             Opt("--env", "-e", kind="str", multiple=True, help="KEY=VALUE"),
             Opt("--user", "-u", kind="str", help="uid[:gid]"),
             Opt("--additional-gids", "-g", kind="int", multiple=True,
                 help="extra group id"),
             Opt("--cap", "-c", kind="str", multiple=True, help="add a capability"),
             Opt("--no-new-privs", help="set no_new_privs"),
             Opt("--apparmor", kind="str", help="AppArmor profile"),
             Opt("--process-label", kind="str", help="SELinux label"),
             _PRESERVE,
             Opt("--cgroup", kind="str", multiple=True,
                 help="run the process in an existing sub-cgroup: [CONTROLLER:]PATH"),
             Opt("--ignore-paused", help="allow exec in a paused container")),
            interspersed=False),
    Command("pause", "Freeze every process of the container (its cgroup).", _pause, (_ID,)),
    Command("resume", "Thaw a paused container.", _resume, (_ID,)),
    Command("ps", "List the processes of a container (json: their host pids).", _ps,
            (_ID, Arg("PS_ARGS", "options for ps(1)", required=False, variadic=True)),
            (_FORMAT,), interspersed=False),
    Command("inspect", "Show a live process's isolation, read from /proc and cgroupfs "
            "(docs/inspect.md).", _inspect,
            (Arg("CONTAINER_ID", "container id", required=False),),
            (Opt("--pid", kind="int", help="any process instead of an id (runc's, an "
                 "engine's)"),
             Opt("--all", "-a", help="every process of the container"),
             Opt("--compare-host", help="the host's values and isolated/shared"),
             _FORMAT), teardown=True),
    Command("events", "Print resource usage and OOM events of a container as JSON lines.",
            _events, (_ID,),
            (Opt("--stats", help="print one stats document"),
             Opt("--interval", kind="str", default="5s", help="time between stats")),
            teardown=True),
    Command("update", "Change the cgroup limits of a container.", _update, (_ID,),
            (Opt("--resources", "-r", kind="str",
                 help="LinuxResources JSON file, or - for stdin"), *UPDATE_FLAGS),
            teardown=True),
    Command("list", "List containers.", _list, (),
            (Opt("--quiet", "-q", help="ids only"), _FORMAT)),
    Command("spec", "Write a starter config.json into the bundle.", _spec, (),
            (_BUNDLE, Opt("--rootless", help="a config for an unprivileged user"))),
    Command("features", "Print what this runtime supports on this host (runtime-spec "
            "features.md).", _features),
    Command("checkpoint", "Checkpoint a running container (runc's, through CRIU): not "
            "implemented.", _checkpoint, raw=True),
    Command("restore", "Restore a container from a checkpoint (runc's, through CRIU): not "
            "implemented.", _restore, raw=True),
    Command("validate", "Check a bundle's config.json against the runtime-spec without "
            "creating anything.\nErrors exit 1; what create would only warn about is listed "
            "as warnings (exit 0).\nThe verdict is create's: both run config/check.py on this "
            "host.", _validate, (), (_BUNDLE,), teardown=True),
    Command("help", "Show the commands, or the help of one command (as runc's `help "
            "[COMMAND]`).", _help, (Arg("COMMAND", "a command", required=False),),
            aliases=("h",)),
    Command("completion", "Print a shell completion script (bash): "
            "`source <(pyoci completion bash)`.", _completion,
            (Arg("SHELL", "the shell", choices=("bash",)),)),
)


def find(name: str) -> Command | None:
    """The command called ``name`` (or one of its aliases)."""
    for cmd in COMMANDS:
        if cmd.name == name or name in cmd.aliases:
            return cmd
    return None


# --- the parser ----------------------------------------------------------------------

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
    """(exit status, whether the process may leave with os._exit: see :func:`main`)."""
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
        root = gvalues["root"]
        if gvalues["rootless"] is not None or not root:
            # Engines always pass --root and rarely --rootless: the rootless module (and
            # its import, ~0.15 ms on every hot call) only when asked for or needed.
            from pyoci import rootless

            rootless.set_mode(gvalues["rootless"])
            root = root or rootless.default_root()
        g = Globals(root, gvalues["systemd_cgroup"])
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


def main() -> None:
    """Run the command line; after a fast-path command, leave with ``os._exit``.

    Tearing the interpreter down (module dicts, GC, atexit) costs 2-3 ms on this machine
    kind -- most of runc's whole `kill` -- and a command that is done has nothing left to
    clean up: its files are closed, its log lines written with os.write, and any
    background thread (pyoci/cgroups/prime.py) finished or harmless. Only stdout and
    stderr are buffered; they are flushed first, and a failed flush (a reader that went
    away) makes the exit status 1. The commands the table marks ``teardown`` (they load
    libraries whose finalizers were never audited) exit normally.
    """
    try:
        code, fast = run_argv(sys.argv[1:])
    except (Exception, RecursionError, MemoryError) as exc:  # noqa: BLE001 - last resort
        code, fast = _internal_error(exc), False
    if not fast:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 1
    os._exit(code)


def _internal_error(exc: BaseException) -> int:
    """Every error a user can cause is a PyociError with its own message, caught in the
    CLI; what reaches here is a pyoci bug. Say so in one line (the guide: never a
    traceback) and keep the traceback for whoever asks for it (PYOCI_TRACEBACK=1)."""
    if os.environ.get("PYOCI_TRACEBACK") == "1":
        import traceback

        traceback.print_exception(exc)
    try:
        from pyoci import log

        log.error(f"internal error: {type(exc).__name__}: {exc} (a pyoci bug; "
                  "PYOCI_TRACEBACK=1 shows where)")
    except Exception:  # noqa: BLE001 - the log itself failed: stderr is all we have
        sys.stderr.write(f"pyoci: internal error: {type(exc).__name__}: {exc}\n")
    return 1


def run_argv(argv: list[str]) -> tuple[int, bool]:
    """(exit status, whether the process may leave with os._exit): :func:`run`, the name
    tests and the entry point use."""
    return run(argv)


def run_cli(argv: list[str]) -> int:
    """Run one command line; its exit status."""
    return run(argv)[0]


__all__ = ["COMMANDS", "UsageError", "main", "parse_options", "run", "run_argv", "run_cli"]
