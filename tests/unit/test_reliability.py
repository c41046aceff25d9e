"""Unit checks for issue 11's reliability items that need no container: the parent/child
channel is linear in the message size, and bounded, non-recursive reading of documents."""

from __future__ import annotations

import os
import threading
import time

import pytest

from pyoci import jsonio
from pyoci.config.bundle import parse_document
from pyoci.errors import ConfigError
from pyoci.sync import Channel


def test_channel_is_linear_in_message_size() -> None:
    """A 64 MiB message (an annotation in "hooks-done") took tens of seconds when every
    64 KiB chunk rescanned and recopied the whole buffer; linear, it takes well under one."""
    a, b = Channel.pair()
    big = "x" * (64 << 20)
    sender = threading.Thread(target=lambda: (a.send("hooks-done", state={"big": big}),
                                              a.send("next")))
    t0 = time.monotonic()
    sender.start()
    try:
        msg = b.recv()
        assert b.recv()["type"] == "next"  # the rest of the buffer is kept intact
    finally:
        sender.join()
        a.close()
        b.close()
    assert msg["type"] == "hooks-done" and len(msg["state"]["big"]) == len(big)
    assert time.monotonic() - t0 < 5


def test_channel_keeps_messages_split_across_chunks() -> None:
    a, b = Channel.pair()
    try:
        a.sock.sendall(b'{"type": "one"}\n{"type": "t')
        assert b.recv()["type"] == "one"
        a.sock.sendall(b'wo", "n": 2}\n{"type": "three"}\n')
        assert b.recv() == {"type": "two", "n": 2}
        assert b.recv()["type"] == "three"
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000,
                                  '{"a":' * 5000 + "1" + "}" * 5000])
def test_deep_documents_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_document(text.encode(), "config.json")
    assert "nested more than 64 levels deep" in str(info.value)


def test_too_deep_names_the_top_level_key() -> None:
    doc: dict = {"ok": [[1]], "deep": []}
    node = doc["deep"]
    for _ in range(70):
        node.append([])
        node = node[0]
    assert jsonio.too_deep(doc) == "deep"
    assert jsonio.too_deep({"ok": [[1]]}) is None
    assert jsonio.too_deep(5) is None


def test_read_bounded_stops_at_the_limit() -> None:
    fd = os.open("/dev/zero", os.O_RDONLY)
    try:
        with pytest.raises(jsonio.TooLarge):
            jsonio.read_bounded(fd, 3 << 20)
    finally:
        os.close(fd)
    r, w = os.pipe()
    os.write(w, b'{"a": 1}')
    os.close(w)
    try:
        assert jsonio.read_bounded(r) == b'{"a": 1}'
    finally:
        os.close(r)
