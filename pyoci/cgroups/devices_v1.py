"""The v1 devices controller: programming devices.allow / devices.deny like runc.

Kernel model (Documentation/admin-guide/cgroup-v1/devices.rst): a cgroup is either
default-allow with "deny" exceptions or default-deny with "allow" exceptions. Writing a
rule of type ``a`` to devices.allow / devices.deny resets the cgroup to allow-all /
deny-all (whatever the major, minor and access); other rules add exceptions, or remove
access from existing ones in the other file. devices.list shows the exceptions of a
default-deny cgroup, and just ``a *:* rwm`` for a default-allow one (whose deny exceptions
cannot be read back).

runc (devices/v1.go + devices_emulator.go) replays the requested rules on a model that
starts from deny-all (so a list whose first rule is not a full deny still ends up as an
allow-list), reads the current state from devices.list, and writes only the transition:
a disruptive ``a *:* rwm`` when the default differs or the current state is default-allow
(its deny exceptions are unknown), then removals, then additions, in (major, minor, type)
order. Updating a running container therefore never opens a window where its devices are
all denied unless the default changes. Afterwards runc reads devices.list again and
requires it to match. This module does the same; rules with wildcards cannot be partially
revoked by the kernel, so such a request is refused rather than silently ignored.
"""

from __future__ import annotations

import os

from pyoci.cgroups import CgroupError
from pyoci.cgroups import controllers as _cg
from pyoci.config.model import DeviceRule
from pyoci.errors import describe_oserror
from pyoci.record import field, mutable

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Sequence

JSON_PATH = "linux.resources.devices"
WILDCARD = -1
_ACCESS = "rwm"

Meta = tuple[int, int, str]   # (major, minor, type): the sort order runc writes in


@mutable
class DeviceState:
    """The kernel's view of one devices cgroup: default policy plus exceptions."""
    default_allow: bool = False
    rules: dict[Meta, frozenset[str]] = field(factory=dict)

    def allow(self, meta: Meta | None, perms: frozenset[str]) -> None:
        if meta is None:                                  # type "a": reset to allow-all
            self.default_allow, self.rules = True, {}
        elif self.default_allow:
            self._remove(meta, perms)
        else:
            self._add(meta, perms)

    def deny(self, meta: Meta | None, perms: frozenset[str]) -> None:
        if meta is None:                                  # type "a": reset to deny-all
            self.default_allow, self.rules = False, {}
        elif self.default_allow:
            self._add(meta, perms)
        else:
            self._remove(meta, perms)

    def _add(self, meta: Meta, perms: frozenset[str]) -> None:
        self.rules[meta] = self.rules.get(meta, frozenset()) | perms

    def _remove(self, meta: Meta, perms: frozenset[str]) -> None:
        major, minor, type_ = meta
        # The kernel only removes access from an exception that matches exactly; a request
        # overlapping a wider wildcard exception would be silently ignored.
        for wider in ((WILDCARD, minor, type_), (major, WILDCARD, type_),
                      (WILDCARD, WILDCARD, type_)):
            overlap = self.rules.get(wider, frozenset()) & perms
            if wider != meta and overlap:
                raise CgroupError(
                    f"{JSON_PATH}: cannot revoke {_rule_text(meta, perms)}: the v1 devices "
                    f"controller cannot punch a hole in the wider rule "
                    f"{_rule_text(wider, self.rules[wider])}")
        left = self.rules.get(meta, frozenset()) - perms
        if left:
            self.rules[meta] = left
        else:
            self.rules.pop(meta, None)


def _perms(access: str, where: str) -> frozenset[str]:
    perms = frozenset(access)
    if not perms or not perms <= frozenset(_ACCESS):
        raise CgroupError(f"{where}: access {access!r} must be a non-empty combination of "
                          f"'r', 'w' and 'm'")
    return perms


def _number(n: int) -> str:
    return "*" if n == WILDCARD else str(n)


def _rule_text(meta: Meta | None, perms: frozenset[str]) -> str:
    """The kernel's rule syntax: "c 1:3 rwm", "a *:* rwm"."""
    if meta is None:
        return "a *:* " + "".join(p for p in _ACCESS if p in perms)
    major, minor, type_ = meta
    return f"{type_} {_number(major)}:{_number(minor)} " + "".join(
        p for p in _ACCESS if p in perms)


def target_state(rules: Sequence[DeviceRule]) -> DeviceState:
    """Replay ``rules`` in order on a deny-all cgroup (runc's buildEmulator)."""
    state = DeviceState()
    for i, rule in enumerate(rules):
        where = f"device rule {i}"
        if rule.type not in ("a", "b", "c"):
            raise CgroupError(f"{JSON_PATH}: {where}: type {rule.type!r} must be 'a', 'b' or "
                              f"'c'")
        perms = _perms(rule.access, f"{JSON_PATH}: {where}")
        meta = None if rule.type == "a" else (
            WILDCARD if rule.major is None else rule.major,
            WILDCARD if rule.minor is None else rule.minor, rule.type)
        (state.allow if rule.allow else state.deny)(meta, perms)
    return state


def parse_list(text: str, where: str = "devices.list") -> DeviceState:
    """devices.list is an allow-list: "a *:* rwm" means the cgroup is default-allow."""
    state = DeviceState()
    for line in text.splitlines():
        fields = line.replace(":", " ").split()
        if not fields:
            continue
        if len(fields) != 4 or fields[0] not in ("a", "b", "c"):
            raise CgroupError(f"{where}: malformed rule {line!r}")
        type_, major, minor, access = fields
        if type_ == "a":
            state.allow(None, frozenset(_ACCESS))
            continue
        try:
            meta = (WILDCARD if major == "*" else int(major),
                    WILDCARD if minor == "*" else int(minor), type_)
        except ValueError:
            raise CgroupError(f"{where}: malformed rule {line!r}") from None
        state.allow(meta, _perms(access, where))
    return state


def transition(current: DeviceState, target: DeviceState) -> list[tuple[bool, str]]:
    """The (allow?, rule) writes that turn ``current`` into ``target``, fewest disruptive
    first (runc's Transition)."""
    writes: list[tuple[bool, str]] = []
    old = current.rules
    if current.default_allow or current.default_allow != target.default_allow:
        writes.append((target.default_allow, _rule_text(None, frozenset(_ACCESS))))
        old = {}
    for meta in sorted(old):
        dropped = old[meta] - target.rules.get(meta, frozenset())
        if dropped:
            writes.append((target.default_allow, _rule_text(meta, dropped)))
    for meta in sorted(target.rules):
        gained = target.rules[meta] - old.get(meta, frozenset())
        if gained:
            writes.append((not target.default_allow, _rule_text(meta, gained)))
    return writes


def _read_state(directory: str) -> DeviceState:
    path = os.path.join(directory, "devices.list")
    try:
        text = _cg.read_file(path)
    except OSError as exc:
        raise CgroupError(f"{JSON_PATH}: cannot read {path}: {describe_oserror(exc)}") from exc
    return parse_list(text, path)


def write_rules(directory: str, rules: Sequence[DeviceRule]) -> None:
    """Make the v1 devices cgroup ``directory`` enforce ``rules`` (usually
    :func:`~pyoci.cgroups.controllers.effective_device_rules`), then check devices.list."""
    target = target_state(rules)
    for allow, text in transition(_read_state(directory), target):
        name = "devices.allow" if allow else "devices.deny"
        path = os.path.join(directory, name)
        try:
            _cg.write_file(path, text)
        except OSError as exc:
            raise CgroupError(f"{JSON_PATH}: the kernel refused {_cg.show_value(text)} in {path}: "
                              f"{describe_oserror(exc)}") from exc
    after = _read_state(directory)
    # A default-allow cgroup's deny exceptions are not listed, so only its mode can be
    # checked; an allow-list must match exactly.
    if after.default_allow != target.default_allow or (
            not target.default_allow and after.rules != target.rules):
        raise CgroupError(f"{JSON_PATH}: {os.path.join(directory, 'devices.list')} does not "
                          f"show the requested rules after writing them")
