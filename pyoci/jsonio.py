"""JSON for the hot path, through CPython's ``_json`` accelerator without :mod:`json`.

``import json`` pulls in ``json.decoder``, which compiles regular expressions at import and
so imports :mod:`re` -- and with it ``enum``, ``functools`` and ``collections``: about 8 ms
on this machine kind, more than runc's whole ``state`` (issue 5). The C scanner and
encoder that :mod:`json` itself uses live in ``_json`` and need none of that; this module
drives them directly and produces byte-for-byte what ``json.dumps``/``json.loads`` do with
their defaults (ASCII output, ``", "``/``": "`` separators, ``indent`` with ``","``).
Where ``_json`` is missing (not CPython) it falls back to :mod:`json`.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any

try:
    import _json
except ImportError:  # pragma: no cover - other interpreters
    _json = None  # type: ignore[assignment]

#: The most pyoci reads of one JSON document from outside (config.json, ``exec --process``,
#: ``update --resources``). runc has no limit, but a 1 GB config.json then costs 2 GB of
#: memory and /dev/zero ends in MemoryError; real configs are kilobytes (a full seccomp
#: profile is ~20 KiB) and Kubernetes caps all annotations together at 256 KiB.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
#: The deepest nesting accepted from outside: the spec's own structures are at most 7
#: levels deep; validation and the model are recursive, and a document nested ~1000 deep
#: used to end in RecursionError. Go's encoding/json stops at 10000.
MAX_DEPTH = 64

_INF = float("inf")
_CONSTANTS = {"-Infinity": -_INF, "Infinity": _INF, "NaN": float("nan")}
_WHITESPACE = " \t\n\r"  # RFC 8259 section 2: the only insignificant whitespace


class _Context:
    """What ``_json.make_scanner`` reads from a ``json.JSONDecoder``: its defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo: dict[str, str] = {}


_scan = _json.make_scanner(_Context()) if _json else None  # type: ignore[arg-type]


def _json_loads(text: str) -> Any:
    """:mod:`json` itself: for other interpreters, and for the exact error message
    (``Expecting value: line 1 column 1 (char 0)``) when a document is malformed."""
    import json

    return json.loads(text)


def loads(data: str | bytes) -> Any:
    """``json.loads`` for UTF-8 text, with json's errors (JSONDecodeError, a ValueError;
    UnicodeDecodeError for bytes that are not UTF-8)."""
    text = data.decode() if isinstance(data, bytes) else data
    if _scan is None:  # pragma: no cover
        return _json_loads(text)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except (StopIteration, ValueError, SystemError):
        # Malformed: let json say why. (The C scanner builds its JSONDecodeError from
        # json.decoder only if that is already imported; otherwise it fails with a
        # SystemError, so the message must come from json itself.)
        return _json_loads(text)
    if end != len(text) and text[end:].strip(_WHITESPACE):
        return _json_loads(text)  # raises "Extra data"
    return value


class TooLarge(ValueError):
    """A document over the size limit of :func:`read_bounded`."""


def read_bounded(fd: int, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """Everything readable from ``fd``, or TooLarge as soon as more than ``limit`` bytes
    came: what is read is bounded whatever the file is (a huge file, /dev/zero, a pipe)."""
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = os.read(fd, min(1 << 20, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise TooLarge(f"larger than {limit // (1024 * 1024)} MiB, the most pyoci reads")
        chunks.append(chunk)


def too_deep(doc: Any, limit: int = MAX_DEPTH) -> str | None:
    """The top-level key (or index) under which ``doc`` nests objects/arrays more than
    ``limit`` levels deep, "" for the document itself; None when it does not. Iterative:
    the check itself cannot hit the recursion limit."""
    if type(doc) is not dict and type(doc) is not list:
        return None
    stack: list[tuple[Any, int, Any]] = [(doc, 1, "")]
    pop, push = stack.pop, stack.append
    while stack:
        value, depth, top = pop()
        if depth > limit:
            return str(top)
        items = value.items() if type(value) is dict else enumerate(value)
        for key, item in items:
            kind = type(item)
            if kind is dict or kind is list:
                push((item, depth + 1, key if depth == 1 else top))
    return None


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value == _INF:
        return "Infinity"
    if value == -_INF:
        return "-Infinity"
    return float.__repr__(value)


def _not_serializable(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_encode_compact = (_json.make_encoder(None, _not_serializable, _json.encode_basestring_ascii,
                                      None, ": ", ", ", False, False, True) if _json else None)


def dumps(obj: Any, indent: int | None = None) -> str:
    """``json.dumps(obj)`` or ``json.dumps(obj, indent=indent)``, same output."""
    if _json is None:  # pragma: no cover
        import json

        return json.dumps(obj, indent=indent)
    if indent is None:
        return "".join(_encode_compact(obj, 0))  # type: ignore[misc]
    out: list[str] = []
    _pretty(obj, " " * indent, "\n", out)
    return "".join(out)


def _pretty(obj: Any, step: str, newline: str, out: list[str]) -> None:
    """json's indented layout: one member per line, ``,`` ending all but the last."""
    if isinstance(obj, str):
        out.append(_json.encode_basestring_ascii(obj))
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, int):
        out.append(int.__repr__(obj))
    elif isinstance(obj, float):
        out.append(_float(obj))
    elif isinstance(obj, dict):
        if not obj:
            out.append("{}")
            return
        inner = newline + step
        out.append("{")
        first = True
        for key, value in obj.items():
            out.append(inner if first else "," + inner)
            first = False
            out.append(_json.encode_basestring_ascii(_key(key)) + ": ")
            _pretty(value, step, inner, out)
        out.append(newline + "}")
    elif isinstance(obj, (list, tuple)):
        if not obj:
            out.append("[]")
            return
        inner = newline + step
        out.append("[")
        for i, value in enumerate(obj):
            out.append(inner if i == 0 else "," + inner)
            _pretty(value, step, inner, out)
        out.append(newline + "]")
    else:
        _not_serializable(obj)


def _key(key: Any) -> str:
    """json's rules for non-string keys."""
    if isinstance(key, str):
        return key
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float):
        return _float(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def encode_string(text: str) -> str:
    """``json.dumps(text)``: a quoted, escaped, ASCII string."""
    if _json is None:  # pragma: no cover
        import json

        return json.dumps(text)
    return _json.encode_basestring_ascii(text)
