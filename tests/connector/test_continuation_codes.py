"""Continuation codes: their shape, one use, expiry, throttling, and only hashes stored."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from connector.continuation_codes import ALPHABET, Codes, Throttle, code_of, new_link, read_code
from connector.store import MemoryStore

SHAPE = re.compile(r"^[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}$")


class Clock:
    def __init__(self) -> None:
        self.current = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.current


def test_a_code_is_eight_unambiguous_symbols_in_two_groups_with_a_digit() -> None:
    assert len(set(ALPHABET)) == 32 and not set("01IO") & set(ALPHABET)
    for _ in range(200):
        token, code = new_link()
        assert SHAPE.match(code) and any(c.isdigit() for c in code)
        assert code_of(token) == code and len(token) >= 43


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("K7RT-M4QZ", "K7RT-M4QZ"),
        ("  k7rt-m4qz ", "K7RT-M4QZ"),
        ("K7RT M4QZ", "K7RT-M4QZ"),
        ("k7rtm4qz", "K7RT-M4QZ"),
        ("/start K7RT-M4QZ", "K7RT-M4QZ"),
        ('"K7RT-M4QZ."', "K7RT-M4QZ"),
    ],
)
def test_a_message_that_is_just_a_code_is_read_as_one(text: str, code: str) -> None:
    assert read_code(text) == code


@pytest.mark.parametrize(
    "text",
    [
        "whatsapp",
        "strength",
        "K7RT-M4QZ please",
        "my code is K7RT-M4QZ",
        "K0RT-M4QZ",
        "",
        None,
        # Two words of four letters each: every code has a digit, so these are not codes.
        "Uber Eats",
        "SEND HELP",
        "ABCD-EFGH",
    ],
)
def test_words_and_sentences_are_never_read_as_codes(text: str | None) -> None:
    assert read_code(text) is None


async def test_a_code_works_once_and_only_its_hashes_are_stored() -> None:
    store = MemoryStore()
    codes = Codes(store, ttl_s=600)
    code, token = await codes.issue("mts_a")
    kept = repr(store._codes)  # what a dump of the store would show
    assert code not in kept and code.replace("-", "") not in kept and token not in kept
    record = await codes.take(code)
    assert record is not None and record.session_id == "mts_a"
    assert await codes.take(code) is None


async def test_an_expired_code_is_refused() -> None:
    clock = Clock()
    codes = Codes(MemoryStore(), ttl_s=600, clock=clock)
    code, _ = await codes.issue("mts_a")
    clock.current += timedelta(seconds=600)
    assert await codes.take(code) is None


async def test_a_link_shows_its_code_until_the_code_is_used() -> None:
    clock = Clock()
    codes = Codes(MemoryStore(), ttl_s=600, clock=clock)
    code, token = await codes.issue("mts_a")
    found = await codes.by_link(token)
    assert found is not None and found[0] == code and found[1].session_id == "mts_a"
    assert await codes.by_link(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert await codes.by_link("") is None
    await codes.take(code)
    assert await codes.by_link(token) is None
    other, token = await codes.issue("mts_b")
    clock.current += timedelta(seconds=601)
    assert await codes.by_link(token) is None
    assert other


def test_wrong_codes_from_one_conversation_block_it_until_the_window_passes() -> None:
    at = [0.0]
    throttle = Throttle(per_key=3, overall=100, window_s=60, clock=lambda: at[0])
    here, there = ("sms", "+1"), ("sms", "+2")
    for _ in range(2):
        throttle.wrong(here)
    assert not throttle.blocked(here)
    throttle.wrong(here)
    assert throttle.blocked(here) and not throttle.blocked(there)
    at[0] = 59.0
    assert throttle.blocked(here)
    at[0] = 60.0
    assert not throttle.blocked(here)


def test_wrong_codes_from_everyone_block_all_conversations() -> None:
    at = [0.0]
    throttle = Throttle(per_key=5, overall=4, window_s=60, clock=lambda: at[0])
    for n in range(4):
        throttle.wrong(("webchat", f"wc_{n}"))
    assert throttle.blocked(("sms", "+1"))
    at[0] = 61.0
    assert not throttle.blocked(("sms", "+1"))


def test_the_throttle_forgets_old_conversations_to_stay_small() -> None:
    at = [0.0]
    throttle = Throttle(per_key=1, overall=10**6, window_s=60, clock=lambda: at[0])
    throttle.MAX_KEYS = 10
    for n in range(10):
        throttle.wrong(("webchat", f"wc_{n}"))
    at[0] = 100.0
    throttle.wrong(("webchat", "new"))
    assert len(throttle._keys) == 1 and throttle.blocked(("webchat", "new"))
