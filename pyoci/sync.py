"""The parent/child conversation of `create`: explicit messages over a socketpair.

Each message is one JSON object on one line. The child says what it needs or where it
is ("userns", "pid", "hooks", "ready"); the parent answers ("userns-done", "hooks-done").
A child failure is an "error" message naming the step, so the parent can say exactly what
went wrong; end of file without one means the child died without a word.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from pyoci.errors import PyociError


class ChannelClosed(PyociError):
    pass


class Channel:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = b""

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return cls(a), cls(b)

    def send(self, kind: str, **fields: Any) -> None:
        self.sock.sendall(json.dumps({"type": kind, **fields}).encode() + b"\n")

    def recv(self) -> dict[str, Any]:
        while b"\n" not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ChannelClosed("the container's init exited without saying why")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def expect(self, kind: str) -> dict[str, Any]:
        msg = self.recv()
        if msg["type"] != kind:
            raise PyociError(f"protocol error: expected {kind!r}, got {msg['type']!r}")
        return msg

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()
