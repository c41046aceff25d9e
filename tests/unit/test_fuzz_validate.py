"""Fuzzing `validate` (issue 11, "Done means"): 10,000 seeded mutations of real configs go
through the whole in-process validation path -- parse (bounded, depth-checked), schema,
semantic checks, the model, and the seccomp compilation of what validates -- and a small
sample through the `pyoci validate` command line. The only acceptable outcome besides
"valid" is a PyociError (one clear message, exit 1): no other exception, no traceback.

Deterministic (seeded) and bounded in time (about 20 s on a 2-core VM). Mutations: a value
replaced by one of another JSON type or an edge value (1.0, -0.0, 1e400, 2**64, "", NUL,
long strings), a key dropped or added, list items duplicated, a deep nest planted, and
textual damage of the JSON itself (truncation, a flipped byte).
"""

from __future__ import annotations

import copy
import json
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyoci.config.bundle import parse_document, validate_document
from pyoci.config.loader import load_spec
from pyoci.errors import PyociError
from tests.helpers import BASE_CONFIG, REFERENCE_CONFIGS, REPO

SEED = 20261207
COUNT = 10_000
CLI_SAMPLE = 20

ODD: list[Any] = [
    None, True, False, 0, 1, -1, 1.0, -0.0, 0.5, 1e400, -1e400, 2**31, 2**32, 2**63, 2**64,
    -2**63 - 1, 10**30, "", "\x00", "a\nb", "/", "..", "../../etc", "é€😀", "x" * 5000,
    [], [None], [1.0], {}, {"x": 1}, {"": None}, ["x"] * 50,
]


_DEEP = "@@deep@@"  # planted as a string, expanded in the encoded text (no recursion here)


def _expand_deep(raw: str) -> str:
    def nest(m: re.Match[str]) -> str:
        depth = int(m.group(1)) // 2
        return '{"k": [' * depth + "1" + "]}" * depth

    return re.sub(r'"@@deep@@(\d+)[^"]*"', nest, raw)


def bases() -> list[dict[str, Any]]:
    from tests.unit import test_schemas as ts

    docs = [copy.deepcopy(BASE_CONFIG), copy.deepcopy(ts.FULL_CONFIG)]
    for path in sorted(Path(REFERENCE_CONFIGS).glob("*.json")):
        doc = json.loads(path.read_text())
        if "process" not in path.name:
            docs.append(doc)
    return docs


def paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if len(prefix) > 12:
        return  # not into a planted deep nest
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths(v, (*prefix, i))


def get(doc: Any, path: tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def mutate(rng: random.Random, base: str) -> Any:
    doc = json.loads(base)  # a deep copy, faster than copy.deepcopy
    for _ in range(rng.choice((1, 1, 2, 3))):
        all_paths = [p for p in paths(doc) if p]
        if not all_paths:
            break
        path = rng.choice(all_paths)
        parent, key = get(doc, path[:-1]), path[-1]
        r = rng.random()
        if r < 0.15 and isinstance(parent, dict):
            del parent[key]
        elif r < 0.22 and isinstance(parent, dict):
            parent[rng.choice(["x-new", "linux", "process", "hooks", "vm", "annotations"])] = \
                rng.choice(ODD)
        elif r < 0.28 and isinstance(parent, list):
            parent.append(json.loads(json.dumps(parent[key])))
        elif r < 0.31:
            parent[key] = f"{_DEEP}{rng.choice((30, 62, 66, 200, 990, 5000))}"
        elif r < 0.40 and isinstance(parent[key], (int, float)) and \
                not isinstance(parent[key], bool):
            parent[key] = rng.choice([float(parent[key]), -parent[key], parent[key] + 2**64,
                                      parent[key] - 1])
        elif r < 0.50 and isinstance(parent[key], str):
            s = parent[key]
            parent[key] = rng.choice([s + "\x00", s[: len(s) // 2], "/" + s, s * 3, "",
                                      s.upper(), "../" + s])
        else:
            parent[key] = copy.deepcopy(rng.choice(ODD))
    return doc


#: How often each base is mutated: the small configs more, the big ones (a full seccomp
#: profile: jsonschema lists a broken one's errors in ~7 ms) less, to bound the run time.
WEIGHTS = (10, 1, 3, 1, 1, 3, 3)


def documents(rng: random.Random, count: int) -> Iterator[bytes]:
    """Encoded documents: most are mutated configs, some have textual damage."""
    docs = [json.dumps(doc) for doc in bases()]
    weights = [WEIGHTS[i] if i < len(WEIGHTS) else 1 for i in range(len(docs))]
    for _ in range(count):
        base = rng.choices(docs, weights)[0]
        raw = _expand_deep(json.dumps(mutate(rng, base))).encode()
        r = rng.random()
        if r < 0.05:
            raw = raw[: rng.randrange(len(raw) + 1)]
        elif r < 0.10 and raw:
            i = rng.randrange(len(raw))
            raw = raw[:i] + bytes([rng.randrange(256)]) + raw[i + 1:]
        yield raw


def check_one(raw: bytes, bundle: str) -> str:
    """'valid' or 'error'; any exception other than PyociError propagates (a failure)."""
    try:
        doc = parse_document(raw, "config.json")
        if not isinstance(doc, dict):
            return "error"
        validate_document(doc, bundle)
        spec = load_spec(doc)
        if spec.linux.seccomp is not None:
            from pyoci.executors.seccomp import compile_filter

            compile_filter(spec.linux.seccomp)
    except PyociError:
        return "error"
    return "valid"


@pytest.fixture(scope="module")
def fuzz_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz")
    (path / "rootfs").mkdir()
    return path


CHUNKS = 4


def _run_chunk(args: tuple[int, str]) -> tuple[dict[str, int], str | None]:
    """One seeded quarter of the documents (in a worker process)."""
    chunk, bundle = args
    rng = random.Random(SEED * 100 + chunk)
    outcomes = {"valid": 0, "error": 0}
    for i, raw in enumerate(documents(rng, COUNT // CHUNKS)):
        try:
            outcomes[check_one(raw, bundle)] += 1
        except Exception as exc:  # noqa: BLE001 - the point: name the document that broke it
            return outcomes, (f"chunk {chunk} document {i} (seed {SEED}) raised "
                              f"{type(exc).__name__}: {exc}\n{raw[:400]!r}")
    return outcomes, None


def test_ten_thousand_mutated_configs_never_traceback(fuzz_bundle: Path) -> None:
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map(_run_chunk, [(c, str(fuzz_bundle)) for c in range(CHUNKS)])
    failures = [err for _, err in results if err]
    assert not failures, failures[0]
    outcomes = {k: sum(r[0][k] for r in results) for k in ("valid", "error")}
    assert sum(outcomes.values()) == COUNT
    # The mutations must exercise both outcomes, or the fuzzing proves nothing.
    assert outcomes["valid"] > COUNT // 20 and outcomes["error"] > COUNT // 2, outcomes


def test_cli_sample_never_tracebacks(fuzz_bundle: Path, tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "rootfs").mkdir()
    for i, raw in enumerate(documents(rng, CLI_SAMPLE)):
        (bundle / "config.json").write_bytes(raw)
        res = subprocess.run([sys.executable, "-m", "pyoci", "validate", "--bundle",
                              str(bundle)], cwd=REPO, capture_output=True, text=True,
                             timeout=60)
        assert "Traceback" not in res.stderr, f"document {i}: {res.stderr[-3000:]}"
        assert res.returncode in (0, 1), (i, res.returncode, res.stderr[-1000:])
        if res.returncode == 1:
            assert res.stderr.startswith("pyoci: "), res.stderr[-1000:]
