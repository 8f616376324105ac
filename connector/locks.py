"""Per-session ordering in one process.

Messages of one session are handled one at a time in arrival order; different sessions run
concurrently. Waiters are woken first-in first-out, which gives arrival order; the table
entry is dropped when nobody holds or waits, so idle sessions cost nothing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from contextlib import AbstractAsyncContextManager


class _Entry:
    """A key someone holds: how many hold or wait (one holds), and the waiters in order."""

    __slots__ = ("held", "users", "waiters")

    def __init__(self) -> None:
        self.held = True
        self.users = 1
        self.waiters: deque[asyncio.Future[None]] = deque()


class _Hold:
    """One ``async with`` of a key: a plain async context manager, where a generator-based
    one (``contextlib.asynccontextmanager``) costs twice as much, and two are taken per
    message (its session's, its conversation's outbox). A key nobody holds is taken without
    a lock object or a future: only a second comer waits, on a future of its own, which the
    holder completes when it leaves (first come, first served, as ``asyncio.Lock``)."""

    __slots__ = ("_entries", "_entry", "_key")

    def __init__(self, entries: dict[str, _Entry], key: str) -> None:
        self._entries = entries
        self._key = key

    async def __aenter__(self) -> None:
        entry = self._entries.get(self._key)
        if entry is None:
            self._entry = self._entries[self._key] = _Entry()
            return
        entry.users += 1
        if not entry.held:  # its last holder left while a cancelled waiter still counted
            entry.held = True
            self._entry = entry
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry.waiters.append(turn)
        try:
            await turn
        except BaseException:  # cancelled while waiting: it no longer counts
            if turn.done() and not turn.cancelled():
                self._release(entry)  # handed over just before: pass it on
            else:
                if turn in entry.waiters:
                    entry.waiters.remove(turn)
                self._leave(entry)
            raise
        self._entry = entry

    async def __aexit__(self, *exc_info: object) -> None:
        self._release(self._entry)

    def _release(self, entry: _Entry) -> None:
        waiters = entry.waiters
        while waiters:
            turn = waiters.popleft()
            if not turn.done():  # the first still waiting holds it now
                entry.users -= 1
                turn.set_result(None)
                return
        entry.held = False
        self._leave(entry)

    def _leave(self, entry: _Entry) -> None:
        entry.users -= 1
        if entry.users == 0:
            del self._entries[self._key]


class LocalLocks:
    """The in-process ``Lock`` backend (the embedded default)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def hold(self, key: str) -> AbstractAsyncContextManager[None]:
        """Hold the lock of ``key``; waiters are served in the order they arrived."""
        return _Hold(self._entries, key)

    def held(self, key: str) -> bool:
        """Whether someone holds or waits for ``key`` (for tests and admin views)."""
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)
