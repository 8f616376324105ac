"""Per-session ordering in one process.

Messages of one session are handled one at a time in arrival order; different sessions run
concurrently. ``asyncio.Lock`` wakes its waiters first-in first-out, which gives arrival
order; the table entry is dropped when nobody holds or waits, so idle sessions cost nothing.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager


class _Entry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class _Hold:
    """One ``async with`` of a key: a plain async context manager, where a generator-based
    one (``contextlib.asynccontextmanager``) costs twice as much, and two are taken per
    message (its session's, its conversation's outbox)."""

    __slots__ = ("_entries", "_entry", "_key")

    def __init__(self, entries: dict[str, _Entry], key: str) -> None:
        self._entries = entries
        self._key = key

    async def __aenter__(self) -> None:
        entry = self._entries.get(self._key)
        if entry is None:
            entry = self._entries[self._key] = _Entry()
        entry.users += 1
        try:
            await entry.lock.acquire()
        except BaseException:  # cancelled while waiting: it no longer counts
            self._leave(entry)
            raise
        self._entry = entry

    async def __aexit__(self, *exc_info: object) -> None:
        entry = self._entry
        entry.lock.release()
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
