"""The Slack channel's inbound side, against the adapter: Slack's documented payloads
(``tests/payloads/slack``) signed as slack_sdk signs them, and our verification checked
against slack_sdk's ``SignatureVerifier``."""

from __future__ import annotations

import json

import pytest
from slack_sdk.signature import Clock, SignatureVerifier
from support.channel_kits.slack import (
    NOW,
    SECRET,
    WRONG_SECRET,
    adapter,
    event,
    interaction,
    payload,
    request,
    sign,
)

from connector.errors import AuthError, Forbidden, MalformedPayload

# ---------------------------------------------------------------------- verify


async def test_a_request_signed_as_slack_signs_it_passes() -> None:
    await adapter().verify(event(payload("message_im")))


def _forged(body: bytes) -> dict[str, str]:
    return sign(body, secret=WRONG_SECRET, ts=NOW)


def _cut(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body[: len(body) // 2], sign(body, ts=NOW)


@pytest.mark.parametrize(
    "case",
    ["forged", "stale", "from the future", "cut short", "timestamp changed", "no signature"],
)
async def test_a_request_that_is_not_slacks_is_a_401(case: str) -> None:
    body = json.dumps(payload("message_im")).encode()
    headers = {
        "forged": lambda: _forged(body),
        "stale": lambda: sign(body, ts=NOW - 301),
        "from the future": lambda: sign(body, ts=NOW + 301),
        "cut short": lambda: _cut(body)[1],
        "timestamp changed": lambda: {
            **sign(body, ts=NOW),
            "X-Slack-Request-Timestamp": str(NOW - 1),
        },
        "no signature": lambda: {"Content-Type": "application/json"},
    }[case]()
    sent = _cut(body)[0] if case == "cut short" else body
    with pytest.raises(AuthError) as raised:
        await adapter().verify(request(sent, headers))
    assert not isinstance(raised.value, Forbidden)  # 401, not 403


async def test_the_replay_window_is_five_minutes_either_way() -> None:
    body = json.dumps(payload("message_im")).encode()
    for ts in (NOW - 300, NOW + 300):
        await adapter().verify(request(body, sign(body, ts=ts)))


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [
        ("", "v0=00"),
        ("abc", "v0=00"),
        ("\uff11\uff17" + "\uff10" * 8, "v0=00"),  # full-width digits: isdigit(), not ASCII
        ("-1700000000", "v0=00"),
        ("9" * 40, "v0=00"),
        (str(NOW), ""),
        (str(NOW), "v0=é" + "0" * 63),  # hmac.compare_digest on str would raise
        (str(NOW), "v0=\udcff"),  # what aiohttp makes of a non-UTF-8 header byte
    ],
)
async def test_malformed_signature_headers_are_a_401_not_an_exception(
    timestamp: str, signature: str
) -> None:
    body = json.dumps(payload("message_im")).encode()
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}
    with pytest.raises(AuthError):
        await adapter().verify(request(body, headers))


class _At(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


@pytest.mark.parametrize("case", ["good", "forged", "stale", "cut", "other body", "unicode"])
async def test_our_verification_agrees_with_slack_sdks(case: str) -> None:
    body = json.dumps(payload("message_channels")).encode()
    if case == "unicode":
        body = json.dumps(
            {"type": "event_callback", "text": "café ☕"}, ensure_ascii=False
        ).encode()
    ts, secret, sent = NOW, SECRET, body
    if case == "forged":
        secret = WRONG_SECRET
    elif case == "stale":
        ts = NOW - 301
    elif case == "cut":
        sent = body[:-10]
    elif case == "other body":
        sent = body.replace(b"prospect", b"prosper")
    headers = sign(body, secret=secret, ts=ts)
    theirs = SignatureVerifier(SECRET, clock=_At(NOW)).is_valid_request(sent, headers)
    try:
        await adapter().verify(request(sent, headers))
        ours = True
    except AuthError:
        ours = False
    assert ours == theirs == (case in ("good", "unicode"))


# ---------------------------------------------------------------------- handshake


async def test_the_url_verification_handshake_answers_with_the_challenge() -> None:
    slack = adapter()
    incoming = event(payload("url_verification"))
    await slack.verify(incoming)
    answer = await slack.handshake(incoming)
    assert answer is not None and answer.status == 200
    assert answer.body == b"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    assert answer.content_type == "text/plain"


async def test_events_clicks_and_gets_are_no_handshake() -> None:
    slack = adapter()
    assert await slack.handshake(event(payload("message_im"))) is None
    assert await slack.handshake(interaction(payload("block_actions"))) is None
    assert await slack.handshake(request(b"", method="GET")) is None


async def test_a_url_verification_without_a_challenge_is_malformed() -> None:
    with pytest.raises(MalformedPayload):
        await adapter().handshake(event({"type": "url_verification", "challenge": 7}))
