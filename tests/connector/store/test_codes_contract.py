"""The :class:`~connector.store_protocol.CodeStore` contract: authorization codes kept by
their hash, taken once. Every backend must pass it."""

from __future__ import annotations

from datetime import timedelta

from connector.records import AuthCodeRecord
from connector.store_protocol import CodeStore, SessionStore
from tests.connector.store.contract import FakeClock

PART = CodeStore


async def test_code_can_be_taken_once(store: CodeStore, clock: FakeClock) -> None:
    record = AuthCodeRecord(
        session_id="mts_x", provider="desk", expires_at=clock() + timedelta(seconds=60)
    )
    await store.put_code("hash-1", record)
    assert await store.take_code("hash-1") == record
    assert await store.take_code("hash-1") is None
    assert await store.take_code("hash-unknown") is None


async def test_expired_code_is_returned_until_expire_drops_it(
    store: SessionStore, clock: FakeClock
) -> None:
    # Expired codes are dropped by the session map's sweep (``expire``), not by CodeStore.
    for code in ("hash-1", "hash-2"):
        await store.put_code(
            code, AuthCodeRecord(session_id="mts_x", provider="desk", expires_at=clock())
        )
    clock.advance(1)
    taken = await store.take_code("hash-1")
    assert taken is not None and taken.expires_at < clock()  # the caller checks expiry
    await store.expire(clock())
    assert await store.take_code("hash-2") is None


async def test_a_peeked_code_stays_until_taken(store: CodeStore, clock: FakeClock) -> None:
    record = AuthCodeRecord(
        session_id="mts_x", provider="", expires_at=clock() + timedelta(seconds=60)
    )
    await store.put_code("hash-1", record)
    assert await store.peek_code("hash-1") == record
    assert await store.peek_code("hash-1") == record
    assert await store.take_code("hash-1") == record
    assert await store.peek_code("hash-1") is None
    assert await store.peek_code("hash-unknown") is None


async def test_expire_keeps_the_codes_that_have_not_expired(
    store: SessionStore, clock: FakeClock
) -> None:
    record = AuthCodeRecord(
        session_id="mts_x",
        provider="desk",
        expires_at=clock() + timedelta(seconds=60),
        scope={"intent": "dispute"},
    )
    await store.put_code("hash-1", record)
    await store.expire(clock())
    assert await store.peek_code("hash-1") == record
