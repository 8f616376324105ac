"""Authorization codes: single use, short-lived, bound to one session and one provider."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from connector.activity import now
from connector.auth import AuthCodes, check_credential, code_hash
from connector.errors import AuthCodeError, AuthError
from connector.store.memory import MemoryStore


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
