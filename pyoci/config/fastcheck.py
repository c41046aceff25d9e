"""A fast yes/no check of a document against pyoci's own JSON Schemas.

Why: ``create``/``run``/``exec``/``update`` must validate their input, but importing
jsonschema (with referencing) costs 40-70 ms per process, more than runc needs for a whole
``create``. Nearly every document a runtime receives is valid, and a valid one only needs a
verdict, not a list of errors. This module gives the verdict by walking the schema; the
detailed report stays with jsonschema (pyoci/config/schema.py), imported only when this
module does not say "valid".

Scope: exactly the draft 2020-12 keywords that schemas/*.schema.json use, with the
semantics of jsonschema's Draft202012Validator, keyword by keyword:

* ``type``: "integer" is a non-bool int: a JSON number written with a fraction or an
  exponent (``1.0``, ``-0.0``, ``1e3``) is not one, unlike draft 2020-12's "zero
  fraction" rule. runc decodes config.json with Go's encoding/json, which refuses such a
  number for an integer field (``strconv.ParseInt("1.0")`` fails: "cannot unmarshal
  number 1.0 into ... of type uint32"), and pyoci's executors need real ints (an
  integral float once crashed the seccomp compilation). schema.py's jsonschema
  validator uses the same rule. "number" is a non-bool int or float;
* ``minimum``/``maximum``/``exclusiveMinimum``: Python's ``<``/``>``/``<=`` on numbers
  only (so NaN passes, as in jsonschema);
* ``pattern``: ``re.search`` (unanchored) on strings only; ``minLength`` counts code points;
* ``properties``/``additionalProperties``/``required``/``propertyNames``/
  ``dependentRequired`` apply to objects only, ``items``/``minItems`` to arrays only;
* ``enum`` of strings; ``anyOf``; ``if``/``then``/``else``; ``$ref`` to ``#/$defs/<Name>``
  of the same document (with its siblings applying too, as 2020-12 says);
* annotations (title, description, ...) have no effect.

Conservative by construction: every schema object is audited the first time the walk
reaches it, and a keyword, a keyword value or a ``$ref`` form not listed above, or a Python
value JSON cannot produce, makes the verdict ``None`` ("ask jsonschema"), never "valid".

Why an interpreter and not closures compiled from the schema: each pyoci process checks
one document once, and a walk of the schema dict answers a typical config in about 0.1 ms
where compiling first costs 0.3-0.5 ms; compiled closures only win from the second check.
No jsonschema or referencing import here.
"""

from __future__ import annotations

from pyoci.config.patterns import KNOWN

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

# Keywords with no effect on validity (draft 2020-12 meta-data and core annotations).
_ANNOTATIONS = frozenset({
    "title", "description", "$comment", "examples", "default", "deprecated",
    "readOnly", "writeOnly",
})
# Keywords only understood at the root: identify the document and hold the $ref targets.
_ROOT_ONLY = frozenset({"$schema", "$id", "$defs"})
# Keywords whose value is a subschema, audited when (and if) the walk reaches it.
_SUBSCHEMA = frozenset({"additionalProperties", "propertyNames", "items", "if", "then", "else"})
_STRING_LISTS = frozenset({"required", "enum"})
_COUNTS = frozenset({"minItems", "minLength"})
_BOUNDS = frozenset({"minimum", "maximum", "exclusiveMinimum"})
_TYPE_NAMES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})
# The root keywords that schema.py's subschema validators drop in favour of the $ref.
_DROPPED_FOR_REF = ("properties", "required", "type", "if", "then", "else")
_DEFS_PREFIX = "#/$defs/"

IMPLEMENTED = (_ANNOTATIONS | _ROOT_ONLY | _SUBSCHEMA | _STRING_LISTS | _COUNTS | _BOUNDS
               | {"type", "properties", "dependentRequired", "pattern", "anyOf", "$ref"})


class Unsure(Exception):
    """The schema or the document is outside what this checker implements."""


def subschema(schema: dict[str, Any], ref: str | None) -> dict[str, Any]:
    """The root schema that validates a document as ``ref`` (e.g. ``#/$defs/Process``).

    The whole document is kept so that ``$ref``s inside ``$defs`` still resolve; only the
    root's own assertions about config.json are dropped. schema.py builds its jsonschema
    validator from this same dict, so the fast and the detailed check see one schema.
    """
    if not ref:
        return schema
    root = {**schema, "$ref": ref}
    for key in _DROPPED_FOR_REF:
        root.pop(key, None)
    return root


# ----------------------------------------------------------------------- JSON types


def _is_number(x: Any) -> bool:
    t = type(x)
    if t is int or t is float:
        return True
    if t is bool or t is str or t is dict or t is list or x is None:
        return False
    raise Unsure(f"a {t.__name__} value (not produced by JSON)")


def _is_type(name: str, x: Any) -> bool:
    if name == "object":
        return isinstance(x, dict)
    if name == "string":
        return isinstance(x, str)
    if name == "array":
        return isinstance(x, list)
    if name == "integer":
        t = type(x)
        if t is int:
            return True
        if t is float:
            return False  # written with a fraction or exponent: see the module docstring
        return _is_number(x)  # False for the other JSON types, Unsure for the rest
    if name == "number":
        return _is_number(x)
    if name == "boolean":
        return isinstance(x, bool)
    return x is None  # "null": the audit let no other name through


# ----------------------------------------------------------------------- the audit


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(type(v) is str for v in value)


def _audit_value(key: str, value: Any, defs: dict[str, Any]) -> None:
    """Unsure unless ``value`` is a well-formed value of ``key`` this checker implements."""
    if key in _SUBSCHEMA:
        ok = isinstance(value, (dict, bool))
    elif key == "type":
        names = [value] if isinstance(value, str) else value
        ok = isinstance(names, list) and bool(names) and all(
            isinstance(n, str) and n in _TYPE_NAMES for n in names)
    elif key == "properties":
        ok = isinstance(value, dict) and all(
            type(k) is str and isinstance(v, (dict, bool)) for k, v in value.items())
    elif key in _STRING_LISTS:
        # enum: only strings, for which jsonschema's equality is plain ==
        ok = _string_list(value)
    elif key in _COUNTS:
        ok = type(value) is int and value >= 0
    elif key in _BOUNDS:
        ok = type(value) in (int, float)
    elif key == "pattern":
        ok = isinstance(value, str)
    elif key == "dependentRequired":
        ok = isinstance(value, dict) and all(_string_list(v) for v in value.values())
    elif key == "anyOf":
        ok = isinstance(value, list) and bool(value) and all(
            isinstance(v, (dict, bool)) for v in value)
    elif key == "$ref":
        # only "#/$defs/<Name>" of this document: no JSON-pointer escapes, no other URI
        ok = (isinstance(value, str) and value.startswith(_DEFS_PREFIX)
              and value[len(_DEFS_PREFIX):] in defs
              and not any(c in value[len(_DEFS_PREFIX):] for c in "/~%"))
    else:
        raise Unsure(f"keyword {key!r} is not implemented")
    if not ok:
        raise Unsure(f"{key}: {value!r} is not a value this checker implements")


# ----------------------------------------------------------------------- public API


class Checker:
    """One schema (or one ``#/$defs/<Name>`` of it) answering valid / invalid / unsure.

    Building it costs nothing; each schema object is audited once, when a document first
    reaches it, so a check only pays for the parts of the schema the document uses.
    """

    def __init__(self, schema: dict[str, Any], ref: str | None = None) -> None:
        self._root = subschema(schema, ref)
        defs = self._root.get("$defs", {}) if isinstance(self._root, dict) else {}
        self._defs: dict[str, Any] = defs if isinstance(defs, dict) else {}
        self._audited: set[int] = set()  # id()s of schema objects; the root keeps them alive
        self._regex: dict[str, Callable[[str], bool]] = {}

    def verdict(self, doc: Any) -> bool | None:
        """True: valid; False: invalid; None: unsure (ask jsonschema)."""
        try:
            root = self._root
            if not isinstance(root, dict) or not isinstance(root.get("$defs", {}), dict):
                raise Unsure("the root is not an object with object $defs")
            if root.get("$schema", DRAFT_2020_12) != DRAFT_2020_12:
                raise Unsure(f"$schema {root['$schema']!r} is not draft 2020-12")
            return self._valid(root, doc)
        except (Unsure, RecursionError):
            return None

    def _audit(self, node: dict[str, Any]) -> None:
        for key, value in node.items():
            if key in _ANNOTATIONS:
                continue
            if key in _ROOT_ONLY:
                if node is not self._root:
                    raise Unsure(f"{key} below the root")
                continue
            _audit_value(key, value, self._defs)
        self._audited.add(id(node))

    def _valid(self, node: Any, x: Any) -> bool:
        if node is True:
            return True
        if node is False:
            return False
        if id(node) not in self._audited:
            self._audit(node)
        for key, value in node.items():
            if key == "type":
                if type(value) is str:
                    if not _is_type(value, x):
                        return False
                elif not any(_is_type(name, x) for name in value):
                    return False
            elif key == "$ref":
                if not self._valid(self._defs[value[len(_DEFS_PREFIX):]], x):
                    return False
            elif key == "properties":
                if isinstance(x, dict):
                    rest = node.get("additionalProperties", True)
                    for name, item in x.items():
                        sub = value.get(name, rest)
                        if sub is not True and not self._valid(sub, item):
                            return False
            elif key == "additionalProperties":
                if "properties" not in node and isinstance(x, dict) and value is not True:
                    for item in x.values():
                        if not self._valid(value, item):
                            return False
            elif key == "required":
                if isinstance(x, dict):
                    for name in value:
                        if name not in x:
                            return False
            elif key == "items":
                if isinstance(x, list) and value is not True:
                    for item in x:
                        if not self._valid(value, item):
                            return False
            elif key == "enum":
                if not isinstance(x, str) or x not in value:
                    return False
            elif key == "minimum":
                if _is_number(x) and x < value:
                    return False
            elif key == "maximum":
                if _is_number(x) and x > value:
                    return False
            elif key == "exclusiveMinimum":
                if _is_number(x) and x <= value:
                    return False
            elif key == "pattern":
                if isinstance(x, str) and not self._search(value, x):
                    return False
            elif key == "minLength":
                if isinstance(x, str) and len(x) < value:
                    return False
            elif key == "minItems":
                if isinstance(x, list) and len(x) < value:
                    return False
            elif key == "propertyNames":
                if isinstance(x, dict):
                    for name in x:
                        if not self._valid(value, name):
                            return False
            elif key == "dependentRequired":
                if isinstance(x, dict):
                    for name, needed in value.items():
                        if name in x and not all(n in x for n in needed):
                            return False
            elif key == "anyOf":
                if not any(self._valid(branch, x) for branch in value):
                    return False
            elif key == "if":
                branch = node.get("then", True) if self._valid(value, x) \
                    else node.get("else", True)
                if not self._valid(branch, x):
                    return False
            # anything else passed the audit: an annotation, $schema/$id/$defs at the
            # root, or then/else (read by "if", inert without it)
        return True

    def _search(self, pattern: str, text: str) -> bool:
        """jsonschema's ``re.search(pattern, instance)``: the schemas' own patterns by the
        predicates of pyoci/config/patterns.py (no :mod:`re` import), any other one by
        :mod:`re`, compiled once."""
        test = KNOWN.get(pattern) or self._regex.get(pattern)
        if test is None:
            import re

            try:
                compiled = re.compile(pattern)
            except re.error:
                raise Unsure(f"pattern {pattern!r} does not compile") from None
            test = self._regex[pattern] = lambda text: compiled.search(text) is not None
        return test(text)
