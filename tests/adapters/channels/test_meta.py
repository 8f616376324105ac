"""What Messenger and WhatsApp share, checked on both adapters: Meta's webhook signature, the
subscription handshake, Graph API errors, and that no signed payload, however wrong its
fields, raises anything but a 400.

Meta has no official Python SDK that verifies webhooks; the kits sign with the recipe from
Meta's documentation, written out independently in ``support.channel_kits.meta``.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.channel_kits import WebhookCall
from support.channel_kits import messenger as messenger_kit
from support.channel_kits import meta as signing
from support.channel_kits import whatsapp as whatsapp_kit

from adapters.channels import meta
from adapters.channels.messenger import MessengerChannel, MessengerSettings
from adapters.channels.whatsapp import WhatsAppChannel, WhatsAppSettings
from connector.context import SharedHttp
from connector.errors import AuthError, ChannelError, DeliveryRejected, Forbidden, MalformedPayload

Channel = MessengerChannel | WhatsAppChannel


def _messenger() -> MessengerChannel:
    settings = MessengerSettings(
        app_secret=messenger_kit.APP_SECRET,
        verify_token=messenger_kit.VERIFY_TOKEN,
        page_access_token=messenger_kit.PAGE_TOKEN,
    )
    return MessengerChannel(signing.context(settings, SharedHttp(), "messenger"))


def _whatsapp() -> WhatsAppChannel:
    settings = WhatsAppSettings(
        app_secret=whatsapp_kit.APP_SECRET,
        verify_token=whatsapp_kit.VERIFY_TOKEN,
        access_token=whatsapp_kit.ACCESS_TOKEN,
    )
    return WhatsAppChannel(signing.context(settings, SharedHttp(), "whatsapp"))


CASES: dict[str, tuple[Callable[[], Channel], str, str]] = {
    "messenger": (_messenger, messenger_kit.APP_SECRET, messenger_kit.VERIFY_TOKEN),
    "whatsapp": (_whatsapp, whatsapp_kit.APP_SECRET, whatsapp_kit.VERIFY_TOKEN),
}


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[str, Channel, str, str]:
    build, secret, token = CASES[request.param]
    return request.param, build(), secret, token


def _text_body(platform: str, text: str = "hello") -> bytes:
    kit = messenger_kit if platform == "messenger" else whatsapp_kit
    return signing.encode(kit.text_event(text, user="16505551234", message_id="mid-1"))


async def test_a_body_signed_with_the_app_secret_verifies_and_parses(
    case: tuple[str, Channel, str, str],
) -> None:
    platform, channel, secret, _ = case
    call = signing.signed(_text_body(platform), secret)
    await channel.verify(signing.request(call))
    [activity] = await channel.parse(signing.request(call))
    assert activity.text == "hello"


async def test_a_signature_made_with_another_secret_is_forbidden(
    case: tuple[str, Channel, str, str],
) -> None:
    platform, channel, secret, _ = case
    call = signing.forged(signing.signed(_text_body(platform), secret))
    with pytest.raises(Forbidden):
        await channel.verify(signing.request(call))


async def test_a_body_cut_short_no_longer_verifies(case: tuple[str, Channel, str, str]) -> None:
    platform, channel, secret, _ = case
    call = signing.signed(_text_body(platform), secret)
    with pytest.raises(Forbidden):
        await channel.verify(signing.request(call.with_body(call.body[:-10])))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha256=abc123",
        "sha256=" + "g" * 64,
        "sha1=" + "0" * 40,
        "SHA256=" + "0" * 64,
        "sha256=" + "é" * 64,
        "sha256=" + "0" * 64 + "\n",
        "0" * 64,
    ],
)
async def test_a_missing_or_malformed_signature_header_is_a_401_not_a_403(
    case: tuple[str, Channel, str, str], header: str | None
) -> None:
    platform, channel, _, _ = case
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers[signing.HEADER] = header
    with pytest.raises(AuthError) as raised:
        await channel.verify(signing.request(WebhookCall(_text_body(platform), headers)))
    assert not isinstance(raised.value, Forbidden)


async def test_the_legacy_sha1_header_alone_is_not_accepted(
    case: tuple[str, Channel, str, str],
) -> None:
    platform, channel, secret, _ = case
    body = _text_body(platform)
    sha1 = "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    call = WebhookCall(body, {"Content-Type": "application/json", "X-Hub-Signature": sha1})
    with pytest.raises(AuthError):
        await channel.verify(signing.request(call))


async def test_the_signature_is_over_the_escaped_bytes_meta_sends_not_a_reserialisation(
    case: tuple[str, Channel, str, str],
) -> None:
    # Meta's documentation: the signature is computed over the escaped unicode version of
    # the payload ("äöå" as "\u00e4\u00f6\u00e5"), with lower-case hex digits.
    platform, channel, secret, _ = case
    escaped = _text_body(platform, "äöå")
    assert b"\\u00e4\\u00f6\\u00e5" in escaped
    call = signing.signed(escaped, secret)
    assert call.headers[signing.HEADER] == call.headers[signing.HEADER].lower()
    await channel.verify(signing.request(call))
    [activity] = await channel.parse(signing.request(call))
    assert activity.text == "äöå"
    raw_utf8 = json.dumps(json.loads(escaped), ensure_ascii=False).encode()
    with pytest.raises(Forbidden):
        await channel.verify(signing.request(call.with_body(raw_utf8)))


async def test_the_subscription_handshake_answers_the_challenge_as_plain_text(
    case: tuple[str, Channel, str, str],
) -> None:
    _, channel, _, token = case
    query = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158201444"}
    call = WebhookCall(b"", method="GET")
    answer = await channel.handshake(signing.request(call, query=query))
    assert answer is not None
    assert (answer.status, answer.body, answer.content_type) == (200, b"1158201444", "text/plain")


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "meatyhamhock", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "TOKEN", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": "TOKEN"},
        {"hub.mode": "subscribe", "hub.verify_token": "TOKEN", "hub.challenge": "<b>\n</b>"},
        {"hub.mode": "subscribe", "hub.verify_token": "TOKENé", "hub.challenge": "1"},
        {},
    ],
)
async def test_a_handshake_without_this_channels_token_or_a_plain_challenge_is_forbidden(
    case: tuple[str, Channel, str, str], query: dict[str, str]
) -> None:
    _, channel, _, token = case
    query = {k: v.replace("TOKEN", token) for k, v in query.items()}
    with pytest.raises(Forbidden):
        await channel.handshake(signing.request(WebhookCall(b"", method="GET"), query=query))


async def test_a_signed_post_is_not_taken_for_a_handshake(
    case: tuple[str, Channel, str, str],
) -> None:
    platform, channel, secret, token = case
    call = signing.signed(_text_body(platform), secret)
    query = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1"}
    assert await channel.handshake(signing.request(call, query=query)) is None


def _graph(code: int, subcode: int | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": f"(#{code}) ...", "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": {**error, "fbtrace_id": "BLBz/WZt8dN"}}


@pytest.mark.parametrize("code", sorted(meta.RATE_LIMITED | meta.TEMPORARY))
def test_rate_limits_and_temporary_graph_errors_are_retried(code: int) -> None:
    decided = meta.classify(400, _graph(code))
    assert isinstance(decided, ChannelError) and not isinstance(decided, DeliveryRejected)


@pytest.mark.parametrize(
    ("code", "subcode"),
    [(10, 2018278), (131047, 2494010), (551, 1545041), (100, 2018001), (131026, None)],
)
def test_a_closed_window_or_an_unreachable_user_is_rejected_for_good(
    code: int, subcode: int | None
) -> None:
    assert isinstance(meta.classify(400, _graph(code, subcode)), DeliveryRejected)


def test_a_graph_error_is_described_with_its_codes_and_trace_id() -> None:
    decided = meta.classify(400, _graph(131047, 2494010))
    assert "131047/2494010" in str(decided) and "fbtrace_id BLBz/WZt8dN" in str(decided)


def test_other_graph_errors_and_5xx_are_left_to_the_default_mapping() -> None:
    # platform_api then refuses other 4xx for good and retries 5xx.
    assert meta.classify(400, _graph(100, 33)) is None
    assert meta.classify(400, _graph(190)) is None
    assert meta.classify(500, _graph(131047)) is None
    assert meta.classify(400, "<html>Bad Request</html>") is None
    assert meta.classify(400, {"error": "text"}) is None
    assert meta.classify(400, {"error": {"code": True}}) is None


def test_a_transient_flag_on_an_unknown_code_is_retried() -> None:
    body = _graph(99999)
    body["error"]["is_transient"] = True
    decided = meta.classify(400, body)
    assert isinstance(decided, ChannelError) and not isinstance(decided, DeliveryRejected)


# --------------------------------------------------------------------------- no 500s

PAYLOADS = Path(__file__).resolve().parents[2] / "payloads"
ODD_VALUES: list[Any] = [None, 0, -1, 1e300, True, "", "x", "1" * 40, [], {}, [1], {"a": 1}]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*path, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _paths(inner, (*path, i))


def _replaced(document: Any, path: tuple[Any, ...], new: Any) -> Any:
    out = copy.deepcopy(document)
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return out


def _mutations(platform: str) -> Iterator[tuple[str, bytes]]:
    for file in sorted((PAYLOADS / platform).glob("*.json")):
        if file.name.startswith("error_"):
            continue
        document = json.loads(file.read_bytes())
        for path in list(_paths(document))[1:]:
            for new in ODD_VALUES:
                yield (
                    f"{file.name}:{'.'.join(map(str, path))}={new!r}",
                    json.dumps(_replaced(document, path, new)).encode(),
                )


@pytest.mark.parametrize("platform", sorted(CASES))
async def test_no_signed_payload_with_wrong_types_or_missing_keys_raises_anything_but_a_400(
    platform: str,
) -> None:
    build, secret, _ = CASES[platform]
    channel = build()
    tried = 0
    for label, body in _mutations(platform):
        call = signing.request(signing.signed(body, secret))
        await channel.verify(call)
        try:
            await channel.parse(call)
        except MalformedPayload:
            pass
        except Exception as exc:  # the point of the test: say which mutation did it
            raise AssertionError(f"{label}: {type(exc).__name__}: {exc}") from exc
        tried += 1
    assert tried > 1000
