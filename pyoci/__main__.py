"""Entry point: `python -m pyoci` and the `pyoci` console script.

The calls engines make most (state, start, kill, delete, create, ...) go through
:mod:`pyoci.fastcli`, which does not import typer; everything else through the full CLI.
"""

import sys


def main() -> None:
    from pyoci.fastcli import try_run

    code = try_run(sys.argv[1:])
    if code is None:
        from pyoci.cli import run_cli

        code = run_cli(sys.argv[1:])
    sys.exit(code)


if __name__ == "__main__":
    main()
