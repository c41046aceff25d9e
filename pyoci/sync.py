"""The parent/child conversation of `create` and `exec`: explicit messages over a socketpair.

Each message is one JSON object on one line. The child says what it needs or where it
is ("userns", "pid", "hooks", "ready"); the parent answers ("userns-done", "hooks-done").
A child failure is an "error" message naming the step, so the parent can say exactly what
went wrong; end of file without one means the child died without a word.
"""

from __future__ import annotations

import _socket
import select
import struct

from pyoci import jsonio, log
from pyoci.errors import PyociError, StepError

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any

# The C socket module: ``import socket`` builds its AddressFamily/SocketKind enums at
# import (enum + re: ~9 ms per create, issue 5); these plain sockets need none of it.
Socket = _socket.socket


def unix_stream_socket() -> Socket:
    """A close-on-exec AF_UNIX stream socket (CPython creates sockets non-inheritable)."""
    return Socket(_socket.AF_UNIX, _socket.SOCK_STREAM)


def send_fds(sock: Socket, data: bytes, fds: list[int]) -> int:
    """sendmsg(2) with the descriptors as SCM_RIGHTS (unix(7)); returns bytes sent."""
    rights = struct.pack(f"{len(fds)}i", *fds)
    return sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])


_INT = struct.calcsize("i")


def recv_fds(sock: Socket, size: int, maxfds: int) -> tuple[bytes, list[int]]:
    """recvmsg(2) keeping every SCM_RIGHTS descriptor that came with the data. (struct,
    not array: the array module imports collections.abc, ~1.5 ms.)"""
    data, ancdata, _flags, _addr = sock.recvmsg(size, _socket.CMSG_SPACE(maxfds * _INT))
    fds: list[int] = []
    for level, kind, payload in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            count = len(payload) // _INT
            fds.extend(struct.unpack(f"{count}i", payload[:count * _INT]))
    return data, fds


class ChannelClosed(PyociError):
    pass


class Channel:
    def __init__(self, sock: Socket) -> None:
        self.sock = sock
        self._buf = b""          # the data after the last complete line
        self._fds: list[int] = []

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        return cls(a), cls(b)

    def send(self, kind: str, **fields: Any) -> None:
        self.sock.sendall(jsonio.dumps({"type": kind, **fields}).encode() + b"\n")

    def send_fd(self, kind: str, fd: int, **fields: Any) -> None:
        """A message carrying one file descriptor (SCM_RIGHTS), e.g. the seccomp notify fd."""
        data = jsonio.dumps({"type": kind, "fds": 1, **fields}).encode() + b"\n"
        sent = send_fds(self.sock, data, [fd])
        if sent < len(data):
            self.sock.sendall(data[sent:])

    def recv(self, watch: int | None = None) -> dict[str, Any]:
        """The next message; one that says ``"fds": n`` gets the received descriptors in
        ``msg["fds"]`` (ancillary data is always collected, so none is dropped).

        ``watch``: a pidfd of the child expected to answer. If it exits without a word,
        its own child may still hold the other end open, so end-of-file would never come:
        the pidfd turning readable with nothing to read ends the wait instead."""
        # Linear in the message size (a 200 MB annotation once took 188 s): each chunk
        # is searched once for the end of line and kept in a list, joined once; the
        # old ``buf += chunk`` / ``b"\n" in buf`` rescanned and copied the whole buffer
        # for every 64 KiB received.
        chunks = [self._buf]
        end = self._buf.find(b"\n")
        size = 1 << 16
        while end < 0:
            if watch is not None:
                sock = self.sock.fileno()
                if sock not in select.select([sock, watch], [], [])[0]:
                    raise ChannelClosed("the child exited without saying why")
            chunk, fds = recv_fds(self.sock, size, 4)
            self._fds.extend(fds)
            if not chunk:
                raise ChannelClosed("the container's init exited without saying why")
            end = chunk.find(b"\n")
            chunks.append(chunk)
            size = min(size * 2, 1 << 22)  # fewer calls for big messages
        data = b"".join(chunks) if len(chunks) > 1 else chunks[0]
        end += len(data) - len(chunks[-1])
        line, self._buf = data[:end], data[end + 1:]
        msg = jsonio.loads(line)
        if msg.get("fds"):
            count = int(msg["fds"])
            msg["fds"], self._fds = self._fds[:count], self._fds[count:]
        return msg

    def expect(self, kind: str | None = None, doing: str | None = None,
               watch: int | None = None) -> dict[str, Any]:
        """The next message, which must be of type ``kind`` (any type if None): the one
        way either side waits for the other.

        An "error" message (only children send them) raises :class:`StepError` naming the
        child's step, so the parent's error says where the setup failed. ``doing``: what
        the other side is busy with, for the parent's side -- end of file then raises
        StepError(doing, ...) too, the child having died without a word. ``watch``: see
        :meth:`recv`."""
        try:
            msg = self.recv(watch)
        except ChannelClosed:
            if doing is None:
                raise
            raise StepError(doing, "the container's init exited unexpectedly") from None
        if doing is not None:
            log.debug(f"create: init says {msg['type']!r} ({doing})")
        if msg["type"] == "error":
            raise StepError(msg["step"], msg["reason"], hook=bool(msg.get("hook")))
        if kind is not None and msg["type"] != kind:
            raise PyociError(f"protocol error: expected {kind!r}, got {msg['type']!r}")
        return msg

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()
