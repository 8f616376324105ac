"""Sending through Twilio's Messages API (a fake on 127.0.0.1 with Twilio's documented
answers): text, numbered choices, images, senders, limits; Twilio's errors as the outbox
needs them; and twilio-python's REST client sending the same request and reading our fake."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from support.channel_kits.twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    MESSAGES,
    OUR_NUMBER,
    TwilioKit,
    channel,
    form_of,
    payload,
)
from support.fake_platform import FakePlatform, fake_platform

from connector.activity import Activity, ChannelAccount, ConversationAccount
from connector.context import SharedHttp
from connector.errors import ChannelError, DeliveryRejected

USER = "+14155552345"
WA_USER = "whatsapp:+14155552345"
WA_NUMBER = "whatsapp:+14155238886"


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakePlatform, SharedHttp, TwilioKit]]:
    """The fake Messages API with Twilio's documented answers, and an open HTTP client."""
    kit = TwilioKit()
    async with fake_platform() as platform:
        kit.prepare(platform)
        http = SharedHttp()
        http.open(aiohttp.ClientSession())
        try:
            yield platform, http, kit
        finally:
            await http.close()


def reply(
    text: str | None = None, *, user: str = USER, ours: str = OUR_NUMBER, **fields: Any
) -> Activity:
    """An outbound activity as the core hands it over: to the user, in their conversation."""
    values: dict[str, Any] = {
        "type": "message",
        "text": text,
        "conversation": ConversationAccount(id=f"{ours}:{user}"),
        "recipient": ChannelAccount(id=user, role="user"),
        **fields,
    }
    return Activity(**values)


API = tuple[FakePlatform, SharedHttp, TwilioKit]


async def test_text_goes_to_the_user_from_the_number_they_wrote_to(api: API) -> None:
    platform, http, _ = api
    sid = await channel(http, api_base=platform.base_url).send(reply("Hi there"))
    [call] = platform.to(MESSAGES)
    assert sid == "SM00000000000000000000000000000001"
    assert form_of(call) == [("To", USER), ("From", OUR_NUMBER), ("Body", "Hi there")]
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    basic = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert call.headers["Authorization"] == f"Basic {basic}"


async def test_a_whatsapp_reply_goes_back_over_whatsapp(api: API) -> None:
    platform, http, _ = api
    await channel(http, api_base=platform.base_url).send(
        reply("Hi", user=WA_USER, ours=WA_NUMBER, recipient=None)
    )
    [call] = platform.to(MESSAGES)
    assert dict(form_of(call)) == {"To": WA_USER, "From": WA_NUMBER, "Body": "Hi"}


async def test_a_configured_sender_or_messaging_service_sends_instead(api: API) -> None:
    platform, http, _ = api
    service = "MG" + "ab" * 16
    await channel(http, api_base=platform.base_url, from_number="+15005550006").send(reply("a"))
    await channel(http, api_base=platform.base_url, messaging_service_sid=service).send(reply("b"))
    first, second = (dict(form_of(c)) for c in platform.to(MESSAGES))
    assert first == {"To": USER, "From": "+15005550006", "Body": "a"}
    assert second == {"To": USER, "MessagingServiceSid": service, "Body": "b"}


async def test_choices_become_numbered_lines_since_sms_has_no_buttons(api: API) -> None:
    platform, http, _ = api
    actions = [
        {"type": "imBack", "title": "Freeze my card", "value": "freeze"},
        {"type": "imBack", "title": "Talk to a person", "value": "agent"},
    ]
    card = {
        "contentType": "application/vnd.microsoft.card.hero",
        "content": {"title": "Anything else?", "buttons": [{"type": "imBack", "title": "No"}]},
    }
    adapter = channel(http, api_base=platform.base_url)
    await adapter.send(reply("What now?", suggested_actions={"actions": actions}))
    await adapter.send(reply(attachments=[card]))
    first, second = (dict(form_of(c))["Body"] for c in platform.to(MESSAGES))
    assert first == "What now?\n1. Freeze my card\n2. Talk to a person"
    assert second == "Anything else?\n1. No"


async def test_images_go_as_media_urls_and_whatsapp_takes_one_per_message(api: API) -> None:
    platform, http, _ = api
    pictures = [
        {"contentType": "image/png", "contentUrl": f"https://cdn.example.com/{n}.png"}
        for n in range(3)
    ]
    adapter = channel(http, api_base=platform.base_url)
    await adapter.send(reply("Receipts", attachments=pictures))
    await adapter.send(reply(None, user=WA_USER, ours=WA_NUMBER, attachments=pictures))
    sms, whatsapp = (form_of(c) for c in platform.to(MESSAGES))
    assert [v for k, v in sms if k == "MediaUrl"] == [p["contentUrl"] for p in pictures]
    assert dict(sms)["Body"] == "Receipts"
    assert [v for k, v in whatsapp if k == "MediaUrl"] == [pictures[0]["contentUrl"]]
    assert dict(whatsapp)["Body"] == "\n".join(p["contentUrl"] for p in pictures[1:])


async def test_long_text_is_cut_to_1600_utf16_units(api: API) -> None:
    platform, http, _ = api
    adapter = channel(http, api_base=platform.base_url)
    await adapter.send(reply("x" * 2000))
    await adapter.send(reply("🙂" * 1000))  # 2000 UTF-16 units
    await adapter.send(reply("y" * 1600))
    plain, emoji, exact = (dict(form_of(c))["Body"] for c in platform.to(MESSAGES))
    assert plain == "x" * 1599 + "…"
    assert emoji == "🙂" * 799 + "…" and len(emoji.encode("utf-16-le")) // 2 <= 1600
    assert exact == "y" * 1600


async def test_typing_and_events_send_nothing(api: API) -> None:
    platform, http, _ = api
    adapter = channel(http, api_base=platform.base_url)
    assert await adapter.send(reply(type="typing")) == ""
    assert await adapter.send(reply(type="event", name="handoff.status")) == ""
    assert await adapter.send(reply(None)) == ""  # nothing to say
    assert platform.calls == []


async def test_a_429_is_retried_after_the_wait_twilio_asks_for(api: API) -> None:
    platform, http, _ = api
    error = payload("errors/20429.json")
    platform.fail_next(status=429, body=error, headers={"Retry-After": "7"})
    with pytest.raises(ChannelError) as raised:
        await channel(http, api_base=platform.base_url).send(reply("hi"))
    assert not isinstance(raised.value, DeliveryRejected)
    assert raised.value.retry_after == 7


async def test_a_5xx_is_retried(api: API) -> None:
    platform, http, _ = api
    platform.fail_next(status=500, body=payload("errors/20500.json"))
    with pytest.raises(ChannelError) as raised:
        await channel(http, api_base=platform.base_url).send(reply("hi"))
    assert not isinstance(raised.value, DeliveryRejected)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (21610, "replied STOP"),
        (21211, "not a valid phone number"),
        (21614, "not a mobile number"),
        (63016, "24-hour window"),
        (21408, "region"),
        (21617, "HTTP 400"),  # any other 4xx: refused with Twilio's words
    ],
)
async def test_twilios_permanent_errors_are_refusals(api: API, code: int, reason: str) -> None:
    platform, http, _ = api
    platform.fail_next(status=400, body=payload(f"errors/{code}.json"))
    with pytest.raises(DeliveryRejected, match=reason) as raised:
        await channel(http, api_base=platform.base_url).send(reply("hi"))
    assert AUTH_TOKEN not in str(raised.value) and ACCOUNT_SID not in str(raised.value)


async def test_we_send_what_twilio_pythons_rest_client_sends_and_it_reads_our_fake(
    api: API,
) -> None:
    from twilio.rest import Client

    platform, http, _ = api
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = platform.base_url  # the SDK's own request, to our fake
    media = ["https://cdn.example.com/a.png", "https://cdn.example.com/b.png"]
    # The SDK's synchronous client (its async one uses aiohttp's deprecated BasicAuth).
    message = await asyncio.to_thread(
        client.messages.create, to=USER, from_=OUR_NUMBER, body="Your receipts", media_url=media
    )
    pictures = [{"contentType": "image/png", "contentUrl": url} for url in media]
    sid = await channel(http, api_base=platform.base_url).send(
        reply("Your receipts", attachments=pictures)
    )
    theirs, ours = platform.to(MESSAGES)
    assert sorted(form_of(ours)) == sorted(form_of(theirs))
    assert ours.headers["Authorization"] == theirs.headers["Authorization"]
    assert message.sid == "SM00000000000000000000000000000001" and message.status == "queued"
    assert message.to == USER and message.body == "Your receipts"
    assert sid == "SM00000000000000000000000000000002"
