"""The command line, with runc's commands, flags and exit codes.

Errors are raised as PyociError anywhere below and caught once, here: one line on stderr,
the same message in --log (JSON lines with level/msg/time under --log-format json), exit 1.
Usage errors also exit 1, as runc's do. Operations are imported inside each command so a
`state` or `kill` never pays for what `create` needs.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import click
import typer

from pyoci import OCI_VERSION, __version__, log
from pyoci.errors import PyociError
from pyoci.state import DEFAULT_ROOT

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="pyoci: an OCI runtime (runc-compatible).",
                  context_settings={"help_option_names": ["-h", "--help"]})


class Globals:
    root: str = DEFAULT_ROOT
    systemd_cgroup: bool = False


G = Globals()

ID = Annotated[str, typer.Argument(help="container id", show_default=False)]
BUNDLE = Annotated[str, typer.Option("--bundle", "-b", help="path to the bundle directory")]
PID_FILE = Annotated[str | None, typer.Option("--pid-file", help="write the init's pid here")]
CONSOLE = Annotated[str | None, typer.Option("--console-socket",
                                             help="unix socket to send the pty master to")]
NO_PIVOT = Annotated[bool, typer.Option("--no-pivot", help="use MS_MOVE+chroot, not pivot_root")]
NO_KEYRING = Annotated[bool, typer.Option("--no-new-keyring",
                                          help="keep the caller's session keyring")]
PRESERVE = Annotated[int, typer.Option("--preserve-fds", min=0,
                                       help="pass N extra fds (from fd 3) to the process")]


def _version(value: bool) -> None:
    """runc's three lines: version, runtime-spec version, libseccomp version."""
    if value:
        from pyoci.libseccomp import version_string

        try:
            seccomp = version_string()
        except PyociError:
            seccomp = "not installed"
        typer.echo(f"pyoci version {__version__}\nspec: {OCI_VERSION}\nlibseccomp: {seccomp}")
        raise typer.Exit()


@app.callback()
def main(
    root: Annotated[str | None, typer.Option(
        "--root", help="state directory (default /run/pyoci; $XDG_RUNTIME_DIR/pyoci when "
                       "not root)")] = None,
    log_path: Annotated[str | None, typer.Option("--log", help="log file")] = None,
    log_format: Annotated[str, typer.Option("--log-format", help="text or json",
                                            click_type=click.Choice(["text", "json"]))] = "text",
    debug: Annotated[bool, typer.Option("--debug", help="debug logging")] = False,
    criu: Annotated[str, typer.Option("--criu", help="path to the criu binary for "
                                      "checkpoint/restore (accepted as runc's; pyoci "
                                      "implements neither)")] = "criu",
    systemd_cgroup: Annotated[bool, typer.Option("--systemd-cgroup", hidden=True)] = False,
    rootless: Annotated[str | None, typer.Option("--rootless", hidden=True)] = None,
    version: Annotated[bool, typer.Option("--version", "-v", callback=_version,
                                          is_eager=True, help="print the version")] = False,
) -> None:
    from pyoci import rootless as rootless_mode

    rootless_mode.set_mode(rootless)
    G.root = root or rootless_mode.default_root()
    G.systemd_cgroup = systemd_cgroup
    log.configure(log_path or None, log_format, debug)


def _create_options(bundle: str, pid_file: str | None, console_socket: str | None,
                    no_pivot: bool, no_new_keyring: bool, preserve_fds: int):  # noqa: ANN202
    from pyoci.operations.create import CreateOptions

    return CreateOptions(bundle=bundle, pid_file=pid_file, console_socket=console_socket,
                         no_pivot=no_pivot, no_new_keyring=no_new_keyring,
                         preserve_fds=preserve_fds, systemd_cgroup=G.systemd_cgroup)


@app.command()
def create(container_id: ID, bundle: BUNDLE = ".", pid_file: PID_FILE = None,
           console_socket: CONSOLE = None, no_pivot: NO_PIVOT = False,
           no_new_keyring: NO_KEYRING = False, preserve_fds: PRESERVE = 0) -> None:
    """Create a container (its process waits for `start`)."""
    from pyoci.operations.create import create as do_create

    do_create(G.root, container_id, _create_options(bundle, pid_file, console_socket,
                                                    no_pivot, no_new_keyring, preserve_fds))


@app.command()
def start(container_id: ID) -> None:
    """Start the process of a created container."""
    from pyoci.operations.start import start as do_start

    do_start(G.root, container_id)


@app.command()
def state(container_id: ID) -> None:
    """Print the state of a container as JSON."""
    from pyoci.operations.query import state as do_state

    sys.stdout.write(json.dumps(do_state(G.root, container_id), indent=2) + "\n")


@app.command()
def kill(container_id: ID,
         signal: Annotated[str, typer.Argument(help="signal name or number")] = "SIGTERM",
         all_: Annotated[bool, typer.Option("--all", "-a",
                                            help="signal every process of the container")]
         = False) -> None:
    """Send a signal to the container's init (default SIGTERM)."""
    from pyoci.operations.kill import kill as do_kill

    do_kill(G.root, container_id, signal, all_)


@app.command()
def delete(container_ids: Annotated[list[str], typer.Argument(help="container id(s)")],
           force: Annotated[bool, typer.Option("--force", "-f",
                                               help="kill the container first")] = False
           ) -> None:
    """Delete a stopped container (with --force, any container)."""
    from pyoci.operations.delete import delete as do_delete

    for cid in container_ids:
        do_delete(G.root, cid, force)


@app.command()
def run(container_id: ID, bundle: BUNDLE = ".", pid_file: PID_FILE = None,
        console_socket: CONSOLE = None, no_pivot: NO_PIVOT = False,
        no_new_keyring: NO_KEYRING = False, preserve_fds: PRESERVE = 0,
        detach: Annotated[bool, typer.Option("--detach", "-d",
                                             help="do not wait for the process")] = False,
        keep: Annotated[bool, typer.Option(
            "--keep", help="do not delete the container after it exits")] = False,
        no_subreaper: Annotated[bool, typer.Option(
            "--no-subreaper", help="do not reap the container's orphans (pyoci is a "
            "subreaper only until its init is its child)")] = False,
        ) -> int:
    """Create and start a container, wait for it and delete it."""
    from pyoci.operations.run import run as do_run

    return do_run(G.root, container_id, _create_options(
        bundle, pid_file, console_socket, no_pivot, no_new_keyring, preserve_fds), detach,
        keep=keep, no_subreaper=no_subreaper)


@app.command("exec", context_settings={"allow_interspersed_args": False})
def exec_(
    container_id: ID,
    command: Annotated[list[str] | None, typer.Argument(help="command and arguments")]
    = None,
    process: Annotated[str | None, typer.Option("--process", "-p",
                                                help="process.json to run")] = None,
    tty: Annotated[bool, typer.Option("--tty", "-t", help="allocate a pseudo-TTY")] = False,
    console_socket: CONSOLE = None,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="do not wait")] = False,
    pid_file: PID_FILE = None,
    cwd: Annotated[str | None, typer.Option("--cwd", help="working directory")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="uid[:gid]")] = None,
    additional_gids: Annotated[list[int] | None, typer.Option(
        "--additional-gids", "-g", help="extra group id")] = None,
    cap: Annotated[list[str] | None, typer.Option("--cap", "-c", help="add a capability")]
    = None,
    no_new_privs: Annotated[bool, typer.Option("--no-new-privs",
                                               help="set no_new_privs")] = False,
    apparmor: Annotated[str | None, typer.Option("--apparmor", help="AppArmor profile")]
    = None,
    process_label: Annotated[str | None, typer.Option("--process-label",
                                                      help="SELinux label")] = None,
    preserve_fds: PRESERVE = 0,
    cgroup: Annotated[list[str] | None, typer.Option(
        "--cgroup", help="run the process in an existing sub-cgroup: [CONTROLLER:]PATH")]
    = None,
    ignore_paused: Annotated[bool, typer.Option(
        "--ignore-paused", help="allow exec in a paused container")] = False,
) -> int:
    """Run a process in a running container."""
    from pyoci.operations.exec import ExecOptions, exec_process

    return exec_process(G.root, container_id, ExecOptions(
        args=command or [], process_file=process, tty=tty, console_socket=console_socket,
        detach=detach, pid_file=pid_file, cwd=cwd, env=env or [], user=user,
        additional_gids=additional_gids or [], caps=cap or [], no_new_privs=no_new_privs,
        apparmor=apparmor, process_label=process_label, preserve_fds=preserve_fds,
        cgroup=cgroup or [], ignore_paused=ignore_paused))


@app.command()
def pause(container_id: ID) -> None:
    """Freeze every process of the container (its cgroup)."""
    from pyoci.operations.pause import pause as do_pause

    do_pause(G.root, container_id)


@app.command()
def resume(container_id: ID) -> None:
    """Thaw a paused container."""
    from pyoci.operations.pause import resume as do_resume

    do_resume(G.root, container_id)


@app.command(context_settings={"allow_interspersed_args": False})
def ps(container_id: ID,
       ps_args: Annotated[list[str] | None, typer.Argument(help="options for ps(1)")] = None,
       fmt: Annotated[str, typer.Option("--format", "-f", help="table or json",
                                        click_type=click.Choice(["table", "json"]))]
       = "table") -> None:
    """List the processes of a container (json: their host pids)."""
    from pyoci.operations.ps import ps as do_ps

    sys.stdout.write(do_ps(G.root, container_id, fmt, ps_args or []))


@app.command("inspect")
def inspect_(
    container_id: Annotated[str | None, typer.Argument(help="container id",
                                                       show_default=False)] = None,
    pid: Annotated[int | None, typer.Option("--pid", help="any process instead of an id "
                                            "(runc's, an engine's)")] = None,
    all_: Annotated[bool, typer.Option("--all", "-a", help="every process of the container")]
    = False,
    compare_host: Annotated[bool, typer.Option("--compare-host",
                                               help="the host's values and isolated/shared")]
    = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json",
                                     click_type=click.Choice(["table", "json"]))]
    = "table",
) -> None:
    """Show a live process's isolation, read from /proc and cgroupfs (docs/inspect.md)."""
    from pyoci.inspect import inspect_container, inspect_pid, render_table

    if (container_id is None) == (pid is None):
        raise PyociError("inspect: give a container id or --pid PID (one of them)")
    report = (inspect_pid(pid, all_processes=all_, compare_host=compare_host)
              if pid is not None else
              inspect_container(G.root, container_id or "", all_processes=all_,
                                compare_host=compare_host))
    sys.stdout.write(json.dumps(report, indent=1) + "\n" if fmt == "json"
                     else render_table(report))


@app.command()
def events(container_id: ID,
           stats: Annotated[bool, typer.Option("--stats", help="print one stats document")]
           = False,
           interval: Annotated[str, typer.Option("--interval", help="time between stats")]
           = "5s") -> None:
    """Print resource usage and OOM events of a container as JSON lines."""
    from pyoci.operations.events import events as do_events

    do_events(G.root, container_id, stats, interval)


def _opt(flag: str, text: str) -> object:
    return typer.Option(flag, help=text, show_default=False)


@app.command()
def update(
    container_id: ID,
    resources: Annotated[str | None, typer.Option(
        "--resources", "-r", help="LinuxResources JSON file, or - for stdin")] = None,
    blkio_weight: Annotated[str | None, _opt("--blkio-weight", "block IO weight")] = None,
    cpu_period: Annotated[str | None, _opt("--cpu-period", "CFS period (µs)")] = None,
    cpu_quota: Annotated[str | None, _opt("--cpu-quota", "CFS quota (µs)")] = None,
    cpu_burst: Annotated[str | None, _opt("--cpu-burst", "CFS burst (µs)")] = None,
    cpu_share: Annotated[str | None, _opt("--cpu-share", "CPU shares")] = None,
    cpu_rt_period: Annotated[str | None, _opt("--cpu-rt-period", "realtime period")] = None,
    cpu_rt_runtime: Annotated[str | None, _opt("--cpu-rt-runtime", "realtime runtime")]
    = None,
    cpu_idle: Annotated[str | None, _opt("--cpu-idle", "SCHED_IDLE for the cgroup")] = None,
    cpuset_cpus: Annotated[str | None, _opt("--cpuset-cpus", "CPUs, e.g. 0-1")] = None,
    cpuset_mems: Annotated[str | None, _opt("--cpuset-mems", "memory nodes")] = None,
    memory: Annotated[str | None, _opt("--memory", "memory limit, e.g. 64m")] = None,
    memory_reservation: Annotated[str | None, _opt("--memory-reservation", "soft limit")]
    = None,
    memory_swap: Annotated[str | None, _opt("--memory-swap", "memory+swap limit")] = None,
    kernel_memory: Annotated[str | None, _opt("--kernel-memory", "deprecated")] = None,
    kernel_memory_tcp: Annotated[str | None, _opt("--kernel-memory-tcp", "deprecated")]
    = None,
    pids_limit: Annotated[str | None, _opt("--pids-limit", "max processes")] = None,
) -> None:
    """Change the cgroup limits of a container."""
    from pyoci.operations.update import update as do_update

    flags = {k: v for k, v in locals().items()
             if k not in ("container_id", "resources", "do_update") and v is not None}
    do_update(G.root, container_id, resources, flags)


@app.command("list")
def list_(quiet: Annotated[bool, typer.Option("--quiet", "-q", help="ids only")] = False,
          fmt: Annotated[str, typer.Option("--format", "-f", help="table or json",
                                           click_type=click.Choice(["table", "json"]))]
          = "table") -> None:
    """List containers."""
    from pyoci.operations.query import list_table

    sys.stdout.write(list_table(G.root, quiet, fmt))


@app.command()
def spec(bundle: BUNDLE = ".",
         rootless: Annotated[bool, typer.Option("--rootless",
                                                help="a config for an unprivileged user")]
         = False) -> None:
    """Write a starter config.json into the bundle."""
    from pyoci.operations.spec import write_spec

    write_spec(bundle, rootless)


@app.command()
def features() -> None:
    """Print what this runtime supports on this host (runtime-spec features.md)."""
    from pyoci.operations.features import features_json

    typer.echo(features_json())


_CRIU_TEXT = ("pyoci does not implement checkpoint/restore: it has no CRIU support "
              "(docs/status.md). Use runc with CRIU for it")
_ANY_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True,
             "help_option_names": []}


@app.command(context_settings=_ANY_ARGS, add_help_option=False)
def checkpoint(ctx: typer.Context) -> None:
    """Checkpoint a running container (runc's, through CRIU): not implemented."""
    raise PyociError(f"checkpoint: {_CRIU_TEXT}")


@app.command(context_settings=_ANY_ARGS, add_help_option=False)
def restore(ctx: typer.Context) -> None:
    """Restore a container from a checkpoint (runc's, through CRIU): not implemented."""
    raise PyociError(f"restore: {_CRIU_TEXT}")


@app.command("help")
def help_(ctx: typer.Context,
          command: Annotated[str | None, typer.Argument(help="a command")] = None) -> None:
    """Show the commands, or the help of one command (as runc's `help [COMMAND]`)."""
    group = ctx.parent.command if ctx.parent is not None else None
    if not isinstance(group, click.Group) or ctx.parent is None:
        raise PyociError("help: no command table")
    if command is None:
        typer.echo(group.get_help(ctx.parent))
        return
    sub = group.get_command(ctx.parent, command)
    if sub is None:
        raise PyociError(f"No help topic for '{command}'")
    with click.Context(sub, info_name=command, parent=ctx.parent) as sub_ctx:
        typer.echo(sub.get_help(sub_ctx))


app.command("h", hidden=True)(help_)  # runc's alias


@app.command()
def validate(bundle: BUNDLE = ".") -> None:
    """Check a bundle's config.json against the runtime-spec without creating anything.
    Errors exit 1; what create would only warn about is listed as warnings (exit 0).
    The verdict is create's: both run config/check.py on this host."""
    import os

    from pyoci.config.bundle import read_bundle
    from pyoci.config.check import check

    checked = check(read_bundle(bundle), os.path.abspath(bundle))
    checked.release()
    for line in checked.warnings:
        typer.echo(f"{bundle}: warning: {line}")
    typer.echo(f"{bundle}: config.json is valid")


def run_cli(argv: list[str]) -> int:
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="pyoci", standalone_mode=False)
    except (PyociError, KeyboardInterrupt, OSError) as exc:
        return log.fail(exc)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        # Usage errors: runc exits 1 for these too.
        log.error(exc.format_message())
        return 1
    except click.exceptions.Abort:
        return 1
    return result if isinstance(result, int) else 0
