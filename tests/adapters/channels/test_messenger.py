"""The Messenger adapter against Meta's documented webhook payloads (``tests/payloads/
messenger``) and a fake Send API on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from support.channel_kits import messenger as kit
from support.channel_kits import meta as signing
from support.fake_platform import FakePlatform, fake_platform

from adapters.channels.messenger import MessengerChannel, MessengerSettings
from connector.activity import Activity, ChannelAccount, ConversationAccount
from connector.context import SharedHttp
from connector.errors import ChannelError, DeliveryRejected

PAGE = kit.PAGE_ID
PSID = "6783452093874651"


def _channel(
    api_base: str = "http://127.0.0.1:9", http: SharedHttp | None = None
) -> MessengerChannel:
    settings = MessengerSettings(
        app_secret=kit.APP_SECRET,
        verify_token=kit.VERIFY_TOKEN,
        page_access_token=kit.PAGE_TOKEN,
        api_base=api_base,
    )
    return MessengerChannel(signing.context(settings, http or SharedHttp(), "messenger"))


async def _parse(name: str) -> list[Activity]:
    call = signing.request(signing.signed(signing.payload("messenger", name), kit.APP_SECRET))
    channel = _channel()
    await channel.verify(call)
    return await channel.parse(call)


# --------------------------------------------------------------------------- parse


async def test_a_text_message_is_addressed_to_the_page_and_the_user() -> None:
    [activity] = await _parse("text.json")
    assert activity.type == "message" and activity.text == "hello, world!"
    assert activity.id == "mid.1457764197618:41d102a3e1ae206a38"
    assert activity.conversation is not None and activity.conversation.id == f"{PAGE}:{PSID}"
    assert activity.from_ is not None and activity.from_.id == PSID
    assert activity.recipient is not None and activity.recipient.id == PAGE
    assert activity.channel_id == "messenger"
    assert activity.timestamp == datetime(2016, 3, 23, 0, 25, 52, 478000, tzinfo=UTC)


async def test_a_quick_reply_gives_the_bot_its_payload_as_text_and_keeps_it_as_value() -> None:
    [activity] = await _parse("quick_reply.json")
    assert activity.text == "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_RED"
    assert activity.value == {"payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_RED"}


async def test_each_media_attachment_comes_with_its_kind_and_url_in_order() -> None:
    activities = await _parse("attachments.json")
    found = [(a.content_type, a.content_url) for x in activities for a in x.attachments or []]
    assert [kind for kind, _ in found] == [
        "image/*",
        "audio/*",
        "video/*",
        "application/octet-stream",
    ]
    assert all(url and url.startswith("https://") for _, url in found)
    assert [a.text for a in activities] == [None] * 4


async def test_a_shared_location_becomes_geo_coordinates() -> None:
    [activity] = await _parse("location.json")
    assert activity.entities == [
        {"type": "GeoCoordinates", "latitude": 37.483872693672, "longitude": -122.14900441942}
    ]


async def test_a_sticker_sent_both_as_sticker_and_as_image_is_one_attachment() -> None:
    [activity] = await _parse("sticker.json")
    assert [a.content_type for a in activity.attachments or []] == ["image/*"]


async def test_a_postback_gives_its_payload_as_text_and_keeps_the_postback_as_value() -> None:
    [activity] = await _parse("postback.json")
    assert activity.id == "m_1457764197618:41d102a3e1ae206a38"
    assert activity.text == "reset_password"
    assert activity.value["title"] == "Reset my password"
    assert activity.value["referral"]["ref"] == "support-page"


@pytest.mark.parametrize("name", ["echo.json", "delivery.json", "read.json"])
async def test_the_pages_own_echoes_and_the_receipts_are_dropped(name: str) -> None:
    assert await _parse(name) == []


async def test_a_batch_gives_every_user_message_of_every_entry_in_order() -> None:
    activities = await _parse("batch.json")
    assert [a.text for a in activities] == ["first", "second", "third, from someone else"]
    assert [a.id for a in activities] == ["m_first", "m_second", "m_third"]
    assert activities[2].conversation is not None
    assert activities[2].conversation.id == f"{PAGE}:7214450293865512"


async def test_an_unsupported_event_is_ignored_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    channel = _channel()
    call = signing.request(
        signing.signed(signing.payload("messenger", "reaction.json"), kit.APP_SECRET)
    )
    with caplog.at_level(logging.INFO, logger="midtier.channels"):
        assert await channel.parse(call) == []
        assert await channel.parse(call) == []
    assert [r.getMessage() for r in caplog.records] == ["channel messenger ignores reaction events"]


# --------------------------------------------------------------------------- send


@pytest.fixture
async def platform() -> AsyncIterator[FakePlatform]:
    async with fake_platform() as running:
        kit.Kit().prepare(running)
        yield running


@pytest.fixture
async def http() -> AsyncIterator[SharedHttp]:
    shared = SharedHttp()
    shared.open(aiohttp.ClientSession())
    yield shared
    await shared.close()


def _reply(**fields: Any) -> Activity:
    return Activity(
        conversation=ConversationAccount(id=f"{PAGE}:{PSID}"),
        recipient=ChannelAccount(id=PSID, role="user"),
        **fields,
    )


def _actions(*titles: str) -> dict[str, Any]:
    return {"actions": [{"type": "imBack", "title": t, "value": t.lower()} for t in titles]}


async def test_a_reply_goes_to_the_send_api_with_the_token_in_a_header_never_the_url(
    platform: FakePlatform, http: SharedHttp
) -> None:
    sent = await _channel(platform.base_url, http).send(_reply(text="Hi there"))
    [call] = platform.calls
    assert (call.method, call.path, call.query) == ("POST", kit.SEND_PATH, {})
    assert call.headers["Authorization"] == f"Bearer {kit.PAGE_TOKEN}"
    assert call.json == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Hi there"},
    }
    assert sent == "m_1"


async def test_text_longer_than_2000_characters_is_cut_to_2000(
    platform: FakePlatform, http: SharedHttp
) -> None:
    await _channel(platform.base_url, http).send(_reply(text="x" * 2500))
    text = platform.calls[0].json["message"]["text"]
    assert len(text) == 2000 and text.endswith("…")


async def test_choices_become_quick_replies_whose_payloads_are_the_values(
    platform: FakePlatform, http: SharedHttp
) -> None:
    activity = _reply(
        text="Pick one", suggested_actions=_actions("Cards", "A very long title here")
    )
    await _channel(platform.base_url, http).send(activity)
    message = platform.calls[0].json["message"]
    assert message["text"] == "Pick one"
    assert message["quick_replies"] == [
        {"content_type": "text", "title": "Cards", "payload": "cards"},
        {
            "content_type": "text",
            "title": "A very long title h…",
            "payload": "a very long title here",
        },
    ]


async def test_more_choices_than_13_quick_replies_become_numbered_text(
    platform: FakePlatform, http: SharedHttp
) -> None:
    titles = [f"Option {n}" for n in range(1, 15)]
    await _channel(platform.base_url, http).send(
        _reply(text="Pick one", suggested_actions=_actions(*titles))
    )
    message = platform.calls[0].json["message"]
    assert "quick_replies" not in message
    assert message["text"].splitlines() == ["Pick one", *[f"{n}. Option {n}" for n in range(1, 15)]]


async def test_choices_under_a_very_long_text_stay_visible_in_the_numbered_fallback(
    platform: FakePlatform, http: SharedHttp
) -> None:
    titles = [f"Option {n}" for n in range(1, 15)]
    await _channel(platform.base_url, http).send(
        _reply(text="x" * 3000, suggested_actions=_actions(*titles))
    )
    text = platform.calls[0].json["message"]["text"]
    assert len(text) <= 2000 and text.endswith("14. Option 14")


async def test_an_image_goes_as_an_image_attachment_before_the_text(
    platform: FakePlatform, http: SharedHttp
) -> None:
    image = {"contentType": "image/png", "contentUrl": "https://cdn.example.com/card.png"}
    await _channel(platform.base_url, http).send(
        _reply(text="Your card", attachments=[image], suggested_actions=_actions("Freeze"))
    )
    first, second = (c.json["message"] for c in platform.calls)
    assert first == {
        "attachment": {"type": "image", "payload": {"url": "https://cdn.example.com/card.png"}}
    }
    assert second["text"] == "Your card" and second["quick_replies"][0]["payload"] == "freeze"


async def test_typing_is_shown_with_the_typing_on_sender_action(
    platform: FakePlatform, http: SharedHttp
) -> None:
    assert await _channel(platform.base_url, http).send(_reply(type="typing")) == ""
    [call] = platform.calls
    assert call.json == {"recipient": {"id": PSID}, "sender_action": "typing_on"}


async def test_activities_messenger_cannot_show_are_not_sent(
    platform: FakePlatform, http: SharedHttp
) -> None:
    channel = _channel(platform.base_url, http)
    assert await channel.send(_reply(type="event", name="midtier.something")) == ""
    assert await channel.send(_reply(text=None)) == ""
    assert platform.calls == []


async def test_a_conversation_id_that_is_not_page_and_psid_is_rejected(http: SharedHttp) -> None:
    activity = Activity(text="hi", conversation=ConversationAccount(id="not-a-page"))
    with pytest.raises(DeliveryRejected):
        await _channel(http=http).send(activity)


# --------------------------------------------------------------------------- errors


async def test_a_429_with_retry_after_is_retried_after_that_wait(
    platform: FakePlatform, http: SharedHttp
) -> None:
    platform.fail_next(1, status=429, headers={"Retry-After": "7"})
    with pytest.raises(ChannelError) as raised:
        await _channel(platform.base_url, http).send(_reply(text="hi"))
    assert not isinstance(raised.value, DeliveryRejected) and raised.value.retry_after == 7


async def test_a_5xx_is_retried(platform: FakePlatform, http: SharedHttp) -> None:
    platform.fail_next(1, status=503)
    with pytest.raises(ChannelError) as raised:
        await _channel(platform.base_url, http).send(_reply(text="hi"))
    assert not isinstance(raised.value, DeliveryRejected)


@pytest.mark.parametrize(
    ("name", "rejected"),
    [
        ("error_outside_window.json", True),
        ("error_user_unavailable.json", True),
        ("error_no_matching_user.json", True),
        ("error_rate_limited.json", False),
        ("error_temporary.json", False),
    ],
)
async def test_send_api_errors_are_retried_or_rejected_for_good(
    platform: FakePlatform, http: SharedHttp, name: str, rejected: bool
) -> None:
    body = signing.json_payload("messenger", name)
    platform.fail_next(1, status=400, body=body)
    with pytest.raises(ChannelError) as raised:
        await _channel(platform.base_url, http).send(_reply(text="hi"))
    assert isinstance(raised.value, DeliveryRejected) is rejected
    assert str(body["error"]["code"]) in str(raised.value)
    assert kit.PAGE_TOKEN not in str(raised.value)
