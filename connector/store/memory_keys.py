"""The in-process store's remembered keys: dedupe keys and authorization codes.

Both are kept for a while and then forgotten, unlike sessions and their history; this part
holds them apart from the session map, reading only the clock. It knows nothing of the rest
of :class:`~connector.store.memory.MemoryStore`, which is made of it and the queues.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from connector.records import AuthCodeRecord
from connector.store.common import Clock, as_utc


class MemoryKeys:
    """The :class:`~connector.store_protocol.Dedupe` and
    :class:`~connector.store_protocol.CodeStore` parts of the in-process store, in dicts.

    ``clock`` supplies the current time for expiry.
    """

    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock
        self._seen: dict[str, datetime] = {}
        self._codes: dict[str, AuthCodeRecord] = {}

    def _drop_expired(self) -> None:
        """Forget the dedupe keys and authorization codes that have expired."""
        current = as_utc(self._clock())
        self._seen = {k: t for k, t in self._seen.items() if t > current}
        self._codes = {k: c for k, c in self._codes.items() if as_utc(c.expires_at) > current}

    async def seen(self, key: str, ttl_seconds: float) -> bool:
        """Record ``key`` for ``ttl_seconds``; True if it was already recorded and unexpired."""
        return self._seen_key(key, ttl_seconds)

    def _remembers(self, key: str) -> bool:
        expires_at = self._seen.get(key)
        return expires_at is not None and expires_at > as_utc(self._clock())

    def _seen_key(self, key: str, ttl_seconds: float) -> bool:
        current = as_utc(self._clock())
        expires_at = self._seen.get(key)
        if expires_at is not None and expires_at > current:
            return True
        self._seen[key] = current + timedelta(seconds=ttl_seconds)
        return False

    async def put_code(self, code_hash: str, record: AuthCodeRecord) -> None:
        """Store an authorization code's record under the code's hash."""
        self._codes[code_hash] = record.model_copy(deep=True)

    async def take_code(self, code_hash: str) -> AuthCodeRecord | None:
        """Remove and return the record; a code can be taken once.

        Expired records may still be returned (until ``expire`` drops them): the caller
        checks ``expires_at``.
        """
        return self._codes.pop(code_hash, None)

    async def peek_code(self, code_hash: str) -> AuthCodeRecord | None:
        """The record, left in place (expired ones too, until ``expire`` drops them)."""
        found = self._codes.get(code_hash)
        return found.model_copy(deep=True) if found is not None else None
