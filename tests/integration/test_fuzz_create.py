"""Fuzzing `create` (issue 11, "Done means"): 50 seeded mutations of a busybox config go
through the real `pyoci create` (then `delete --force` when it succeeded). Every outcome
must be success or one clear error (exit 1, "pyoci: ..."), never a traceback, and nothing
may be left: no state directory, cgroup, mount or process.

The mutations stay on fields that cannot reach outside the test (no bind sources, hooks,
devices, cgroupsPath or namespace paths): values of other types, edge numbers (1.0, -0.0,
2**64), odd strings, dropped keys, namespaces removed, rlimits, sysctls of the container's
own namespaces, resources, seccomp rules.
"""

from __future__ import annotations

import copy
import json
import random

import pytest

from tests.helpers import Bundle, Runtime, assert_nothing_left, base_config

pytestmark = pytest.mark.integration

SEED = 20261207
SAMPLE = 50

ODD = [None, True, 0, 1, -1, 1.0, -0.0, 2**31, 2**64, -2**63 - 1, "", "\x00", "é€",
       "x" * 300, [], [1.0], {}, {"x": 1}, "/", "..", "../../x"]

SAFE_SETTINGS = [
    ("process", "args"), ("process", "env"), ("process", "cwd"), ("process", "user", "uid"),
    ("process", "user", "gid"), ("process", "user", "umask"),
    ("process", "user", "additionalGids"), ("process", "rlimits"),
    ("process", "noNewPrivileges"), ("process", "oomScoreAdj"), ("process", "terminal"),
    ("process", "capabilities"), ("hostname",), ("domainname",), ("annotations",),
    ("linux", "sysctl"), ("linux", "maskedPaths"), ("linux", "readonlyPaths"),
    ("linux", "resources"), ("linux", "seccomp"), ("linux", "rootfsPropagation"),
    ("root", "readonly"), ("ociVersion",),
]

GOOD_VALUES = {
    ("process", "rlimits"): [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}],
    ("process", "capabilities"): {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                                  "permitted": ["CAP_KILL"]},
    ("linux", "sysctl"): {"net.ipv4.ip_forward": "0", "kernel.shmmni": "4096"},
    ("linux", "maskedPaths"): ["/proc/kcore", "/nonexistent"],
    ("linux", "readonlyPaths"): ["/proc/sys"],
    ("linux", "resources"): {"pids": {"limit": 100}, "memory": {"limit": 64 << 20}},
    ("linux", "seccomp"): {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
    ("annotations",): {"org.example": "v"},
}


def _set(doc: dict, path: tuple, value: object) -> None:
    for key in path[:-1]:
        doc = doc.setdefault(key, {})
    doc[path[-1]] = value


def _odd_variant(rng: random.Random, value: object) -> object:
    if isinstance(value, dict) and value:
        out = copy.deepcopy(value)
        key = rng.choice(list(out))
        out[key] = _odd_variant(rng, out[key]) if rng.random() < 0.6 else rng.choice(ODD)
        return out
    if isinstance(value, list) and value:
        out = copy.deepcopy(value)
        i = rng.randrange(len(out))
        out[i] = _odd_variant(rng, out[i])
        return out
    if isinstance(value, int) and not isinstance(value, bool):
        return rng.choice([float(value), -value - 1, value + 2**64, str(value)])
    return rng.choice(ODD)


def fuzzed_config(rng: random.Random) -> dict:
    cfg = base_config(args=["sleep", "300"])
    for _ in range(rng.choice((1, 2))):
        path = rng.choice(SAFE_SETTINGS)
        good = GOOD_VALUES.get(path)
        r = rng.random()
        if r < 0.3 and good is not None:
            _set(cfg, path, copy.deepcopy(good))  # valid, exercises the setting
        elif r < 0.6 and good is not None:
            _set(cfg, path, _odd_variant(rng, good))
        elif r < 0.7:
            cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"]
                                          if n["type"] == "mount" or rng.random() < 0.7]
        else:
            _set(cfg, path, rng.choice(ODD))
    return cfg


def test_fuzzed_creates_never_traceback_and_leave_nothing(runtime: Runtime,
                                                          bundle: Bundle) -> None:
    rng = random.Random(SEED)
    outcomes = {0: 0, 1: 0}
    for i in range(SAMPLE):
        cfg = fuzzed_config(rng)
        bundle.write(cfg)
        cid = f"fz{i}"
        res = runtime("create", "-b", str(bundle.path), cid, timeout=60)
        detail = f"sample {i}: {json.dumps(cfg)[:600]}\n{res.stderr[-2000:]}"
        assert "Traceback" not in res.stderr, detail
        assert res.returncode in (0, 1), detail
        outcomes[res.returncode] += 1
        if res.returncode == 0:
            runtime("delete", "--force", cid, check=True)
        else:
            assert res.stderr.startswith("pyoci: ") or "level=error" in res.stderr, detail
        assert_nothing_left(runtime, cid, bundle)
    assert outcomes[0] >= 5 and outcomes[1] >= 5, outcomes
