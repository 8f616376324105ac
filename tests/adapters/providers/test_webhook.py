"""WebhookProvider against a real fake service on 127.0.0.1, and the signing helper."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from support.providers import build, pooled, shared_http
from support.server import free_port
from support.webhook_service import SECRET, FakeService, fake_service, reply

from adapters.botside.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    sign,
    verify,
)
from adapters.providers.webhook import WebhookProvider
from connector.activity import Activity, HandoffEventNames, message, status_event
from connector.context import SharedHttp
from connector.errors import ConfigErrors, ProviderError, ProviderTimeout
from connector.provider_protocol import HandoffContext
from connector.sessions import Leg, MidTierSession, TranscriptEntry

# --------------------------------------------------------------------------- signing helper


def test_sign_then_verify_round_trip_and_rotation() -> None:
    body = b'{"type":"message"}'
    headers = sign(SECRET, body, 1_700_000_000)
    assert headers[TIMESTAMP_HEADER] == "1700000000"
    assert headers[SIGNATURE_HEADER].startswith("v1=") and len(headers[SIGNATURE_HEADER]) == 67
    assert verify(SECRET, body, headers, now=1_700_000_100) == 1_700_000_000
    lowered = {k.lower(): v for k, v in headers.items()}
    assert verify(["new-secret-0123456789", SECRET], body, lowered, now=1_700_000_000)


@pytest.mark.parametrize(
    ("body", "headers", "why"),
    [
        (b'{"type":"message "}', None, "signature does not match"),
        (b'{"type":"message"}', {TIMESTAMP_HEADER: "1700000000"}, "missing"),
        (b'{"type":"message"}', {SIGNATURE_HEADER: "v1=00"}, "missing"),
        (b'{"type":"message"}', {TIMESTAMP_HEADER: "soon", SIGNATURE_HEADER: "v1=0"}, "unix"),
        (b'{"type":"message"}', {TIMESTAMP_HEADER: "1700000000", SIGNATURE_HEADER: "x"}, "v1"),
    ],
)
def test_verify_refuses_tampered_or_incomplete(
    body: bytes, headers: dict[str, str] | None, why: str
) -> None:
    signed = sign(SECRET, b'{"type":"message"}', 1_700_000_000)
    with pytest.raises(SignatureError, match=why):
        verify(SECRET, body, headers if headers is not None else signed, now=1_700_000_000)


@pytest.mark.parametrize("skew", [-301, 301])
def test_verify_refuses_timestamps_outside_five_minutes(skew: int) -> None:
    headers = sign(SECRET, b"{}", 1_700_000_000)
    assert verify(SECRET, b"{}", headers, now=1_700_000_000 + 300)
    with pytest.raises(SignatureError, match="window"):
        verify(SECRET, b"{}", headers, now=1_700_000_000 - skew)


@given(
    st.text(max_size=20) | st.sampled_from(["1700000000", "\udcff", "\u0663" * 3]),
    st.text(max_size=80) | st.sampled_from(["v1=\udcff", "v1=" + "é" * 64]),
)
def test_verify_refuses_any_header_text_with_a_signature_error(timestamp: str, given_: str) -> None:
    """Header values come from strangers (aiohttp hands bytes over 0x7f on as surrogates)."""
    with pytest.raises(SignatureError):
        verify(SECRET, b"{}", {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: given_})


def test_verify_refuses_another_secret() -> None:
    headers = sign("another-secret-0123456789", b"{}")
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, b"{}", headers)


# --------------------------------------------------------------------------- the provider


class RecordingHost:
    """Just enough ProviderHost for the provider's outbound side."""

    def __init__(self) -> None:
        self.activities: list[tuple[str, str, Activity]] = []
        self.providers: dict[str, Any] = {}

    async def provider_activity(self, provider: str, conversation: str, a: Activity) -> None:
        self.activities.append((provider, conversation, a))


def _provider(http: SharedHttp, url: str, name: str = "desk", **extra: Any) -> WebhookProvider:
    block = {"title": "the partner desk", "timeout_s": 1, "url": url, "secret": SECRET, **extra}
    return build(WebhookProvider, name, RecordingHost(), http=http, **block)


@pytest.fixture
async def service() -> AsyncIterator[FakeService]:
    async with fake_service(free_port()) as svc:
        yield svc


@pytest.fixture
async def http() -> AsyncIterator[SharedHttp]:
    async with shared_http() as opened:
        yield opened


@pytest.fixture
async def provider(service: FakeService, http: SharedHttp) -> AsyncIterator[WebhookProvider]:
    p = _provider(http, service.url, health_url=f"{service.base}/health")
    await p.start()
    yield p
    await p.stop()


def _context() -> HandoffContext:
    entry = TranscriptEntry(speaker="user", text="I want to dispute a charge", activity={"x": 1})
    return HandoffContext(
        session_id="mts_1",
        user_id="u1",
        channel="webchat",
        reason="desk serves dispute_charge",
        intent="dispute_charge",
        confidence=0.9,
        transcript=[entry],
        auth_code="code-123",
        token_url="http://127.0.0.1:3978/auth/token",
    )


async def _open(provider: WebhookProvider) -> tuple[MidTierSession, Leg]:
    session = MidTierSession(user_id="u1", channel="webchat", channel_conversation_id="wc_1")
    leg = Leg(channel="webchat", channel_conversation_id="wc_1", provider="desk")
    leg.provider_conversation_id = await provider.open(session, leg, _context())
    return session, leg


async def test_open_message_event_close_envelopes_are_signed(
    service: FakeService, provider: WebhookProvider
) -> None:
    _, leg = await _open(provider)
    conversation = leg.provider_conversation_id
    assert conversation.startswith("wh_") and len(conversation) > 25
    opened = service.got[0]
    assert opened.verified and opened.headers[DELIVERY_HEADER] == opened.envelope["id"]
    assert opened.envelope["type"] == "open" and opened.envelope["conversation"] == conversation
    assert opened.envelope["callback_url"] == "http://127.0.0.1:3978/webhooks/providers/desk"
    context = opened.envelope["context"]
    assert context["auth_code"] == "code-123" and context["intent"] == "dispute_charge"
    assert [(e["speaker"], e["text"]) for e in context["transcript"]] == [
        ("user", "I want to dispute a charge")
    ]
    assert "activity" not in context["transcript"][0]  # no channel-side ids leak
    # The tampered body fails the service's check.
    with pytest.raises(SignatureError):
        verify(SECRET, opened.body.replace(b"code-123", b"code-124"), opened.headers)

    # The context event follows the open: it is not sent again; the greeting comes back.
    handoff = Activity(type="event", name=HandoffEventNames.CONTEXT, value={})
    greeting = await provider.deliver(leg, handoff)
    assert [a.text for a in greeting] == ["hello from the service"] and len(service.got) == 1

    said = message("hi", channel_data={"midtier": {"intent": "greet"}})
    assert [a.text for a in await provider.deliver(leg, said)] == ["echo: hi"]
    assert await provider.deliver(leg, status_event("accepted")) == []
    await provider.close(leg, "resolved")
    kinds = [(r.envelope["type"], r.verified) for r in service.got]
    assert kinds == [("open", True), ("message", True), ("event", True), ("close", True)]
    sent = service.of("message")[0]["activity"]
    assert sent["text"] == "hi" and sent["conversation"] == {"id": conversation}
    assert sent["channelData"] == {"midtier": {"intent": "greet"}}
    assert service.of("event")[0]["activity"]["name"] == "handoff.status"
    assert service.of("close")[0] == {
        "id": service.got[-1].headers[DELIVERY_HEADER],
        "type": "close",
        "conversation": conversation,
        "reason": "resolved",
    }
    assert len({r.envelope["id"] for r in service.got}) == 4  # one id per request


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (web.Response(status=500), "HTTP 500"),
        (web.Response(status=404), "HTTP 404"),
        (web.Response(status=302, headers={"Location": "/elsewhere"}), "HTTP 302"),
        (web.Response(status=200, text="{not json"), "not valid"),
        (web.json_response({"activities": {"text": "x"}}), "no activities list"),
        (web.json_response({"activities": [{"type": 5}]}), "not valid"),
    ],
)
async def test_failing_answers_raise_provider_error(
    service: FakeService, provider: WebhookProvider, answer: web.Response, why: str
) -> None:
    _, leg = await _open(provider)

    async def bad(envelope: dict[str, Any]) -> web.Response:
        return answer

    service.answer = bad
    with pytest.raises(ProviderError, match=why) as caught:
        await provider.deliver(leg, message("hi"))
    assert not isinstance(caught.value, ProviderTimeout)


async def test_a_service_that_does_not_answer_is_cut_off_by_the_pool_at_its_deadline(
    service: FakeService, http: SharedHttp
) -> None:
    provider = _provider(http, service.url, timeout_s=0.3)
    await provider.start()
    try:
        _, leg = await _open(provider)
        service.answer = service.hang
        with pytest.raises(ProviderTimeout, match=r"no answer to message within 0\.3s"):
            await pooled(provider).deliver(leg, message("hi"))
        assert [m["activity"]["text"] for m in service.of("message")] == ["hi"]
    finally:
        await provider.stop()


async def test_an_open_cut_off_by_the_pool_leaves_nothing_waiting(
    service: FakeService, http: SharedHttp
) -> None:
    provider = _provider(http, service.url, timeout_s=0.3)
    await provider.start()
    try:
        service.answer = service.hang
        session = MidTierSession(user_id="u1", channel="webchat", channel_conversation_id="c")
        leg = Leg(channel="webchat", channel_conversation_id="c", provider="desk")
        with pytest.raises(ProviderTimeout, match="no answer to open"):
            await pooled(provider).open("desk", session, leg, _context())
        assert len(service.of("open")) == 1
        assert provider._opening == {}  # no callback waits for a conversation never opened
    finally:
        await provider.stop()


async def test_the_provider_alone_sets_no_deadline_of_its_own(service: FakeService) -> None:
    """Neither ``timeout_s`` nor the shared client's default ends a request: the pool does."""
    async with shared_http(total_s=0.1) as short:
        provider = _provider(short, service.url, timeout_s=0.3)
        await provider.start()
        try:
            _, leg = await _open(provider)
            service.answer = service.hang
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(2 * provider.config.timeout_s) as outer:
                    await provider.deliver(leg, message("hi"))
            assert outer.expired()  # ended by this deadline, not by anything the provider raised
        finally:
            await provider.stop()


async def test_open_fails_when_the_service_is_down(http: SharedHttp) -> None:
    p = _provider(http, f"http://127.0.0.1:{free_port()}/hook")
    await p.start()
    try:
        session = MidTierSession(user_id="u1", channel="webchat", channel_conversation_id="c")
        leg = Leg(channel="webchat", channel_conversation_id="c", provider="desk")
        with pytest.raises(ProviderError, match="open failed: ClientConnectorError"):
            await p.open(session, leg, _context())
        assert p._opening == {}  # nothing left waiting for this conversation
    finally:
        await p.stop()


async def test_health_uses_the_signed_health_url(
    service: FakeService, provider: WebhookProvider, http: SharedHttp
) -> None:
    assert await provider.health() is True
    assert service.got[-1].path == "/health" and service.got[-1].verified
    plain = _provider(http, service.url)
    assert await plain.health() is True and len(service.got) == 1  # no health_url: not asked
    down = _provider(http, service.url, "d", health_url=f"{service.base}/nope")
    assert await down.health() is False  # not started: not asked either
    assert len(service.got) == 1
    await down.start()
    try:
        assert await down.health() is False  # 405 from the service
    finally:
        await down.stop()


HOOK = "http://127.0.0.1/hook"


@pytest.mark.parametrize(
    ("settings", "key", "why"),
    [
        ({"secret": SECRET}, "url", "Field required"),
        ({"url": "ftp://x/hook", "secret": SECRET}, "url", "expected an http(s) URL"),
        ({"url": "http://", "secret": SECRET}, "url", "expected an http(s) URL"),
        ({"url": HOOK}, "secret", "Field required"),
        ({"url": HOOK, "secret": "short"}, "secret", "expected a secret of 16+ characters"),
        ({"url": HOOK, "secret": SECRET, "previous_secret": "old"}, "previous_secret", "16+"),
        ({"url": HOOK, "secret": SECRET, "health_url": "/health"}, "health_url", "http(s) URL"),
        ({"url": HOOK, "secret": SECRET, "sekret": 1}, "sekret", "unknown key"),
    ],
)
def test_bad_settings_name_the_key(settings: dict[str, Any], key: str, why: str) -> None:
    with pytest.raises(ConfigErrors) as caught:
        build(WebhookProvider, "desk", RecordingHost(), **settings)
    [error] = caught.value.errors
    assert (error.file, error.key) == ("providers.yaml", f"providers.desk.{key}")
    assert why in error.message


async def test_a_blank_health_url_means_no_health_checks(
    service: FakeService, http: SharedHttp
) -> None:
    p = _provider(http, service.url, health_url="")  # as ${PARTNER_HEALTH_URL:-} gives
    await p.start()
    try:
        assert await p.health() is True and service.got == []
    finally:
        await p.stop()


async def test_answer_over_the_size_limit_is_refused(
    service: FakeService, provider: WebhookProvider
) -> None:
    _, leg = await _open(provider)

    async def huge(envelope: dict[str, Any]) -> web.Response:
        return reply("x" * (1 << 20))

    service.answer = huge
    with pytest.raises(ProviderError, match="over 1 MiB"):
        await provider.deliver(leg, message("hi"))
