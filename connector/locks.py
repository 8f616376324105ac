"""Per-session ordering in one process.

Messages of one session are handled one at a time in arrival order; different sessions run
concurrently. ``asyncio.Lock`` wakes its waiters first-in first-out, which gives arrival
order; the table entry is dropped when nobody holds or waits, so idle sessions cost nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class _Entry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class LocalLocks:
    """The in-process ``Lock`` backend (the embedded default)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold the lock of ``key``; waiters are served in the order they arrived."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._entries[key]

    def held(self, key: str) -> bool:
        """Whether someone holds or waits for ``key`` (for tests and admin views)."""
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)
