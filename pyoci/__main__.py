"""Entry point: `python -m pyoci` and the `pyoci` console script."""

import sys


def main() -> None:
    from pyoci.cli import run_cli

    sys.exit(run_cli(sys.argv[1:]))


if __name__ == "__main__":
    main()
