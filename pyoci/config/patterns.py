"""The ``pattern`` keywords of schemas/*.schema.json as plain string predicates.

Why: a valid config needs only a verdict (pyoci/config/fastcheck.py), and importing
:mod:`re` to get it costs ~8 ms per process (re pulls in enum, functools, collections) --
a quarter of runc's whole ``create`` (issue 5). Each predicate here answers exactly what
jsonschema's ``re.search(pattern, text)`` answers for that pattern, including Python's
``$``, which also matches just before a final newline; tests/unit/test_fastcheck.py
checks every one against :mod:`re`. A pattern not listed here is left to :mod:`re`.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Callable

_DIGITS = frozenset("0123456789")
_ALNUM_HYPHEN = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-")


def _body(text: str) -> str:
    """What an anchored ``^...$`` pattern must match: ``$`` may stop before a last \\n."""
    return text[:-1] if text.endswith("\n") else text


def _number(part: str) -> bool:
    """``0|[1-9][0-9]*``"""
    return bool(part) and _DIGITS.issuperset(part) and (part == "0" or part[0] != "0")


def _prerelease_id(part: str) -> bool:
    """``0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*``: a number without a leading zero, or
    alphanumerics and hyphens with at least one that is not a digit."""
    if not part or not _ALNUM_HYPHEN.issuperset(part):
        return False
    return _number(part) or not _DIGITS.issuperset(part)


def semver(text: str) -> bool:
    """SemVer 2.0.0's grammar, as the spec's ``ociVersion`` pattern spells it."""
    version, plus, build = _body(text).partition("+")
    if plus and not all(p and _ALNUM_HYPHEN.issuperset(p) for p in build.split(".")):
        return False
    core, dash, pre = version.partition("-")
    if dash and not all(_prerelease_id(p) for p in pre.split(".")):
        return False
    parts = core.split(".")
    return len(parts) == 3 and all(_number(p) for p in parts)


def cpu_list(text: str) -> bool:
    """``^([0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*)?$``: "", "0-3", "0,2,4-7"."""
    body = _body(text)
    if not body:
        return True
    for item in body.split(","):
        low, dash, high = item.partition("-")
        if not low or not _DIGITS.issuperset(low):
            return False
        if dash and (not high or not _DIGITS.issuperset(high)):
            return False
    return True


def absolute(text: str) -> bool:
    """``^/``"""
    return text.startswith("/")


def one_line(text: str) -> bool:
    """``^[^\\n]*$``"""
    return "\n" not in _body(text)


def rdt_schema(text: str) -> bool:
    """``^MB:[^\\n]*$`` (intelRdt memBwSchema)."""
    return text.startswith("MB:") and "\n" not in _body(text)[3:]


def page_size(text: str) -> bool:
    """``^[0-9]+[KMGTPE]B$`` (hugepageLimits pageSize: "2MB", "1GB")."""
    body = _body(text)
    return (len(body) >= 3 and body[-1] == "B" and body[-2] in "KMGTPE"
            and _DIGITS.issuperset(body[:-2]))


def device_access(text: str) -> bool:
    """``^[rwm]*$``"""
    return set(_body(text)) <= {"r", "w", "m"}


KNOWN: dict[str, Callable[[str], bool]] = {
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(-(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*)?"
    r"(\+[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*)?$": semver,
    r"^([0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*)?$": cpu_list,
    r"^/": absolute,
    r"^[^\n]*$": one_line,
    r"^MB:[^\n]*$": rdt_schema,
    r"^[0-9]+[KMGTPE]B$": page_size,
    r"^[rwm]*$": device_access,
}
