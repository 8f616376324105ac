"""The sessions this process wrote last, kept as the JSON it committed, so that reading one
back (``get``, what every unit of work starts with) needs no statement.

Why it cannot hand out a session older than the file's: every write of a session in this
process goes through the store, which puts here what it committed once the commit is done
and drops the session when a write fails (a version conflict, a rollback); what another
process writes (``midtier sessions`` only reads) is not seen here, but every save is
version-checked in SQL, so a copy read from here that another process has changed since
fails its save with ``ConflictError`` instead of writing over that change, and the session
is dropped here, so that the next read (the user-message path's retry) goes to the file.
"""

from __future__ import annotations

CACHED = 1024  # sessions kept (about 1 KB of JSON each): the conversations under way


class SessionCache:
    """Session id -> (version, JSON) of recent commits, the least recently written dropped
    first beyond ``size``."""

    __slots__ = ("_entries", "_size")

    def __init__(self, size: int = CACHED) -> None:
        self._entries: dict[str, tuple[int, str]] = {}
        self._size = size

    def get(self, session_id: str) -> str | None:
        """The JSON last committed for the session, if it is kept."""
        found = self._entries.get(session_id)
        return found[1] if found is not None else None

    def put(self, session_id: str, version: int, data: str) -> None:
        """Keep what was committed for the session at ``version``; an older version than the
        one kept (a commit whose caller resumed late) changes nothing."""
        entries = self._entries
        kept = entries.pop(session_id, None)
        if kept is not None and kept[0] > version:
            entries[session_id] = kept
            return
        entries[session_id] = (version, data)
        if len(entries) > self._size:
            del entries[next(iter(entries))]

    def drop(self, session_id: str) -> None:
        """Forget the session (a write of it failed, or changed it in SQL only)."""
        self._entries.pop(session_id, None)

    def clear(self) -> None:
        """Forget every session (the store was closed)."""
        self._entries.clear()
