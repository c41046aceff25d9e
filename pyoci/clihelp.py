"""Help and shell completion, rendered from the command table (:mod:`pyoci.cli`).

Imported only when help or a completion script is asked for: what `pyoci --help`, `pyoci
COMMAND --help`, `pyoci help [COMMAND]` (runc's) and `pyoci completion bash` print is the
table itself, so a flag added to the table shows up in all of them and in the parser.
"""

from __future__ import annotations

from pyoci.cli import COMMANDS, GLOBAL_OPTS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyoci.cli import Command, Opt

_WIDTH = 100


def _wrap(text: str, indent: int, first: int) -> list[str]:
    """Greedy word wrap; the first line has ``first`` columns used already."""
    lines: list[str] = []
    line, used = "", first
    for word in text.split():
        if line and used + 1 + len(word) > _WIDTH:
            lines.append(line)
            line, used = word, indent + len(word)
        else:
            line = f"{line} {word}" if line else word
            used += len(word) + (1 if line != word else 0)
    lines.append(line)
    return lines


def _rows(rows: list[tuple[str, str]]) -> str:
    """Two columns: the names, then the text wrapped beside them."""
    if not rows:
        return ""
    width = min(max(len(left) for left, _ in rows), 34)
    out = []
    for left, text in rows:
        if len(left) > width:
            out.append(f"  {left}")
            left = ""
        lines = _wrap(text, width + 4, width + 4) if text else [""]
        out.append(f"  {left.ljust(width)}  {lines[0]}".rstrip())
        out.extend(" " * (width + 4) + line for line in lines[1:])
    return "\n".join(out) + "\n"


def _metavar(o: Opt) -> str:
    if o.kind == "flag":
        return ""
    if o.choices:
        return "[" + "|".join(o.choices) + "]"
    return "INTEGER" if o.kind == "int" else "TEXT"


def _opt_row(o: Opt) -> tuple[str, str]:
    names = ", ".join(sorted(o.names, key=len))
    left = f"{names} {_metavar(o)}".rstrip()
    text = o.help
    if o.multiple:
        text += " (repeatable)"
    if o.kind != "flag" and o.default not in (None, False, ""):
        text += f"  [default: {o.default}]"
    return left, text.strip()


def _usage(cmd: Command) -> str:
    parts = ["pyoci", cmd.name]
    if cmd.opts:
        parts.append("[OPTIONS]")
    for a in cmd.args:
        word = a.name + ("..." if a.variadic else "")
        parts.append(word if a.required else f"[{word}]")
    return " ".join(parts)


def command_help(cmd: Command) -> str:
    """One command's help (``pyoci CMD --help``, ``pyoci help CMD``)."""
    text = f"Usage: {_usage(cmd)}\n\n"
    text += "".join(f"  {line}\n" if line else "\n" for line in cmd.help.split("\n"))
    if cmd.aliases:
        text += f"\n  Aliases: {', '.join(cmd.aliases)}\n"
    if cmd.args:
        text += "\nArguments:\n" + _rows([
            (a.name, a.help + ("" if a.required else
                               f"  [default: {a.default}]" if a.default else "  [optional]"))
            for a in cmd.args])
    if not cmd.raw:
        rows = [_opt_row(o) for o in cmd.opts if not o.hidden]
        rows.append(("-h, --help", "show this help"))
        text += "\nOptions:\n" + _rows(rows)
    return text


def main_help() -> str:
    """``pyoci --help`` and ``pyoci help``: the global options and the commands."""
    text = ("Usage: pyoci [GLOBAL OPTIONS] COMMAND [ARGS]...\n\n"
            "  pyoci: an OCI runtime (runc-compatible).\n\nGlobal options:\n")
    rows = [_opt_row(o) for o in GLOBAL_OPTS if not o.hidden]
    rows.append(("-h, --help", "show this help"))
    text += _rows(rows)
    text += "\nCommands:\n" + _rows([(c.name, c.summary) for c in COMMANDS if not c.hidden])
    return text + "\nRun 'pyoci COMMAND --help' (or 'pyoci help COMMAND') for a command's help.\n"


def completion_words() -> dict[str, list[str]]:
    """What completes where: "" -> the global options and the commands; a command's name
    -> its options (the table's, hidden ones left out)."""
    words = {"": [n for o in GLOBAL_OPTS if not o.hidden for n in o.names]
             + ["--help", "-h"] + [c.name for c in COMMANDS if not c.hidden]}
    for c in COMMANDS:
        if not c.raw:
            words[c.name] = [n for o in c.opts if not o.hidden for n in o.names] + ["--help"]
    return words


def _value_options() -> list[str]:
    """Options that take a value: the word after them is not a command or a flag."""
    return sorted({n for o in (*GLOBAL_OPTS, *(o for c in COMMANDS for o in c.opts))
                   if o.kind != "flag" for n in o.names})


def bash_completion() -> str:
    """A bash completion script for `pyoci` from the table: ``complete -F``."""
    words = completion_words()
    cases = "".join(f"        {name}) opts=\"{' '.join(ws)}\" ;;\n"
                    for name, ws in words.items() if name)
    return f"""# bash completion for pyoci, generated from its command table (pyoci completion bash)
_pyoci() {{
    local cur prev cmd opts i w
    local values=" {' '.join(_value_options())} "
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    case "$values" in
        *" $prev "*) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    cmd=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        case "$values" in
            *" $w "*) ((i++)); continue ;;
        esac
        case "$w" in
            -*) ;;
            *) cmd="$w"; break ;;
        esac
    done
    case "$cmd" in
        "") opts="{' '.join(words[''])}" ;;
{cases}        *) opts="" ;;
    esac
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}}
complete -F _pyoci pyoci
"""
