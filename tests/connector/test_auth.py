"""Authorization codes: single use, short-lived, bound to one session and one provider."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from connector.activity import now
from connector.auth import AuthCodes, check_credential, code_hash
from connector.errors import AuthCodeError, AuthError
from connector.locks import LocalLocks
from connector.records import OutboxEntry
from connector.store.memory import MemoryStore
from connector.work import Turns


class Clock:
    def __init__(self) -> None:
        self.at = now()

    def __call__(self) -> datetime:
        return self.at


async def _codes() -> tuple[AuthCodes, MemoryStore, Clock]:
    clock = Clock()
    store = MemoryStore(clock=clock)
    await store.start()
    return AuthCodes(store, ttl_s=60, clock=clock), store, clock


async def test_a_code_redeems_once_for_its_provider() -> None:
    codes, _, _ = await _codes()
    code = await codes.issue("mts_1", "disputes")
    assert len(code) >= 43  # 256 bits, URL-safe
    record = await codes.redeem(code, "disputes")
    assert (record.session_id, record.provider) == ("mts_1", "disputes")
    with pytest.raises(AuthCodeError, match="already used"):
        await codes.redeem(code, "disputes")


async def test_a_code_expires() -> None:
    codes, _, clock = await _codes()
    code = await codes.issue("mts_1", "disputes")
    clock.at += timedelta(seconds=61)
    with pytest.raises(AuthCodeError, match="expired"):
        await codes.redeem(code, "disputes")


async def test_another_provider_cannot_redeem_and_burns_it() -> None:
    codes, _, _ = await _codes()
    code = await codes.issue("mts_1", "disputes")
    with pytest.raises(AuthCodeError, match="another provider"):
        await codes.redeem(code, "faq")
    with pytest.raises(AuthCodeError, match="already used"):
        await codes.redeem(code, "disputes")


async def test_unknown_and_empty_codes_fail() -> None:
    codes, _, _ = await _codes()
    with pytest.raises(AuthCodeError, match="unknown"):
        await codes.redeem("made-up", "disputes")
    with pytest.raises(AuthCodeError, match="no authorization code"):
        await codes.redeem("", "disputes")


async def test_only_the_hash_is_stored() -> None:
    codes, store, _ = await _codes()
    code = await codes.issue("mts_1", "disputes")
    assert await store.take_code(code) is None
    assert await store.take_code(code_hash(code)) is not None


def test_provider_credentials() -> None:
    check_credential("s3cret", "s3cret")
    with pytest.raises(AuthError, match="invalid provider credential"):
        check_credential("s3cret", "guess")
    with pytest.raises(AuthError, match="invalid provider credential"):
        check_credential("s3cret", None)
    with pytest.raises(AuthError, match="no credential configured"):
        check_credential("", "anything")


async def _nothing(entries: list[OutboxEntry]) -> None:
    return None


async def test_a_code_of_a_turn_redeemed_in_it_is_never_stored() -> None:
    codes, store, _ = await _codes()
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    async with Turns(store, LocalLocks(), _nothing).turn(session.id) as turn:
        code = await codes.issue(session.id, "faq", turn)
        assert await store.peek_code(code_hash(code)) is None  # no write of its own
        record = await codes.redeem(code, "faq")
        assert record.session_id == session.id
    assert await store.peek_code(code_hash(code)) is None  # nor with the commit
    with pytest.raises(AuthCodeError, match="already used"):
        await codes.redeem(code, "faq")


async def test_a_code_of_a_turn_is_stored_with_its_commit_and_redeems_once_after() -> None:
    codes, store, _ = await _codes()
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    async with Turns(store, LocalLocks(), _nothing).turn(session.id) as turn:
        code = await codes.issue(session.id, "faq", turn)
    assert await store.peek_code(code_hash(code)) is not None
    assert (await codes.redeem(code, "faq")).provider == "faq"
    with pytest.raises(AuthCodeError, match="already used"):
        await codes.redeem(code, "faq")


async def test_a_turn_that_fails_takes_its_codes_with_it() -> None:
    codes, store, _ = await _codes()
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    with pytest.raises(RuntimeError):
        async with Turns(store, LocalLocks(), _nothing).turn(session.id) as turn:
            code = await codes.issue(session.id, "faq", turn)
            raise RuntimeError("the unit of work fails")
    assert await store.peek_code(code_hash(code)) is None
    with pytest.raises(AuthCodeError, match="unknown"):
        await codes.redeem(code, "faq")
