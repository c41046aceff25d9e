"""The command table and its one parser (pyoci/cli.py), issue 14:
each command is defined once; parsing, help and completion are derived from the table."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pyoci import cli, clihelp
from pyoci.cli import COMMANDS, GLOBAL_OPTS, UsageError, find, parse_options
from pyoci.operations.update import FLAGS

REPO = Path(__file__).resolve().parents[2]


def parse(name: str, *argv: str) -> dict:
    cmd = find(name)
    assert cmd is not None
    values, positionals = parse_options(cmd.opts, list(argv), cmd.interspersed, cmd)
    cli._bind(cmd.args, positionals, values)
    return values


def test_every_name_and_spelling_is_defined_once() -> None:
    names = [n for c in COMMANDS for n in (c.name, *c.aliases)]
    assert len(names) == len(set(names))
    for opts in (GLOBAL_OPTS, *(c.opts for c in COMMANDS)):
        assert all(o.names[0].startswith("--") for o in opts)  # the long name first
        spellings = [n for o in opts for n in o.names]
        assert len(spellings) == len(set(spellings)), spellings
        assert "-h" not in spellings and "--help" not in spellings
        dests = [o.dest for o in opts]
        assert len(dests) == len(set(dests)), dests


def test_runc_commands_are_all_there() -> None:
    for name in ("create", "start", "state", "kill", "delete", "run", "exec", "pause",
                 "resume", "ps", "events", "update", "list", "spec", "features",
                 "checkpoint", "restore", "help", "h"):
        assert find(name) is not None, name


def test_update_flags_are_the_operations() -> None:
    """update's resource flags are keyed as operations/update.FLAGS (no locals())."""
    assert [o.dest for o in cli.UPDATE_FLAGS] == list(FLAGS)


def test_option_spellings() -> None:
    v = parse("create", "--bundle=/b", "--pid-file", "/p", "x", "--no-pivot")
    assert (v["bundle"], v["pid_file"], v["container_id"], v["no_pivot"]) == (
        "/b", "/p", "x", True)
    assert parse("create", "-b/b", "x")["bundle"] == "/b"
    assert parse("create", "-b", "/b", "x")["bundle"] == "/b"
    assert parse("create", "x")["bundle"] == "."
    assert parse("create", "--preserve-fds", "2", "x")["preserve_fds"] == 2
    v = parse("run", "-d", "--keep", "x")
    assert (v["detach"], v["keep"], v["no_subreaper"]) == (True, True, False)


def test_repeatable_and_int_options() -> None:
    v = parse("exec", "-e", "A=1", "--env=B=2", "-g", "5", "--additional-gids", "6",
              "--cap", "CAP_KILL", "-c", "CAP_CHOWN", "--cgroup", "memory:a", "-td", "x",
              "sh", "-c", "echo --env")
    assert v["env"] == ["A=1", "B=2"] and v["additional_gids"] == [5, 6]
    assert v["cap"] == ["CAP_KILL", "CAP_CHOWN"] and v["cgroup"] == ["memory:a"]
    assert v["tty"] and v["detach"]
    assert (v["container_id"], v["command"]) == ("x", ["sh", "-c", "echo --env"])
    assert parse("exec", "x")["command"] == [] and parse("exec", "x")["env"] == []


def test_ps_options_after_the_id_belong_to_ps() -> None:
    v = parse("ps", "--format", "json", "x", "-ef", "--forest")
    assert (v["format"], v["container_id"], v["ps_args"]) == ("json", "x", ["-ef", "--forest"])
    assert parse("ps", "x")["format"] == "table"


def test_interspersed_and_double_dash() -> None:
    v = parse("kill", "x", "KILL", "--all")
    assert (v["container_id"], v["signal"], v["all"]) == ("x", "KILL", True)
    assert parse("kill", "x")["signal"] == "SIGTERM"
    assert parse("delete", "-f", "a", "b")["container_id"] == ["a", "b"]
    assert parse("kill", "--", "x", "-9")["signal"] == "-9"


@pytest.mark.parametrize(("argv", "message"), [
    (["state"], "missing argument CONTAINER_ID"),
    (["delete"], "missing argument CONTAINER_ID"),
    (["state", "a", "b"], "unexpected extra argument 'b'"),
    (["kill", "a", "b", "c", "d"], "unexpected extra arguments 'c' 'd'"),
    (["state", "--bogus", "x"], "no such option --bogus"),
    (["kill", "-z", "x"], "no such option -z"),
    (["create", "--no-pivot=1", "x"], "option --no-pivot takes no value"),
    (["create", "x", "--bundle"], "option --bundle needs a value"),
    (["create", "--preserve-fds", "-1", "x"], "invalid value for --preserve-fds: -1 is below 0"),
    (["exec", "-g", "root", "x"], "invalid value for -g: 'root' is not an integer"),
    (["list", "-f", "yaml"], "invalid value for -f: 'yaml' is not one of table, json"),
    (["completion", "tcsh"], "invalid value for SHELL: 'tcsh' is not one of bash"),
])
def test_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as exc:
        parse(*argv)
    assert str(exc.value) == message


def test_help_lists_what_the_table_has() -> None:
    main = clihelp.main_help()
    for c in COMMANDS:
        assert (f"  {c.name} " in main) is not c.hidden
    for o in GLOBAL_OPTS:
        assert all((n in main) is not o.hidden for n in o.names), o.names
    for c in COMMANDS:
        text = clihelp.command_help(c)
        assert text.startswith(f"Usage: pyoci {c.name}")
        for o in c.opts:
            assert all((n in text) is not o.hidden for n in o.names), (c.name, o.names)
        for a in c.args:
            assert a.name in text


def test_help_and_usage_errors_through_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["--root", "/nonexistent-pyoci", "run", "--help"]) == (0, True)
    out = capsys.readouterr().out
    assert "--keep" in out and "--no-subreaper" in out
    assert cli.run_cli(["--root", "/nonexistent-pyoci", "exec"]) == 1
    assert capsys.readouterr().err == ("pyoci: exec: missing argument CONTAINER_ID "
                                       "(pyoci exec --help shows its usage)\n")
    assert cli.run_cli(["--log-format", "xml", "list"]) == 1
    assert "invalid value for --log-format: 'xml'" in capsys.readouterr().err
    assert cli.run_cli([]) == 1
    assert capsys.readouterr().err.startswith("pyoci: missing command")
    assert cli.run_cli(["-h"]) == 0
    assert capsys.readouterr().out == clihelp.main_help()


def test_completion_words_are_the_tables() -> None:
    words = clihelp.completion_words()
    assert set(words[""]) == ({c.name for c in COMMANDS if not c.hidden}
                              | {n for o in GLOBAL_OPTS if not o.hidden for n in o.names}
                              | {"-h", "--help"})
    for c in COMMANDS:
        if not c.raw:
            assert set(words[c.name]) == {n for o in c.opts if not o.hidden
                                          for n in o.names} | {"--help"}


def _complete(script: str, *words: str) -> list[str]:
    line = " ".join(words)
    prog = (f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}\n"
            "_pyoci\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    out = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, check=True,
                         timeout=30)
    return out.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_script_completes_from_the_table() -> None:
    res = subprocess.run([sys.executable, "-m", "pyoci", "completion", "bash"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 0, res.stderr
    script = res.stdout
    assert subprocess.run(["bash", "-n", "-c", script], timeout=30).returncode == 0
    assert _complete(script, "pyoci", "de") == ["delete"]
    assert set(_complete(script, "pyoci", "--root", "/x", "exec", "--ig")) == {
        "--ignore-paused"}
    assert set(_complete(script, "pyoci", "run", "--no-")) == {
        "--no-pivot", "--no-new-keyring", "--no-subreaper"}
    assert "--systemd-cgroup" not in _complete(script, "pyoci", "--")


def test_pyoci_imports_neither_typer_nor_click() -> None:
    """typer/click are gone from the code (and from pyproject.toml's dependencies)."""
    for path in (REPO / "pyoci").rglob("*.py"):
        text = path.read_text()
        assert "import typer" not in text and "import click" not in text, path
    deps = (REPO / "pyproject.toml").read_text().split("dependencies = [", 1)[1].split("]")[0]
    assert "typer" not in deps and "click" not in deps
