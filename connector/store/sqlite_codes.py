"""The SQLite store's authorization codes: each record under its code's hash (never the code
itself), taken once (``DELETE ... RETURNING``), dropped by ``expire`` once expired."""

from __future__ import annotations

from connector.records import AuthCodeRecord
from connector.store import sqlite_statements as sql
from connector.store.sqlite_db import Database
from connector.store.sqlite_rows import code_params


class SqliteCodes:
    """The code methods of :class:`~connector.store.sqlite.SqliteStore`, on its connection
    (``_db``)."""

    @property
    def _db(self) -> Database:
        raise NotImplementedError  # the store's open connection

    async def put_code(self, code_hash: str, record: AuthCodeRecord) -> None:
        """Store an authorization code's record under the code's hash."""
        await self._db.execute(sql.PUT_CODE, code_params(code_hash, record))

    async def take_code(self, code_hash: str) -> AuthCodeRecord | None:
        """Remove and return the record; a code can be taken once.

        Expired records may still be returned (until ``expire`` drops them): the caller
        checks ``expires_at``.
        """
        # In a group commit: a redeem in a burst of them shares its WAL write with theirs.
        rows = await self._db.transaction(
            lambda conn: conn.execute(sql.TAKE_CODE, (code_hash,)).fetchall(), one=True
        )
        for (data,) in rows:
            return AuthCodeRecord.model_validate_json(data)
        return None

    async def peek_code(self, code_hash: str) -> AuthCodeRecord | None:
        """The record, left in place (expired ones too, until ``expire`` drops them)."""
        rows = await self._db.fetchall(sql.PEEK_CODE, (code_hash,))
        for (data,) in rows:
            return AuthCodeRecord.model_validate_json(data)
        return None
