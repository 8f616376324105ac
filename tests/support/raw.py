"""HTTP requests and WebSocket frames written byte by byte on raw sockets.

aiohttp's client refuses to send most of what the fuzz tests need (non-ASCII header bytes,
broken chunked encoding, a ``Content-Length`` that lies, invalid UTF-8 in a text frame,
frames that break RFC 6455), so these clients write everything themselves with
``asyncio.open_connection``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

FRAMINGS = ("length", "length", "chunked", "none", "short", "long", "badchunk")
# For authenticated requests: mostly framed right, so that the body reaches the parser.
GOOD_FRAMINGS = ("length",) * 4 + ("chunked",) * 2 + FRAMINGS


@dataclass(frozen=True)
class RawRequest:
    """One HTTP/1.1 request, exactly as written on the socket."""

    method: bytes
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    framing: str = "length"  # see FRAMINGS; "short"/"long": Content-Length lies

    def encode(self) -> bytes:
        head = [self.method + b" " + self.target + b" HTTP/1.1", b"Host: 127.0.0.1"]
        head += [name + b": " + value for name, value in self.headers]
        body = self.body
        if self.framing == "length":
            head.append(b"Content-Length: %d" % len(body))
        elif self.framing == "short":
            head.append(b"Content-Length: %d" % max(0, len(body) // 2))
        elif self.framing == "long":
            head.append(b"Content-Length: %d" % (len(body) + 17))
        elif self.framing in ("chunked", "badchunk"):
            head.append(b"Transfer-Encoding: chunked")
            body = _chunked(body, broken=self.framing == "badchunk")
        # "none": no length at all; what follows the headers is read as the next request
        head.append(b"Connection: close")
        return b"\r\n".join(head) + b"\r\n\r\n" + body


def _chunked(body: bytes, *, broken: bool) -> bytes:
    parts = [body[i : i + 1000] for i in range(0, len(body), 1000)]
    out = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
    if broken:  # a chunk size that is no hex number, then the rest of the body as is
        return b"zz\r\n" + body + b"\r\n0\r\n\r\n"
    return out + b"0\r\n\r\n"


@dataclass(frozen=True)
class Reply:
    status: int | None  # None: the server closed without answering
    body: bytes
    sent_all: bool  # False: the server closed before it had read all we sent


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    data = bytearray()
    try:
        while chunk := await reader.read(65536):
            data += chunk
    except ConnectionError:
        pass  # keep what came before the reset
    return bytes(data)


async def send(port: int, request: RawRequest, within: float = 15) -> Reply:
    """Write ``request`` on a fresh connection and read the answer until the server closes.

    Reading runs while writing: a server may answer (413, 405) and close before a big body
    is all sent, and an answer left unread when its reset arrives would be lost.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = asyncio.ensure_future(_read_all(reader))
    raw, sent_all = request.encode(), True
    try:
        for start in range(0, len(raw), 65536):
            writer.write(raw[start : start + 65536])
            await writer.drain()
        if request.framing == "long":
            writer.write_eof()  # the promised bytes never come
    except OSError:  # ConnectionError, or ENOTCONN when the server already closed
        sent_all = False
    try:
        async with asyncio.timeout(within):
            data = await answer
    finally:
        answer.cancel()
        writer.close()
        with suppress(ConnectionError):
            await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return Reply(None, data, sent_all)
    return Reply(int(parts[1]), body, sent_all)


def describe(request: RawRequest) -> str:
    """A short account of a request for a failure message."""
    headers = ", ".join(f"{n!r}: {v[:60]!r}" for n, v in request.headers)
    return (
        f"{request.method!r} {request.target[:100]!r} [{headers}] {request.framing}, "
        f"{len(request.body)} bytes: {request.body[:120]!r}"
    )


@dataclass
class RawSocket:
    """A WebSocket client that writes frames byte by byte (masked, as clients must)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @classmethod
    async def connect(cls, port: int, path: str) -> RawSocket:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16))
        writer.write(
            b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (path.encode(), key)
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        accept = base64.b64encode(
            hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
        )
        assert b"Sec-WebSocket-Accept: " + accept in head
        return cls(reader, writer)

    def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0) -> None:
        first = (0x80 if fin else 0) | (rsv << 4) | opcode
        length = len(payload)
        if length < 126:
            head = bytes([first, 0x80 | length])
        elif length < 1 << 16:
            head = bytes([first, 0x80 | 126]) + length.to_bytes(2, "big")
        else:
            head = bytes([first, 0x80 | 127]) + length.to_bytes(8, "big")
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(head + mask + masked)

    def send_text(self, text: str | bytes) -> None:
        self.send_frame(
            0x1, text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        )

    async def receive(self) -> tuple[int, bytes] | None:
        """The next frame (opcode, payload), or None when the connection ended without one."""
        try:
            head = await self.reader.readexactly(2)
            length = head[1] & 0x7F
            if length == 126:
                length = int.from_bytes(await self.reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await self.reader.readexactly(8), "big")
            return head[0] & 0x0F, await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError):
            await self.writer.wait_closed()


@dataclass
class Outcome:
    """How the server answered a fuzzed frame: the text frames it sent, and how it closed."""

    frames: list[Any]
    close_code: int | None  # None: still open when we were done; 1006: ended without a close

    @property
    def abnormal(self) -> bool:
        return self.close_code in (1006, 1011)


# Codes a server may close with in answer to bad input: unsupported data, invalid payload
# (e.g. invalid UTF-8 in a text frame), policy violation, too big, ours (4xxx), and protocol
# error for frames that break RFC 6455 itself (reserved opcodes and bits).
PROPER_CLOSE_CODES = frozenset({1002, 1003, 1007, 1008, 1009})


def proper(outcome: Outcome) -> bool:
    code = outcome.close_code
    if code is None:
        return any(isinstance(f, dict) and f.get("type") for f in outcome.frames)
    return code in PROPER_CLOSE_CODES or 4000 <= code < 5000


async def exchange(sock: RawSocket, until: Callable[[Any], bool], within: float = 15) -> Outcome:
    """Read frames until one satisfies ``until`` or the server closes; answer its close."""
    frames: list[Any] = []
    async with asyncio.timeout(within):
        while True:
            got = await sock.receive()
            if got is None:
                return Outcome(frames, 1006)
            opcode, payload = got
            if opcode == 0x8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                sock.send_frame(0x8, payload[:2])
                return Outcome(frames, code)
            if opcode == 0x1:
                frame = json.loads(payload)
                frames.append(frame)
                if until(frame):
                    return Outcome(frames, None)
