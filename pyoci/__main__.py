"""Entry point: `python -m pyoci` and the `pyoci` console script (launcher/pyoci).

Every command goes through :mod:`pyoci.cli`, one parser over the command table
(:mod:`pyoci.commands`), which imports neither typer nor click (issue 14).
"""

import os
import sys


def run_argv(argv: list[str]) -> tuple[int, bool]:
    """(exit status, whether the process may leave with os._exit)."""
    from pyoci.cli import run

    return run(argv)


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


if __name__ == "__main__":
    main()
