"""One-time authorization codes for handing a user's auth context to a new provider.

On a switch the target provider receives a code bound to (session, provider). It redeems the
code once, within its lifetime, for the user's verified claims and the transcript it may see:
in-process providers through the core, remote ones at ``POST /auth/token`` with their own
credential. Only the SHA-256 of a code is stored, so a store dump reveals no usable code; a
code presented by the wrong provider is burnt all the same (RFC 6749 section 10.5: codes are
single-use, and a misuse revokes them).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from connector.activity import now
from connector.errors import AuthCodeError, AuthError
from connector.records import AuthCodeRecord
from connector.store_protocol import CodeStore

if TYPE_CHECKING:
    from connector.work import Turn


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


class AuthCodes:
    """Issues and redeems single-use, short-lived codes bound to a session and a provider."""

    def __init__(self, store: CodeStore, ttl_s: float, clock: Callable[[], datetime] = now) -> None:
        self._store = store
        self._ttl = timedelta(seconds=ttl_s)
        self.clock = clock  # replaceable, e.g. to test expiry
        # Codes of units of work not committed yet (hash -> record): see ``issue``.
        self._unsaved: dict[str, AuthCodeRecord] = {}

    async def issue(self, session_id: str, provider: str, turn: Turn | None = None) -> str:
        """A new code (256 bits) for ``provider`` to fetch ``session_id``'s auth context.

        Stored before this returns; or, with ``turn`` (for a provider in the process, which
        hears of the code only inside that turn), kept here and stored with the turn's next
        commit, unless it is redeemed before (then it is never stored): a bot in the process
        redeems the code of its handoff in the same turn, and the code costs no write. A
        turn that ends without a commit takes its codes with it.
        """
        code = secrets.token_urlsafe(32)
        record = AuthCodeRecord(
            session_id=session_id, provider=provider, expires_at=self.clock() + self._ttl
        )
        key = code_hash(code)
        if turn is None:
            await self._store.put_code(key, record)
        else:
            self._unsaved[key] = record
            turn.code(key, record, self._unsaved)
        return code

    async def redeem(self, code: str, provider: str) -> AuthCodeRecord:
        """Consume the code for ``provider``; raise ``AuthCodeError`` if it can't be used."""
        if not code:
            raise AuthCodeError("no authorization code given")
        key = code_hash(code)
        record = self._unsaved.pop(key, None)
        if record is None:
            record = await self._store.take_code(key)
        if record is None:
            raise AuthCodeError("authorization code is unknown or was already used")
        if record.provider != provider:
            raise AuthCodeError("authorization code was issued to another provider")
        if record.expires_at <= self.clock():
            raise AuthCodeError("authorization code has expired")
        return record


def check_credential(expected: str, presented: str | None) -> None:
    """Constant-time check of a provider's credential; raise ``AuthError`` on mismatch."""
    if not expected:
        raise AuthError("this provider has no credential configured and cannot redeem codes")
    if not presented or not hmac.compare_digest(expected.encode(), presented.encode()):
        raise AuthError("invalid provider credential")
