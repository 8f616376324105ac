"""The WhatsApp adapter against Meta's documented webhook payloads (``tests/payloads/
whatsapp``) and a fake Cloud API on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from support.channel_kits import meta as signing
from support.channel_kits import whatsapp as kit
from support.fake_platform import FakePlatform, fake_platform

from adapters.channels.whatsapp import WhatsAppChannel, WhatsAppSettings
from connector.activity import Activity, ChannelAccount, ConversationAccount
from connector.context import SharedHttp
from connector.errors import ChannelError, DeliveryRejected

NUMBER = kit.PHONE_NUMBER_ID
WA_ID = "16505551234"


def _channel(
    api_base: str = "http://127.0.0.1:9", http: SharedHttp | None = None, **extra: Any
) -> WhatsAppChannel:
    settings = WhatsAppSettings(
        app_secret=kit.APP_SECRET,
        verify_token=kit.VERIFY_TOKEN,
        access_token=kit.ACCESS_TOKEN,
        api_base=api_base,
        **extra,
    )
    return WhatsAppChannel(signing.context(settings, http or SharedHttp(), "whatsapp"))


async def _parse(name: str, channel: WhatsAppChannel | None = None) -> list[Activity]:
    call = signing.request(signing.signed(signing.payload("whatsapp", name), kit.APP_SECRET))
    channel = channel or _channel()
    await channel.verify(call)
    return await channel.parse(call)


# --------------------------------------------------------------------------- parse


async def test_a_text_message_is_addressed_to_the_number_and_the_user_by_name() -> None:
    [activity] = await _parse("text.json")
    assert activity.text == "Does it come in another color?"
    assert activity.id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA="
    assert activity.conversation is not None
    assert activity.conversation.id == f"{NUMBER}:{WA_ID}"
    assert activity.from_ is not None
    assert (activity.from_.id, activity.from_.name) == (WA_ID, "Sheena Nelson")
    assert activity.recipient is not None and activity.recipient.id == NUMBER
    assert activity.channel_id == "whatsapp"
    assert activity.timestamp == datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC)


async def test_every_message_carries_its_id_as_the_reply_address_for_typing() -> None:
    [activity] = await _parse("text.json")
    assert activity.channel_data is not None
    assert activity.channel_data["address"] == {"message_id": activity.id}


async def test_the_senders_number_is_a_proven_identity() -> None:
    # WhatsApp proves the number (for continuing a session from another channel).
    [activity] = await _parse("text.json")
    assert activity.channel_data is not None
    assert activity.channel_data["identities"] == [f"phone:+{WA_ID}"]


@pytest.mark.parametrize(
    ("name", "content_type", "caption"),
    [
        ("image.json", "image/jpeg", "Black jacket"),
        ("audio.json", "audio/ogg; codecs=opus", None),
        ("video.json", "video/mp4", "Here it is"),
        ("document.json", "application/pdf", "Receipt"),
        ("sticker.json", "image/webp", None),
    ],
)
async def test_media_keeps_whatsapps_media_id_since_there_is_no_url(
    name: str, content_type: str, caption: str | None
) -> None:
    [activity] = await _parse(name)
    [attachment] = activity.attachments or []
    assert attachment.content_type == content_type
    assert attachment.content_url is None
    media_id = attachment.content["whatsapp_media_id"]
    assert media_id.isdigit() and attachment.name == media_id
    assert activity.text == caption


async def test_a_document_keeps_its_file_name() -> None:
    [activity] = await _parse("document.json")
    assert (activity.attachments or [])[0].content["filename"] == "receipt-2025-04.pdf"


@pytest.mark.parametrize(
    ("name", "text", "reply"),
    [
        ("button_reply.json", "cancel-button", "button_reply"),
        ("list_reply.json", "priority_express", "list_reply"),
    ],
)
async def test_a_reply_to_buttons_or_a_list_gives_the_bot_the_choices_value(
    name: str, text: str, reply: str
) -> None:
    [activity] = await _parse(name)
    assert activity.text == text
    assert activity.value["type"] == reply and activity.value[reply]["id"] == text


async def test_a_template_quick_reply_button_gives_its_payload() -> None:
    [activity] = await _parse("button.json")
    assert activity.text == "Unsubscribe"
    assert activity.value == {"payload": "Unsubscribe", "text": "Unsubscribe"}


async def test_a_location_becomes_geo_coordinates_with_its_name_and_address() -> None:
    [activity] = await _parse("location.json")
    assert activity.entities == [
        {
            "type": "GeoCoordinates",
            "latitude": 37.44221496582,
            "longitude": -122.16165161133,
            "name": "Philz Coffee",
            "address": "101 Forest Ave, Palo Alto, CA 94301",
        }
    ]


@pytest.mark.parametrize("name", ["status_delivered.json", "status_read.json"])
async def test_delivery_and_read_statuses_are_dropped_silently(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        assert await _parse(name) == []
    assert caplog.records == []


async def test_a_failed_status_is_dropped_and_logged_once_with_its_error_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    channel = _channel()
    with caplog.at_level(logging.INFO):
        assert await _parse("status_failed.json", channel) == []
        assert await _parse("status_failed.json", channel) == []  # Meta retried the webhook
    [record] = caplog.records
    assert record.levelno == logging.WARNING and "error 131047" in record.getMessage()
    assert WA_ID not in record.getMessage()  # a phone number is not for logs


async def test_a_batch_gives_every_message_of_every_change_in_order() -> None:
    activities = await _parse("batch.json")
    assert [a.text for a in activities] == ["first", "second, from Kai", "third"]
    assert [a.from_.name for a in activities if a.from_] == [
        "Sheena Nelson",
        "Kai Lee",
        "Sheena Nelson",
    ]


async def test_an_unsupported_message_kind_is_ignored_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    channel = _channel()
    with caplog.at_level(logging.INFO, logger="midtier.channels"):
        assert await _parse("reaction.json", channel) == []
        assert await _parse("reaction.json", channel) == []
    assert [r.getMessage() for r in caplog.records] == ["channel whatsapp ignores reaction events"]


async def test_messages_to_another_number_are_ignored_when_the_number_is_configured() -> None:
    assert await _parse("text.json", _channel(phone_number_id="999")) == []
    assert len(await _parse("text.json", _channel(phone_number_id=NUMBER))) == 1


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
        conversation=ConversationAccount(id=f"{NUMBER}:{WA_ID}"),
        recipient=ChannelAccount(id=WA_ID, role="user"),
        **fields,
    )


def _actions(*titles: str) -> dict[str, Any]:
    return {"actions": [{"type": "imBack", "title": t, "value": t.lower()} for t in titles]}


async def test_a_reply_goes_from_the_receiving_number_with_the_token_in_a_header(
    platform: FakePlatform, http: SharedHttp
) -> None:
    sent = await _channel(platform.base_url, http).send(_reply(text="Hi Sheena"))
    [call] = platform.calls
    assert (call.method, call.path, call.query) == ("POST", kit.SEND_PATH, {})
    assert call.headers["Authorization"] == f"Bearer {kit.ACCESS_TOKEN}"
    assert call.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": WA_ID,
        "type": "text",
        "text": {"body": "Hi Sheena", "preview_url": False},
    }
    assert sent == "wamid.sent-1"


async def test_text_longer_than_4096_characters_is_cut_to_4096(
    platform: FakePlatform, http: SharedHttp
) -> None:
    await _channel(platform.base_url, http).send(_reply(text="x" * 5000))
    assert len(platform.calls[0].json["text"]["body"]) == 4096


async def test_up_to_three_choices_become_reply_buttons(
    platform: FakePlatform, http: SharedHttp
) -> None:
    activity = _reply(text="Anything else?", suggested_actions=_actions("Yes", "No thanks"))
    await _channel(platform.base_url, http).send(activity)
    body = platform.calls[0].json
    assert body["type"] == "interactive"
    assert body["interactive"] == {
        "type": "button",
        "body": {"text": "Anything else?"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                {"type": "reply", "reply": {"id": "no thanks", "title": "No thanks"}},
            ]
        },
    }


async def test_four_to_ten_choices_become_a_list(platform: FakePlatform, http: SharedHttp) -> None:
    titles = ["Cards", "Payments", "Transfers", "A title longer than twenty-four"]
    await _channel(platform.base_url, http, list_button="Topics").send(
        _reply(text="Which topic?", suggested_actions=_actions(*titles))
    )
    interactive = platform.calls[0].json["interactive"]
    assert interactive["type"] == "list" and interactive["body"] == {"text": "Which topic?"}
    [section] = interactive["action"]["sections"]
    assert interactive["action"]["button"] == "Topics"
    assert section["rows"][3] == {
        "id": "a title longer than twenty-four",
        "title": "A title longer than twe…",
    }


async def test_more_than_ten_choices_become_numbered_text(
    platform: FakePlatform, http: SharedHttp
) -> None:
    titles = [f"Option {n}" for n in range(1, 12)]
    await _channel(platform.base_url, http).send(
        _reply(text="Pick one", suggested_actions=_actions(*titles))
    )
    body = platform.calls[0].json
    assert body["type"] == "text"
    assert body["text"]["body"].splitlines()[1:] == [f"{n}. Option {n}" for n in range(1, 12)]


async def test_buttons_whose_titles_collide_once_cut_become_a_list(
    platform: FakePlatform, http: SharedHttp
) -> None:
    titles = ["Freeze my debit card now", "Freeze my debit card later"]
    await _channel(platform.base_url, http).send(
        _reply(text="When?", suggested_actions=_actions(*titles))
    )
    assert platform.calls[0].json["interactive"]["type"] == "list"


async def test_an_image_goes_by_link_before_the_text(
    platform: FakePlatform, http: SharedHttp
) -> None:
    image = {"contentType": "image/png", "contentUrl": "https://cdn.example.com/card.png"}
    await _channel(platform.base_url, http).send(_reply(text="Your card", attachments=[image]))
    first, second = (c.json for c in platform.calls)
    assert (first["type"], first["image"]) == (
        "image",
        {"link": "https://cdn.example.com/card.png"},
    )
    assert second["text"]["body"] == "Your card"


async def test_typing_marks_the_last_message_read_and_shows_the_indicator(
    platform: FakePlatform, http: SharedHttp
) -> None:
    stamp = {"midtier": {"speaker": "bot", "address": {"message_id": "wamid.last"}}}
    assert (
        await _channel(platform.base_url, http).send(_reply(type="typing", channel_data=stamp))
        == ""
    )
    [call] = platform.calls
    assert call.json == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.last",
        "typing_indicator": {"type": "text"},
    }


async def test_typing_without_a_message_to_tie_it_to_sends_nothing(
    platform: FakePlatform, http: SharedHttp
) -> None:
    assert await _channel(platform.base_url, http).send(_reply(type="typing")) == ""
    assert platform.calls == []


async def test_a_conversation_id_that_is_not_number_and_wa_id_is_rejected(
    http: SharedHttp,
) -> None:
    for conversation in ("16505551234", "../me:16505551234", ":16505551234"):
        activity = Activity(text="hi", conversation=ConversationAccount(id=conversation))
        with pytest.raises(DeliveryRejected):
            await _channel(http=http).send(activity)


# --------------------------------------------------------------------------- errors


async def test_a_429_with_retry_after_is_retried_after_that_wait(
    platform: FakePlatform, http: SharedHttp
) -> None:
    platform.fail_next(1, status=429, headers={"Retry-After": "12"})
    with pytest.raises(ChannelError) as raised:
        await _channel(platform.base_url, http).send(_reply(text="hi"))
    assert not isinstance(raised.value, DeliveryRejected) and raised.value.retry_after == 12


async def test_a_5xx_is_retried(platform: FakePlatform, http: SharedHttp) -> None:
    platform.fail_next(1, status=500)
    with pytest.raises(ChannelError) as raised:
        await _channel(platform.base_url, http).send(_reply(text="hi"))
    assert not isinstance(raised.value, DeliveryRejected)


@pytest.mark.parametrize(
    ("name", "rejected"),
    [
        ("error_outside_window.json", True),
        ("error_undeliverable.json", True),
        ("error_invalid_parameter.json", True),
        ("error_rate_limited.json", False),
        ("error_pair_rate_limited.json", False),
        ("error_temporary.json", False),
    ],
)
async def test_cloud_api_errors_are_retried_or_rejected_for_good(
    platform: FakePlatform, http: SharedHttp, name: str, rejected: bool
) -> None:
    body = signing.json_payload("whatsapp", name)
    platform.fail_next(1, status=400, body=body)
    with pytest.raises(ChannelError) as raised:
        await _channel(platform.base_url, http).send(_reply(text="hi"))
    assert isinstance(raised.value, DeliveryRejected) is rejected
    assert str(body["error"]["code"]) in str(raised.value)
    assert kit.ACCESS_TOKEN not in str(raised.value)
