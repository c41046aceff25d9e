"""Capabilities (config.md "Process": capabilities): /proc/self/status inside shows exactly
the configured sets, for root and across the switch to another uid."""

from __future__ import annotations

import pytest

from pyoci.executors.capabilities import CAP_NUMBERS
from tests.helpers import Bundle, Runtime, assert_nothing_left, base_config

pytestmark = pytest.mark.integration


def _mask(*names: str) -> int:
    return sum(1 << CAP_NUMBERS[n] for n in names)


def _status(runtime: Runtime, bundle: Bundle, caps: dict, user: dict) -> dict[str, int]:
    bundle.write(base_config(args=["grep", "^Cap", "/proc/self/status"], capabilities=caps,
                             user=user))
    res = runtime("run", "-b", str(bundle.path), "cap")
    assert res.returncode == 0, res.stderr
    return {k: int(v, 16) for k, v in (line.split(":\t") for line in res.stdout.splitlines())}


def test_non_root_user_gets_exact_sets(runtime: Runtime, bundle: Bundle) -> None:
    names = ("CAP_KILL", "CAP_NET_BIND_SERVICE")
    caps = {"bounding": [*names, "CAP_CHOWN"], "effective": list(names),
            "permitted": list(names), "inheritable": list(names), "ambient": list(names)}
    st = _status(runtime, bundle, caps, {"uid": 1000, "gid": 1000})
    assert st["CapBnd"] == _mask(*names, "CAP_CHOWN")
    assert st["CapPrm"] == st["CapEff"] == st["CapInh"] == st["CapAmb"] == _mask(*names)


def test_non_root_without_ambient_has_none(runtime: Runtime, bundle: Bundle) -> None:
    caps = {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
    st = _status(runtime, bundle, caps, {"uid": 1000, "gid": 1000})
    assert st["CapBnd"] == _mask("CAP_KILL")
    assert st["CapEff"] == st["CapPrm"] == st["CapAmb"] == 0


def test_root_is_limited_by_bounding_set(runtime: Runtime, bundle: Bundle) -> None:
    caps = {k: ["CAP_AUDIT_WRITE", "CAP_KILL"] for k in ("bounding", "effective", "permitted")}
    st = _status(runtime, bundle, caps, {"uid": 0, "gid": 0})
    assert st["CapBnd"] == st["CapEff"] == st["CapPrm"] == _mask("CAP_AUDIT_WRITE", "CAP_KILL")


def test_ungrantable_ambient_is_only_a_debug_line(runtime: Runtime, bundle: Bundle) -> None:
    """runc ignores the kernel's EINVAL for such an ambient capability silently; `runc spec`,
    Docker and buildah configs all ask for some (issue 12, defect 3)."""
    caps = {"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "ambient": ["CAP_KILL"]}
    bundle.write(base_config(capabilities=caps))
    res = runtime("run", "-b", str(bundle.path), "amb")
    assert res.returncode == 0
    assert res.stderr == ""
    res = runtime("run", "-b", str(bundle.path), "amb", global_args=("--debug",))
    assert res.returncode == 0
    assert "debug: process.capabilities.ambient: CAP_KILL" in res.stderr


def test_unknown_capability_is_skipped_with_a_warning(runtime: Runtime, bundle: Bundle) -> None:
    """config.md "Process": a capability that cannot be mapped MUST be logged as a warning;
    runtimes SHOULD NOT fail (runc: "ignoring unknown or unavailable capabilities")."""
    bundle.write(base_config(args=["grep", "^CapBnd", "/proc/self/status"],
                             capabilities={"bounding": ["CAP_KILL", "CAP_MADE_UP"]}))
    res = runtime("run", "-b", str(bundle.path), "unk")
    assert res.returncode == 0, res.stderr
    assert int(res.stdout.split(":\t")[1], 16) == _mask("CAP_KILL")
    assert "warning: process.capabilities: ignoring unknown or unavailable capabilities " \
           "CAP_MADE_UP" in res.stderr
    assert_nothing_left(runtime, "unk", bundle)
