"""The sessions this process wrote last, kept as the JSON it committed, so that reading one
back (``get``, what every unit of work starts with) needs no statement; and, once a unit of
work is done with its session (``keep``), that very object, so that the next one needs no
parsing either.

Why it cannot hand out a session older than the file's: every write of a session in this
process goes through the store, which puts here what it committed once the commit is done
and drops the session when a write fails (a version conflict, a rollback); what another
process writes (``midtier sessions`` only reads) is not seen here, but every save is
version-checked in SQL, so a copy read from here that another process has changed since
fails its save with ``ConflictError`` instead of writing over that change, and the session
is dropped here, so that the next read (the user-message path's retry) goes to the file.

Why a kept object is as good as the JSON: it is kept only at the version committed last,
it is handed to one reader only (``take`` removes it; the next reader parses the JSON), and
a newer commit or a drop forgets it. What its owner promised is that it changed nothing in
it after that commit. ``MIDTIER_SELF_CHECKS=1`` (the test suite sets it) checks that
promise on every hand-out, comparing the object's JSON with the committed one.
"""

from __future__ import annotations

from typing import NamedTuple

from connector.modelcopy import CHECKING
from connector.sessions import MidTierSession

CACHED = 1024  # sessions kept (about 1 KB of JSON each): the conversations under way


class KeptChanged(AssertionError):
    """A session handed back with ``keep`` was changed after it was committed."""


class _Entry(NamedTuple):
    version: int
    data: str
    kept: MidTierSession | None = None


class SessionCache:
    """Session id -> (version, JSON, the object kept at that version) of recent commits, the
    least recently written dropped first beyond ``size``."""

    __slots__ = ("_check", "_entries", "_size")

    def __init__(self, size: int = CACHED, *, check: bool | None = None) -> None:
        self._entries: dict[str, _Entry] = {}
        self._size = size
        self._check = CHECKING if check is None else check

    def take(self, session_id: str) -> MidTierSession | None:
        """The session as last committed, the caller's own: the object kept for it (not kept
        any more from now on), else one read from its JSON; None if it is not here."""
        found = self._entries.get(session_id)
        if found is None:
            return None
        kept = found.kept
        if kept is None:
            return MidTierSession.model_validate_json(found.data)
        self._entries[session_id] = found._replace(kept=None)
        if self._check and kept.model_dump_json() != found.data:
            raise KeptChanged(f"session {session_id} changed after its commit, before its reuse")
        return kept

    def put(self, session_id: str, version: int, data: str) -> None:
        """Keep what was committed for the session at ``version``; an older version than the
        one kept (a commit whose caller resumed late) changes nothing."""
        entries = self._entries
        found = entries.pop(session_id, None)
        if found is not None and found.version > version:
            entries[session_id] = found
            return
        entries[session_id] = _Entry(version, data)
        if len(entries) > self._size:
            del entries[next(iter(entries))]

    def keep(self, session: MidTierSession) -> None:
        """Keep ``session`` itself for the next reader, if it is the version committed last
        (its owner changes nothing in it any more)."""
        found = self._entries.get(session.id)
        if found is not None and found.version == session.version:
            self._entries[session.id] = found._replace(kept=session)

    def drop(self, session_id: str) -> None:
        """Forget the session (a write of it failed, or changed it in SQL only)."""
        self._entries.pop(session_id, None)

    def clear(self) -> None:
        """Forget every session (the store was closed)."""
        self._entries.clear()
