"""Read a bundle's config.json and return the validated, frozen model.

Validation happens once, here, before anything is created: the schema first (every error
at once), then the semantic checks. Only create/run/validate come through this module.
"""

from __future__ import annotations

import os

from pyoci import jsonio
from pyoci.config.loader import load_spec
from pyoci.config.schema import schema_problems
from pyoci.config.semantic import semantic_problems
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
        deep = ""
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
    problems = schema_problems(doc, "config")
    try:
        extra = semantic_problems(doc, bundle)
    except (TypeError, AttributeError, KeyError, ValueError):
        extra = []  # a shape the schema already reported
    seen = {path for path, _ in problems}
    problems += [p for p in extra if p[0] not in seen]
    if problems:
        raise ConfigError(problems)


def load_bundle(bundle: str) -> tuple[Spec, dict[str, Any]]:
    """(frozen Spec, raw document) for a bundle directory, or ConfigError."""
    bundle = os.path.abspath(bundle)
    if not os.path.isdir(bundle):
        raise PyociError(f"bundle {bundle!r} does not exist or is not a directory")
    doc = read_config(bundle)
    validate_document(doc, bundle)
    return load_spec(doc), doc
