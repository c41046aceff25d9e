"""pyoci.config.fastcheck: the fast valid/invalid verdict must be jsonschema's verdict.

The fast check decides alone only when it says "valid", so a wrong "valid" would let a bad
config through and a wrong "invalid" would merely cost the jsonschema import; the tests
demand exact agreement either way, on

* every document of tests/unit/test_schemas.py (its module-level documents and the
  documents of its parametrized cases), the reference configs and process files;
* a few hundred seeded random mutations of valid documents (wrong types, dropped keys, bad
  enum values, negative numbers, 1.0 and true for integers, broken patterns, ...), many of
  them deep in linux.resources and linux.seccomp;

and check that the fallback keeps today's messages and that a valid bundle never imports
jsonschema.
"""

from __future__ import annotations

import copy
import json
import math
import random
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from pyoci.config import schema as schema_mod
from pyoci.config.bundle import validate_document
from pyoci.config.fastcheck import IMPLEMENTED, Checker, subschema
from pyoci.errors import ConfigError
from tests.helpers import BASE_CONFIG, REFERENCE_CONFIGS, REPO
from tests.unit import test_schemas as ts

Target = tuple[str, str | None]  # (schema name, $ref or None)
CONFIG: Target = ("config", None)
PROCESS: Target = ("config", "#/$defs/Process")
RESOURCES: Target = ("config", "#/$defs/LinuxResources")
STATE: Target = ("state", None)
FEATURES: Target = ("features", None)


def load(name: str) -> dict[str, Any]:
    return json.loads((REPO / "schemas" / f"{name}.schema.json").read_text())


SCHEMAS = {name: load(name) for name in ("config", "state", "features")}


# jsonschema with pyoci's one deliberate change: "integer" excludes 1.0 (runc's Go decoding
# refuses it; see pyoci/config/fastcheck.py).
Strict = schema_mod.strict_validator_class()


def oracle(target: Target) -> Draft202012Validator:
    """jsonschema on the schema, or on one $defs entry, built independently of pyoci."""
    name, ref = target
    schema = SCHEMAS[name]
    return Strict({"$defs": schema["$defs"], "$ref": ref} if ref else schema)


ORACLES = {t: oracle(t) for t in (CONFIG, PROCESS, RESOURCES, STATE, FEATURES)}
CHECKERS = {t: Checker(SCHEMAS[t[0]], t[1]) for t in ORACLES}


def assert_agrees(target: Target, doc: Any) -> bool:
    """The fast verdict is given (not unsure) and equals jsonschema's; returns it."""
    expected = ORACLES[target].is_valid(doc)
    got = CHECKERS[target].verdict(doc)
    assert got is not None, f"unsure on our own schema: {json.dumps(doc)[:300]}"
    assert got == expected, f"fastcheck {got}, jsonschema {expected}: {json.dumps(doc)[:300]}"
    return got


# ----------------------------------------------------------------------- the documents


def parametrized_documents(test: Any) -> list[Any]:
    """The first argument value of every case of a @pytest.mark.parametrize'd test."""
    docs = []
    for mark in getattr(test, "pytestmark", []):
        if mark.name == "parametrize":
            for case in mark.args[1]:
                values = case.values if hasattr(case, "values") else case
                docs.append(values[0] if isinstance(values, tuple) else values)
    return docs


def schema_test_documents() -> list[tuple[Target, Any]]:
    docs: list[tuple[Target, Any]] = [
        (CONFIG, ts.MINIMAL_CONFIG), (CONFIG, ts.FULL_CONFIG),
        (PROCESS, ts.MINIMAL_PROCESS), (PROCESS, ts.FULL_PROCESS),
        (RESOURCES, ts.FULL_CONFIG["linux"]["resources"]),
        (STATE, ts.VALID_STATE), (FEATURES, ts.FULL_FEATURES),
    ]
    docs += [(CONFIG, doc) for _, doc, *_ in ts.INVALID_CONFIGS]
    for test, target in (
        (ts.test_valid_config_variants, CONFIG),
        (ts.test_invalid_process_file_rejected, PROCESS),
        (ts.test_valid_state, STATE),
        (ts.test_invalid_state, STATE),
        (ts.test_valid_features, FEATURES),
        (ts.test_invalid_features, FEATURES),
    ):
        found = parametrized_documents(test)
        assert found, f"no cases found in {test.__name__}"
        docs += [(target, doc) for doc in found]
    return docs


def reference_documents() -> list[tuple[Target, Any]]:
    if not REFERENCE_CONFIGS.is_dir():
        return []
    return [(PROCESS if "process" in p.name else CONFIG, json.loads(p.read_text()))
            for p in sorted(REFERENCE_CONFIGS.glob("*.json"))]


def test_schema_test_documents_agree() -> None:
    docs = schema_test_documents()
    verdicts = [assert_agrees(target, doc) for target, doc in docs]
    assert len(docs) > 150
    # both answers are exercised, not just one
    assert verdicts.count(True) > 20 and verdicts.count(False) > 100


def test_reference_documents_are_valid_fast() -> None:
    docs = reference_documents()
    if not docs:
        pytest.skip(f"no reference configs in {REFERENCE_CONFIGS}")
    for target, doc in docs:
        assert assert_agrees(target, doc) is True
    assert assert_agrees(CONFIG, copy.deepcopy(BASE_CONFIG)) is True


# ----------------------------------------------------------------------- random mutations

# Replacement values: every JSON type, integer edge cases, 1.0 (an integer to jsonschema),
# true (never an integer), NaN and infinities (numbers; NaN passes any bound).
ODD_VALUES: list[Any] = [
    True, False, None, 0, 1, -1, -2, 1.0, 0.0, -1.0, 1.5, 2**31, 2**32, 2**63, 2**64, -2**63 - 1,
    math.nan, math.inf, -math.inf, "", "x", "/abs", "relative", "1.3", "1.3.0", "a\nb",
    "0-3,7", "0-", "rw", "rwx", "2MB", "2mb", "MB:0=100", [], [""], ["a"], [1], {}, {"k": "v"},
    {"k": 1},
]


def walk_paths(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from walk_paths(value, (*path, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from walk_paths(value, (*path, i))


def get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def mutate_value(rng: random.Random, value: Any) -> Any:
    """A plausible mistake for ``value``: a near miss of its own kind or another type."""
    if rng.random() < 0.4:
        return rng.choice(ODD_VALUES)
    if isinstance(value, bool):
        return rng.choice([int(value), str(value).lower(), None])
    if isinstance(value, int):
        return rng.choice([-value - 1, -1, value + 0.5, float(value), value * 2**33, str(value),
                           -2**64, 2**64])
    if isinstance(value, float):
        return rng.choice([int(value), -value - 1.0, math.nan])
    if isinstance(value, str):
        return rng.choice(["", value.upper(), "X" + value, value + "\n", value[1:], "/" + value,
                           value + "-", 7])
    if isinstance(value, list):
        if value and rng.random() < 0.5:
            return [*value, rng.choice([*value, rng.choice(ODD_VALUES)])]
        return [] if rng.random() < 0.5 else {str(i): v for i, v in enumerate(value)}
    if isinstance(value, dict):
        return list(value.values()) if rng.random() < 0.3 else {}
    return rng.choice(ODD_VALUES)


def mutate(rng: random.Random, doc: Any, focus: tuple[str, ...] = ()) -> Any:
    """A deep copy of ``doc`` with one or two random mistakes, preferably under ``focus``."""
    out = copy.deepcopy(doc)
    for _ in range(rng.choice((1, 1, 2))):
        paths = [p for p in walk_paths(out) if p]
        focused = [p for p in paths if p[:len(focus)] == focus] if focus else []
        path = rng.choice(focused or paths)
        parent, key = get(out, path[:-1]), path[-1]
        action = rng.random()
        if action < 0.15 and isinstance(parent, dict):
            del parent[key]  # may drop a required member, or one named by dependentRequired
        elif action < 0.25 and isinstance(parent, dict):
            parent["x-unknown-" + str(rng.randrange(99))] = rng.choice(ODD_VALUES)
        elif action < 0.30 and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        else:
            parent[key] = mutate_value(rng, parent[key])
    return out


def mutation_bases() -> list[tuple[Target, Any, tuple[str, ...]]]:
    """Valid documents and the subtree their mutations should mostly hit."""
    full = ts.FULL_CONFIG
    bases: list[tuple[Target, Any, tuple[str, ...]]] = [
        (CONFIG, BASE_CONFIG, ()),
        (CONFIG, full, ()),
        (CONFIG, full, ("linux", "resources")),
        (CONFIG, full, ("linux", "seccomp")),
        (CONFIG, full, ("process",)),
        (CONFIG, full, ("mounts",)),
        (CONFIG, full, ("linux", "devices")),
        (RESOURCES, full["linux"]["resources"], ()),
        (PROCESS, ts.FULL_PROCESS, ()),
        (STATE, ts.VALID_STATE, ()),
        (FEATURES, ts.FULL_FEATURES, ()),
    ]
    for target, doc in reference_documents():
        focus = ("linux", "seccomp") if "seccomp" in doc.get("linux", {}) else ()
        bases.append((target, doc, focus))
    return bases


@pytest.mark.parametrize("seed", range(4))
def test_random_mutations_agree(seed: int) -> None:
    rng = random.Random(seed)
    verdicts = []
    for target, doc, focus in mutation_bases():
        assert assert_agrees(target, doc) is True
        for _ in range(25):
            verdicts.append(assert_agrees(target, mutate(rng, doc, focus)))
    assert len(verdicts) >= 250
    assert verdicts.count(False) > 100 and verdicts.count(True) > 10


def test_deep_mistakes_are_caught() -> None:
    """Hand-picked mistakes the random ones may miss, each invalid to both checkers."""
    cases = [
        ("linux", "resources", "memory", "limit", -2),
        ("linux", "resources", "memory", "swappiness", 1.5),
        ("linux", "resources", "cpu", "shares", True),
        ("linux", "resources", "cpu", "cpus", "0-"),
        ("linux", "resources", "pids", "limit", "50"),
        ("linux", "resources", "hugepageLimits", 0, "pageSize", "2mb"),
        ("linux", "resources", "devices", 0, "access", "rwx"),
        ("linux", "resources", "blockIO", "weightDevice", 0, "weight", 2**16),
        ("linux", "seccomp", "defaultAction", "SCMP_ACT_NOPE"),
        ("linux", "seccomp", "syscalls", 0, "names", "read"),
        ("linux", "seccomp", "syscalls", 2, "args", 0, "op", "SCMP_CMP_WHAT"),
        ("linux", "seccomp", "syscalls", 2, "args", 0, "value", -1),
        ("linux", "seccomp", "architectures", 0, "SCMP_ARCH_Z80"),
        ("process", "user", "uid", 2**32),
        ("process", "rlimits", 0, "hard", -1),
        ("hooks", "poststart", 0, "path", "relative"),
        ("hooks", "poststart", 0, "timeout", 0),
    ]
    for *path, bad in cases:
        doc = copy.deepcopy(ts.FULL_CONFIG)
        get(doc, tuple(path[:-1]))[path[-1]] = bad
        assert assert_agrees(CONFIG, doc) is False, path


@pytest.mark.parametrize(
    ("keyword_schema", "instance", "expected"),
    [
        ({"type": "integer"}, 1.0, False),  # written as a float: refused, as runc does
        ({"type": "integer"}, 1.5, False),
        ({"type": "integer"}, True, False),  # booleans are not integers
        ({"type": "number"}, False, False),
        ({"type": "number", "minimum": 0}, math.nan, True),  # NaN < 0 is false
        ({"type": "integer", "maximum": 2**64 - 1}, 2**64, False),
        ({"type": "integer", "maximum": 2**64 - 1}, 18446744073709551615.0, False),  # 2.0**64
        ({"pattern": "b"}, "abc", True),  # a search, not a full match
        ({"pattern": "^b"}, "abc", False),
        ({"pattern": "^b"}, 7, True),  # pattern ignores non-strings
        ({"minLength": 2}, "é", False),  # code points
        ({"enum": ["1"]}, 1, False),
        ({"type": ["array", "null"]}, None, True),
        ({"required": ["a"]}, [], True),  # object keywords ignore non-objects
        ({"additionalProperties": {"type": "string"}}, {"a": 1}, False),
        ({"properties": {"a": True}, "additionalProperties": False}, {"a": 1}, True),
        ({"properties": {"a": True}, "additionalProperties": False}, {"b": 1}, False),
        ({"propertyNames": {"minLength": 1}}, {"": 1}, False),
        ({"dependentRequired": {"a": ["b"]}}, {"a": 1}, False),
        ({"anyOf": [{"required": ["a"]}, {"required": ["b"]}]}, {"b": 1}, True),
        ({"if": {"required": ["a"]}, "then": {"required": ["b"]}}, {"a": 1}, False),
        ({"if": {"required": ["a"]}, "else": {"required": ["b"]}}, {}, False),
        ({"then": False}, 1, True),  # then without if does nothing
        ({"$ref": "#/$defs/D", "minimum": 3, "$defs": {"D": {"maximum": 5}}}, 6, False),
        ({"$ref": "#/$defs/D", "minimum": 3, "$defs": {"D": {"maximum": 5}}}, 2, False),
        ({"items": {"type": "string"}, "minItems": 1}, [], False),
        ({"exclusiveMinimum": 0}, 0, False),
    ],
)
def test_keyword_semantics_match_jsonschema(
    keyword_schema: dict[str, Any], instance: Any, expected: bool
) -> None:
    assert Strict(keyword_schema).is_valid(instance) is expected
    assert Checker(keyword_schema).verdict(instance) is expected


# ----------------------------------------------------------------------- unsure, never valid


@pytest.mark.parametrize(
    ("unsure_schema", "instance"),
    [
        ({"x-vendor-keyword": 1}, {}),  # jsonschema ignores it; we do not guess
        ({"type": "object", "properties": {"a": {"multipleOf": 2}}}, {"a": 4}),
        ({"const": "a"}, "a"),
        ({"oneOf": [True]}, 1),
        ({"allOf": [True]}, 1),
        ({"not": False}, 1),
        ({"uniqueItems": True}, [1]),
        ({"patternProperties": {"^a": True}}, {"a": 1}),
        ({"format": "uri"}, "x"),
        ({"enum": [1, "a"]}, 1),  # non-string enum members
        ({"type": "integer-ish"}, 1),
        ({"minimum": "0"}, 1),
        ({"$ref": "#/definitions/X", "definitions": {"X": True}}, 1),
        ({"$ref": "other.json#/$defs/X"}, 1),
        ({"$ref": "#/$defs/Missing", "$defs": {}}, 1),
        ({"$ref": "#/$defs/a~1b", "$defs": {"a/b": True}}, 1),
        ({"$schema": "http://json-schema.org/draft-07/schema#"}, 1),
        ({"properties": {"a": {"$defs": {}}}}, {"a": 1}),
        ({"properties": {"a": {"$id": "urn:x"}}}, {"a": 1}),
        ({"items": [True]}, [1]),
        ({"type": "number"}, Decimal("1")),  # json.loads never gives a Decimal
    ],
)
def test_unimplemented_makes_it_unsure(unsure_schema: dict[str, Any], instance: Any) -> None:
    assert Checker(unsure_schema).verdict(instance) is None


def test_unreached_subschemas_are_not_judged() -> None:
    """Only what the document reaches is audited: an unknown keyword elsewhere cannot
    change the verdict (jsonschema never evaluates it either)."""
    schema = {"properties": {"a": {"type": "string"}, "b": {"multipleOf": 2}}}
    assert Checker(schema).verdict({"a": "x"}) is True
    assert Checker(schema).verdict({"a": 1}) is False
    assert Checker(schema).verdict({"b": 4}) is None


def test_our_schemas_use_only_implemented_keywords() -> None:
    """A new keyword in schemas/ would make every check unsure (and slow): say so here."""
    def schema_objects(node: Any, is_schema: bool = True) -> Iterator[dict[str, Any]]:
        if not isinstance(node, dict) or not is_schema:
            return
        yield node
        for key, value in node.items():
            if key in ("properties", "$defs"):
                for sub in value.values():
                    yield from schema_objects(sub)
            elif key == "anyOf":
                for sub in value:
                    yield from schema_objects(sub)
            elif isinstance(value, dict) and key not in ("dependentRequired",):
                yield from schema_objects(value)

    for name, schema in SCHEMAS.items():
        for node in schema_objects(schema):
            assert set(node) <= IMPLEMENTED, (name, set(node) - IMPLEMENTED)


# ----------------------------------------------------------------------- wiring


def jsonschema_problems(doc: Any, name: str, ref: str | None) -> list[tuple[str, str]]:
    """What schema_problems returned before the fast path: every jsonschema error."""
    validator = Strict(subschema(load(name), ref))
    return sorted({schema_mod._explain(e) for e in validator.iter_errors(doc)})


def test_schema_problems_unchanged_by_fast_path() -> None:
    docs = schema_test_documents() + reference_documents()
    for (name, ref), doc in docs:
        assert schema_mod.schema_problems(doc, name, ref) == jsonschema_problems(doc, name, ref)


def test_validate_document_messages_unchanged() -> None:
    doc = copy.deepcopy(BASE_CONFIG)
    doc["process"]["args"] = "sh"
    doc["process"]["user"]["uid"] = 1.0  # written as a float: refused, as runc does
    doc["process"]["user"]["gid"] = True
    doc["linux"]["resources"] = {"memory": {"limit": -2}}
    with pytest.raises(ConfigError) as info:
        validate_document(doc, None)
    assert sorted(info.value.problems) == [
        ("linux.resources.memory.limit", "expected a number >= -1, found -2 (integer)"),
        ("process.args", 'expected array, found "sh" (string)'),
        ("process.user.gid", "expected integer, found true (boolean)"),
        ("process.user.uid", "expected integer, found 1.0 (number)"),
    ]


RUN_LOAD_BUNDLE = textwrap.dedent("""
    import json, sys
    from pyoci.config.bundle import load_bundle
    from pyoci.errors import ConfigError
    try:
        load_bundle(sys.argv[1])
        out = {"problems": None}
    except ConfigError as exc:
        out = {"problems": exc.problems, "text": str(exc)}
    out["heavy"] = sorted(m for m in ("jsonschema", "referencing") if m in sys.modules)
    print(json.dumps(out))
""")


def load_bundle_in_child(bundle: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", RUN_LOAD_BUNDLE, str(bundle)], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(proc.stdout)


def test_valid_bundle_does_not_import_jsonschema(tmp_path: Path) -> None:
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(BASE_CONFIG))
    assert load_bundle_in_child(tmp_path) == {"problems": None, "heavy": []}


def test_invalid_bundle_falls_back_to_jsonschema_messages(tmp_path: Path) -> None:
    (tmp_path / "rootfs").mkdir()
    doc = copy.deepcopy(BASE_CONFIG)
    doc["hostname"] = 7
    doc["process"]["cwd"] = "relative"
    doc["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_NOPE"}
    (tmp_path / "config.json").write_text(json.dumps(doc))
    out = load_bundle_in_child(tmp_path)
    assert out["heavy"] == ["jsonschema", "referencing"]
    problems = [tuple(p) for p in out["problems"]]
    assert problems == jsonschema_problems(doc, "config", None)
    assert ("hostname", "expected string, found 7 (integer)") in problems
    assert ("process.cwd", 'expected an absolute path, found "relative" (string)') in problems
    assert "config.json: linux.seccomp.defaultAction: expected one of" in out["text"]


# ----------------------------------------------------------------------- timing (printed)

TIME_ONE = textwrap.dedent("""
    import json, sys, time
    doc = json.load(open(sys.argv[1]))
    t0 = time.perf_counter()
    if sys.argv[2] == "fast":
        from pyoci.config.schema import schema_problems
        ok = schema_problems(doc) == []
    else:
        import jsonschema
        from pyoci.config.schema import load_schema
        ok = jsonschema.Draft202012Validator(load_schema("config")).is_valid(doc)
    print(json.dumps([ok, (time.perf_counter() - t0) * 1e3]))
""")


def test_print_timing(tmp_path: Path) -> None:
    """Fresh-process import + first check of BASE_CONFIG, fast path vs jsonschema (printed,
    not asserted: the machine's load decides the numbers)."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(BASE_CONFIG))
    for how in ("fast", "jsonschema"):
        runs = []
        for _ in range(3):
            proc = subprocess.run([sys.executable, "-c", TIME_ONE, str(path), how], cwd=REPO,
                                  capture_output=True, text=True, timeout=60, check=True)
            ok, ms = json.loads(proc.stdout)
            assert ok is True
            runs.append(ms)
        print(f"\n{how}: import + check of BASE_CONFIG, best of 3: {min(runs):.2f} ms")


# ------------------------------------------------- the schemas' patterns without re


def _pattern_corpus(rng: random.Random) -> Iterator[str]:
    """Strings near every pattern's edge: versions, cpu lists, sizes, access strings, with
    newlines (Python's ``$`` matches before a final one), leading zeros, empty parts."""
    yield from ["", "\n", "\n\n", "/", "/x\n", "x/", "1.0.0", "1.0.0\n", "1.0.0\n\n",
                "01.0.0", "1.0", "1.0.0-", "1.0.0-rc.1+build.5", "1.0.0-01", "1.0.0-0a",
                "1.0.0+", "1.0.0+a..b", "1.0.0-alpha..1", "0-3", "0,2,4-7", "0-", ",1", "1,",
                "2MB", "1GB\n", "MB", "2mB", "12XB", "MB:0=70", "MB:\n", "MB:a\nb", "rwm",
                "rwmx", "rw\n", "a\nb", "é", "1.0.0-é", "١.0.0", "١"]
    alphabet = "0123456789.-+,/:abMBKGrwmz\n é١"
    for _ in range(4000):
        yield "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
    for _ in range(2000):  # mostly well-formed versions, one character changed
        text = (f"{rng.randint(0, 20)}.{rng.randint(0, 20)}.{rng.randint(0, 20)}"
                + rng.choice(["", "-rc.1", "-0", "-alpha.beta", "-x-y"])
                + rng.choice(["", "+b.7", "+exp.sha.5114f85"]))
        i = rng.randrange(len(text) + 1)
        yield text[:i] + rng.choice(alphabet) + text[i + 1:]


def test_every_schema_pattern_has_a_predicate() -> None:
    from pyoci.config.patterns import KNOWN

    used: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                used.add(node["pattern"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for path in (REPO / "schemas").glob("*.schema.json"):
        walk(json.loads(path.read_text()))
    assert used and used <= KNOWN.keys(), used - KNOWN.keys()


def test_pattern_predicates_agree_with_re() -> None:
    import re

    from pyoci.config.patterns import KNOWN

    corpus = list(_pattern_corpus(random.Random(5)))
    for pattern, predicate in KNOWN.items():
        compiled = re.compile(pattern)
        matched = 0
        for text in corpus:
            expected = compiled.search(text) is not None
            matched += expected
            assert predicate(text) is expected, (pattern, text)
        assert 0 < matched < len(corpus), pattern  # the corpus reaches both answers


def test_an_unknown_pattern_still_works_through_re() -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "pattern": "^a+$"}
    assert Checker(schema).verdict("aaa") is True
    assert Checker(schema).verdict("ab") is False
    assert Checker(schema | {"pattern": "(unclosed"}).verdict("x") is None
