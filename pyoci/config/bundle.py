"""Read a bundle's config.json (bounded, every parse failure a ConfigError).

The verdict on the document is config/check.py's, the one checker that validate, create,
exec --process and update --resources share. Only the commands that read a config come
through this module.
"""

from __future__ import annotations

import os

from pyoci import jsonio
from pyoci.errors import ConfigError, PyociError, describe_oserror

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any

    from pyoci.config.model import Spec


def parse_document(raw: bytes, source: str) -> Any:
    """A JSON document from outside, parsed with every failure as a ConfigError naming
    ``source``: not UTF-8, not JSON, nested deeper than jsonio.MAX_DEPTH (validation and
    the model are recursive), or too big for memory. Never a traceback."""
    try:
        doc = jsonio.loads(raw)
    except UnicodeDecodeError as exc:
        raise ConfigError([("", f"not valid UTF-8: {exc.reason}")], source=source) from None
    except RecursionError:
        doc = None
        deep: str | None = ""
    except MemoryError:
        raise ConfigError([("", "not enough memory to parse it")], source=source) from None
    except ValueError as exc:  # json.JSONDecodeError
        raise ConfigError([("", f"not valid JSON: {getattr(exc, 'msg', exc)} at line "
                                f"{getattr(exc, 'lineno', '?')} column "
                                f"{getattr(exc, 'colno', '?')}")], source=source) from None
    else:
        deep = jsonio.too_deep(doc)
    if deep is not None:
        raise ConfigError([(deep, f"nested more than {jsonio.MAX_DEPTH} levels deep")],
                          source=source)
    return doc


def read_document(path: str, what: str) -> bytes:
    """The bytes of ``path``, at most jsonio.MAX_DOCUMENT_BYTES (PyociError beyond)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise PyociError(f"read {path}: {describe_oserror(exc)}") from None
    try:
        return jsonio.read_bounded(fd)
    except jsonio.TooLarge as exc:
        raise PyociError(f"{what} {path}: {exc}") from None
    except OSError as exc:
        raise PyociError(f"read {path}: {describe_oserror(exc)}") from None
    finally:
        os.close(fd)


def read_config(bundle: str) -> dict[str, Any]:
    path = os.path.join(bundle, "config.json")
    if not os.path.lexists(path):
        raise PyociError(f"bundle {bundle!r}: config.json not found")
    doc = parse_document(read_document(path, "config"), "config.json")
    if not isinstance(doc, dict):
        raise ConfigError([("", f"expected a JSON object, found {type(doc).__name__}")])
    return doc


def validate_document(doc: dict[str, Any], bundle: str | None) -> None:
    """Raise ConfigError listing every problem: the schema's, then the semantic checks'
    (those are skipped where the schema already found the document malformed)."""
    from pyoci.config.check import document_problems

    problems = document_problems(doc, bundle)
    if problems:
        raise ConfigError(problems)


def read_bundle(bundle: str) -> dict[str, Any]:
    """The raw config document of a bundle directory (PyociError if there is none)."""
    bundle = os.path.abspath(bundle)
    if not os.path.isdir(bundle):
        raise PyociError(f"bundle {bundle!r} does not exist or is not a directory")
    return read_config(bundle)


def load_bundle(bundle: str) -> tuple[Spec, dict[str, Any]]:
    """(frozen Spec, raw document) for a bundle directory, or ConfigError: the document
    stage of the one checker (config/check.py), without the host's rules."""
    from pyoci.config.check import check

    checked = check(read_bundle(bundle), os.path.abspath(bundle), host=False)
    return checked.spec, checked.doc
