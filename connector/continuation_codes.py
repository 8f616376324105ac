"""Continuation codes: one-time, short-lived, typable; kept only as hashes.

A code is 8 symbols of an alphabet without look-alikes (no 0, 1, I or O), shown in two
groups of four (``K7RT-M4QZ``): 40 bits, with at least one digit, so that no word a user
might write is ever read as one. It is derived from a link token (256 bits) that the link
form carries, so the link's page can show the code while midtier stores neither: only the
code's SHA-256 (under its own prefix, apart from authorization codes), with the session it
continues, its expiry and the link token's hash, in the store's code records. Taking a code
removes it, so it works once.

40 bits are enough only because guessing is throttled: :class:`Throttle` refuses codes from
a channel conversation after a few wrong ones, and from everyone after many.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

from connector.activity import now
from connector.records import AuthCodeRecord
from connector.store_protocol import CodeStore

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # 32 symbols: 5 bits each
PURPOSE = "midtier.continuation"  # the records' ``provider``: no provider can redeem them
_SYMBOL = "[2-9A-HJ-NP-Z]"
_MARKS = ".,;:!?\"'()[]\u201c\u201d\u2018\u2019"  # around a code pasted from a sentence
_CODE = re.compile(rf"^(?:/START\s+)?({_SYMBOL}{{4}})([-\s]?)({_SYMBOL}{{4}})$")


def code_of(token: str) -> str:
    """The code a link token stands for (``XXXX-XXXX``)."""
    digest = hashlib.sha256(b"midtier continuation code\x00" + token.encode()).digest()
    bits = int.from_bytes(digest[:5], "big")
    symbols = "".join(ALPHABET[(bits >> (5 * i)) & 31] for i in range(7, -1, -1))
    return f"{symbols[:4]}-{symbols[4:]}"


def new_link() -> tuple[str, str]:
    """A fresh link token and its code (one with a digit)."""
    while True:
        token = secrets.token_urlsafe(32)
        code = code_of(token)
        if any(c.isdigit() for c in code):
            return token, code


def read_code(text: str | None) -> str | None:
    """The code a message is (``XXXX-XXXX``), else None.

    The message must be just the code (quotes or an end mark around it aside), in any case,
    with a dash, a space or nothing between its halves, or ``/start <code>`` (a Telegram
    deep link). Every code has a digit, so that two words ("Uber Eats") never read as one.
    """
    if not text or len(text) > 40:
        return None
    found = _CODE.match(text.strip().strip(_MARKS).strip().upper())
    if found is None:
        return None
    first, _separator, second = found.groups()
    if not any(c.isdigit() for c in first + second):
        return None
    return f"{first}-{second}"


def code_hash(code: str) -> str:
    return hashlib.sha256(f"midtier continuation code:{code}".encode()).hexdigest()


def link_hash(token: str) -> str:
    return hashlib.sha256(f"midtier continuation link:{token}".encode()).hexdigest()


class Codes:
    """Issues and takes continuation codes in the store's code records."""

    def __init__(self, store: CodeStore, ttl_s: float, clock: Callable[[], datetime] = now) -> None:
        self._store = store
        self.ttl = timedelta(seconds=ttl_s)
        self.clock = clock  # replaceable, e.g. to test expiry

    async def issue(self, session_id: str) -> tuple[str, str]:
        """A new (code, link token) that continues ``session_id``."""
        for _ in range(8):  # 40 bits: two live codes may collide once in a blue moon
            token, code = new_link()
            if await self._store.peek_code(code_hash(code)) is None:
                break
        record = AuthCodeRecord(
            session_id=session_id,
            provider=PURPOSE,
            expires_at=self.clock() + self.ttl,
            scope={"link": link_hash(token)},
        )
        await self._store.put_code(code_hash(code), record)
        return code, token

    async def take(self, code: str) -> AuthCodeRecord | None:
        """Use ``code`` up; its record, or None if it is unknown, used or expired."""
        record = await self._store.take_code(code_hash(code))
        if record is None or record.provider != PURPOSE or record.expires_at <= self.clock():
            return None
        return record

    async def put_back(self, code: str, record: AuthCodeRecord) -> None:
        """Keep a code that was taken where it cannot be used (its own conversation)."""
        await self._store.put_code(code_hash(code), record)

    async def by_link(self, token: str) -> tuple[str, AuthCodeRecord] | None:
        """The code of a link token and its record, while it can be used."""
        if not token or len(token) > 100:
            return None
        code = code_of(token)
        record = await self._store.peek_code(code_hash(code))
        if record is None or record.provider != PURPOSE or record.expires_at <= self.clock():
            return None
        expected = record.scope.get("link")
        if not isinstance(expected, str) or not hmac.compare_digest(
            expected.encode(), link_hash(token).encode()
        ):
            return None
        return code, record


class Throttle:
    """Wrong codes: at most ``per_key`` from one channel conversation and ``overall`` from
    everyone within ``window_s``; past that, codes are refused without being looked up.

    Counts are kept in this process (as the desk's sign-in throttle is) and bounded in size.
    """

    MAX_KEYS = 10_000

    def __init__(
        self,
        per_key: int,
        overall: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_key = per_key
        self._window = window_s
        self.clock = clock
        self._all: deque[float] = deque(maxlen=overall)
        self._keys: dict[tuple[str, str], deque[float]] = {}

    def _full(self, times: deque[float] | None, at: float) -> bool:
        return times is not None and len(times) == times.maxlen and at - times[0] < self._window

    def blocked(self, key: tuple[str, str]) -> bool:
        """Whether codes from ``key`` (channel, conversation) are refused now."""
        at = self.clock()
        return self._full(self._all, at) or self._full(self._keys.get(key), at)

    def wrong(self, key: tuple[str, str]) -> None:
        """Count a wrong code from ``key``."""
        at = self.clock()
        self._all.append(at)
        times = self._keys.get(key)
        if times is None:
            if len(self._keys) >= self.MAX_KEYS:
                self._forget(at)
            times = self._keys[key] = deque(maxlen=self._per_key)
        times.append(at)

    def _forget(self, at: float) -> None:
        stale = [k for k, times in self._keys.items() if at - times[-1] >= self._window]
        for key in stale:
            del self._keys[key]
        while len(self._keys) >= self.MAX_KEYS:  # still full: the oldest go first
            del self._keys[next(iter(self._keys))]
