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
from pyoci.errors import ConfigError, PyociError

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any

    from pyoci.config.model import Spec


def read_config(bundle: str) -> dict[str, Any]:
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise PyociError(f"bundle {bundle!r}: config.json not found") from None
    except OSError as exc:
        raise PyociError(f"read {path}: {exc.strerror.lower()}") from None
    try:
        doc = jsonio.loads(raw)
    except UnicodeDecodeError as exc:
        raise ConfigError([("", f"not valid UTF-8: {exc.reason}")]) from None
    except ValueError as exc:  # json.JSONDecodeError
        raise ConfigError([("", f"not valid JSON: {getattr(exc, 'msg', exc)} at line "
                                f"{getattr(exc, 'lineno', '?')} column "
                                f"{getattr(exc, 'colno', '?')}")]) from None
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
