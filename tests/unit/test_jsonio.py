"""pyoci.jsonio against the json module: the hot path's JSON must be json's, byte for byte
(state.json is read by runc-era tools and engines parse `state`), and its errors json's."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from typing import Any

import pytest

from pyoci import jsonio

_SCALARS = [None, True, False, 0, -5, 2**70, 1.5, -0.0, 1e300, float("inf"), float("-inf"),
            "", 'a"b\\c\n\x01\x7f', "é€😀\u2028", "plain"]
_KEYS = ["a", "b", "é", "k\n", 1, 2.5, True, None, ""]


def _value(rng: random.Random, depth: int = 0) -> Any:
    r = rng.random()
    if depth > 4 or r < 0.4:
        return rng.choice(_SCALARS)
    if r < 0.7:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(_KEYS): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


@pytest.mark.parametrize("seed", range(4))
def test_dumps_and_loads_match_json(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(2500):
        doc = _value(rng)
        assert jsonio.dumps(doc) == json.dumps(doc)
        assert jsonio.dumps(doc, indent=2) == json.dumps(doc, indent=2)
        assert jsonio.dumps(doc, indent=1) == json.dumps(doc, indent=1)
        text = json.dumps(doc)
        assert repr(jsonio.loads(text)) == repr(json.loads(text))
        assert repr(jsonio.loads(f" \n{text}\t ".encode())) == repr(json.loads(text))


@pytest.mark.parametrize("bad", ["", " ", "{", "{not json", "[1,]", "1 2", "nul", '"\x01"',
                                 "{'a':1}", '{"a":}', "[1,2", '"abc', "NaN x"])
def test_errors_are_jsons(bad: str) -> None:
    with pytest.raises(ValueError) as ours:
        jsonio.loads(bad)
    with pytest.raises(ValueError) as theirs:
        json.loads(bad)
    assert str(ours.value) == str(theirs.value)
    assert type(ours.value) is type(theirs.value)


def test_errors_without_json_imported() -> None:
    """The C scanner can only build its error once json.decoder is imported: on a fresh
    interpreter a malformed document must still give json's message, not a SystemError."""
    code = ("import sys\nfrom pyoci import jsonio\nassert 'json.decoder' not in sys.modules\n"
            "try:\n    jsonio.loads('{not json')\nexcept ValueError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ("Expecting property name enclosed in double quotes: "
                                  "line 1 column 2 (char 1)")


@pytest.mark.parametrize("doc", [{"a": object()}, [set()], {(1, 2): 1}])
def test_unserializable_is_a_type_error(doc: Any) -> None:
    for indent in (None, 2):
        with pytest.raises(TypeError):
            jsonio.dumps(doc, indent=indent)


def test_encode_string() -> None:
    for text in _SCALARS:
        if isinstance(text, str):
            assert jsonio.encode_string(text) == json.dumps(text)
