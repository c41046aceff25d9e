"""JSON Schema validation of config.json, process.json, state and features documents.

Two stages: pyoci.config.fastcheck decides valid / invalid / unsure in well under a
millisecond; only a document it does not call valid reaches jsonschema, which is imported
here only, lazily, to list every problem with its path (its import alone costs 40-70 ms).
This module is imported only by the commands that validate (create, run, validate, exec,
update), never by state/kill/start/delete.
"""

from __future__ import annotations

import os

from pyoci import jsonio
from pyoci.config.fastcheck import Checker, subschema
from pyoci.errors import ConfigError, PyociError

# create/run/exec import this module: pathlib, functools and json (re) would add ~10 ms
# to each of them (issue 5), so plain os.path, dict caches and pyoci.jsonio here; json
# only where a rejection is explained.
TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any

    import jsonschema
    from jsonschema.exceptions import ValidationError

_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean",
               int: "integer", float: "number", type(None): "null"}


def schema_dir() -> str:
    """The schemas: packaged as ``pyoci.schemas`` when installed, else the repo's schemas/."""
    try:
        import pyoci.schemas as pkg

        path = os.path.dirname(pkg.__file__ or "")
        if os.path.exists(os.path.join(path, "config.schema.json")):
            return path
    except ImportError:
        pass
    here = os.path.dirname(os.path.realpath(__file__))
    return os.path.join(os.path.dirname(os.path.dirname(here)), "schemas")


_schemas: dict[str, dict[str, Any]] = {}
_checkers: dict[tuple[str, str | None], Checker] = {}
_validators: dict[tuple[str, str | None], jsonschema.Draft202012Validator] = {}


def load_schema(name: str) -> dict[str, Any]:
    if name not in _schemas:
        with open(os.path.join(schema_dir(), f"{name}.schema.json"), "rb") as f:
            _schemas[name] = jsonio.loads(f.read())
    return _schemas[name]


def _checker(name: str, ref: str | None = None) -> Checker:
    """The fast verdict for ``name`` (or its ``ref``, e.g. ``#/$defs/Process``)."""
    if (name, ref) not in _checkers:
        _checkers[name, ref] = Checker(load_schema(name), ref)
    return _checkers[name, ref]


def strict_validator_class() -> type[jsonschema.Draft202012Validator]:
    """Draft 2020-12 with one change, shared with fastcheck: "integer" is a JSON number
    written without fraction or exponent (a Python int), so 1.0 and -0.0 are refused where
    the spec says integer, as runc's Go decoding refuses them (see fastcheck's docstring)."""
    global _strict_class
    if _strict_class is None:
        import jsonschema
        from jsonschema import validators

        base = jsonschema.Draft202012Validator
        checker = base.TYPE_CHECKER.redefine("integer", lambda _c, x: type(x) is int)
        _strict_class = validators.extend(base, type_checker=checker)
    return _strict_class


_strict_class: Any = None


def _validator(name: str, ref: str | None = None) -> jsonschema.Draft202012Validator:
    """The detailed checker: the same schema as _checker, through jsonschema."""
    if (name, ref) not in _validators:
        _validators[name, ref] = strict_validator_class()(subschema(load_schema(name), ref))
    return _validators[name, ref]


def json_path(parts: Any) -> str:
    """`process.args[0]` from jsonschema's deque of keys and indexes."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _found(instance: Any) -> str:
    import json

    text = json.dumps(instance)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({_JSON_TYPES.get(type(instance), type(instance).__name__)})"


def _explain(err: ValidationError) -> tuple[str, str]:
    """(JSON path, 'expected ..., found ...') for one schema error."""
    import json

    from jsonschema.exceptions import best_match

    path = json_path(err.absolute_path)
    v, expected, inst = err.validator, err.validator_value, err.instance
    if v in ("anyOf", "oneOf") and err.context:
        return _explain(best_match(err.context))
    if v == "required":
        missing = [k for k in expected if isinstance(inst, dict) and k not in inst]
        name = missing[0] if missing else expected
        return (json_path([*err.absolute_path, name]),
                "is required but missing")
    if v == "type":
        kinds = " or ".join(expected) if isinstance(expected, list) else expected
        return path, f"expected {kinds}, found {_found(inst)}"
    if v == "enum":
        choices = ", ".join(json.dumps(c) for c in expected)
        return path, f"expected one of {choices}, found {_found(inst)}"
    if v == "const":
        return path, f"expected {json.dumps(expected)}, found {_found(inst)}"
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        word = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=",
                "exclusiveMaximum": "<"}[v]
        return path, f"expected a number {word} {expected}, found {_found(inst)}"
    if v == "minItems":
        return path, f"expected at least {expected} item(s), found {len(inst)}"
    if v == "minLength":
        return path, f"expected a string of at least {expected} character(s), found {_found(inst)}"
    if v == "pattern" and expected == "^/":
        return path, f"expected an absolute path, found {_found(inst)}"
    if v == "pattern":
        return path, f"expected a string matching {expected}, found {_found(inst)}"
    if v == "uniqueItems":
        return path, "expected unique items, found duplicates"
    if v == "propertyNames" and err.context:
        return path, f"invalid key: {best_match(err.context).message}"
    return path, err.message


def schema_problems(doc: Any, name: str = "config", ref: str | None = None
                    ) -> list[tuple[str, str]]:
    """Every schema violation of ``doc`` as (JSON path, reason), sorted by path.

    The fast check answers for valid documents; jsonschema lists the problems otherwise,
    and also decides whenever the fast check is unsure, so the result never depends on it.
    """
    if _checker(name, ref).verdict(doc) is True:
        return []
    validator = _validator(name, ref)
    problems = {_explain(e) for e in validator.iter_errors(doc)}
    return sorted(problems)


def read_checked(flag: str, source: str, definition: str) -> dict[str, Any]:
    """A JSON document given on the command line (``--process FILE``, ``--resources
    FILE|-``) checked against one definition of the config schema, so a bad value is named
    by its path before anything is done. Errors name the flag and the source."""
    import sys

    from pyoci.config.bundle import parse_document, read_document

    where = f"{flag} {source}"
    if source == "-":
        try:
            raw = sys.stdin.buffer.read(jsonio.MAX_DOCUMENT_BYTES + 1)
        except OSError as exc:
            raise PyociError(f"{where}: {exc.strerror or exc}") from None
        if len(raw) > jsonio.MAX_DOCUMENT_BYTES:
            raise PyociError(f"{where}: larger than {jsonio.MAX_DOCUMENT_BYTES // 2**20} "
                             "MiB, the most pyoci reads")
    else:
        raw = read_document(source, flag)
    doc = parse_document(raw, where)
    problems = schema_problems(doc, "config", f"#/$defs/{definition}")
    if problems:
        raise ConfigError(problems, source=where)
    return doc
