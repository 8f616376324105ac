"""The Telegram channel's inbound side: the secret header, and every documented update kind
read from the fixtures, cross-checked with python-telegram-bot's reading of the same bytes."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support.channel_kits.telegram import SECRET
from support.telegram_adapter import (
    PAYLOADS,
    channel,
    payload,
    payload_json,
    ptb_update,
    request,
)

from adapters.channels.telegram import TelegramChannel
from connector.channels import OK
from connector.context import settings_of
from connector.errors import AuthError, ConfigErrors, Forbidden, MalformedPayload

UPDATES = sorted(p.name for p in PAYLOADS.glob("*.json"))


@pytest.fixture
def tg(tmp_path: Path) -> TelegramChannel:
    return channel(tmp_path)


@pytest.mark.parametrize("name", UPDATES)
def test_every_fixture_is_an_update_python_telegram_bot_reads(name: str) -> None:
    data = payload_json(name)
    update = ptb_update(payload(name))
    assert update.update_id == data["update_id"]
    # PTB writes back the same kind of update (nothing it did not understand was dropped).
    assert set(update.to_dict()) == set(data)


async def test_a_text_message_is_an_activity_from_the_user_to_the_bot(tg: TelegramChannel) -> None:
    body = payload("message_text.json")
    [activity] = await tg.parse(request(body))
    ptb = ptb_update(body)
    assert ptb.effective_user is not None and ptb.effective_chat is not None
    assert ptb.message is not None
    assert activity.type == "message" and activity.text == "/start" == ptb.message.text
    assert activity.id == "10000" == str(ptb.update_id)  # the dedupe key
    assert activity.conversation is not None
    assert activity.conversation.id == "1111111" == str(ptb.effective_chat.id)
    assert activity.conversation.is_group is False
    assert activity.from_ is not None and activity.from_.id == str(ptb.effective_user.id)
    assert activity.from_.name == "Test Firstname Test Lastname" == ptb.effective_user.full_name
    assert activity.recipient is not None and activity.recipient.id == "123456"  # the bot
    assert activity.channel_id == "telegram"
    assert activity.timestamp == datetime.fromtimestamp(1441645532, UTC) == ptb.message.date
    assert activity.attachments is None and activity.entities is None


async def test_a_text_message_is_acknowledged_with_a_plain_200(tg: TelegramChannel) -> None:
    incoming = request(payload("message_text.json"))
    assert await tg.acknowledge(incoming, await tg.parse(incoming)) == OK


async def test_a_photo_is_its_largest_size_by_file_id_with_the_caption_as_text(
    tg: TelegramChannel,
) -> None:
    body = payload("message_photo.json")
    [activity] = await tg.parse(request(body))
    ptb = ptb_update(body)
    assert ptb.message is not None
    assert activity.text == "My card after the dishwasher" == ptb.message.caption
    [attachment] = [
        a.model_dump(by_alias=True, exclude_none=True) for a in activity.attachments or []
    ]
    largest = ptb.message.photo[-1]  # PTB: the sizes come smallest first
    assert attachment == {
        "contentType": "image/jpeg",
        "content": {"file_id": largest.file_id, "file_unique_id": largest.file_unique_id},
    }
    assert "contentUrl" not in attachment  # Telegram's file URLs hold the bot token


@pytest.mark.parametrize(
    ("name", "content_type", "file_name"),
    [
        ("message_document.json", "application/pdf", "Testfile.pdf"),
        ("message_voice.json", "audio/ogg", None),
        ("message_audio.json", "audio/mpeg", None),
        ("message_video.json", "video/mp4", "receipt.mp4"),
        ("message_sticker.json", "image/webp", None),
    ],
)
async def test_documents_voice_audio_video_and_stickers_are_attachments_by_file_id(
    tg: TelegramChannel, name: str, content_type: str, file_name: str | None
) -> None:
    body = payload(name)
    [activity] = await tg.parse(request(body))
    ptb = ptb_update(body)
    assert ptb.message is not None
    media: Any = ptb.message.effective_attachment
    [attachment] = activity.attachments or []
    assert attachment.content_type == content_type
    assert attachment.content == {"file_id": media.file_id, "file_unique_id": media.file_unique_id}
    assert attachment.name == file_name and attachment.content_url is None
    assert activity.text is None


async def test_a_shared_location_is_a_geocoordinates_entity(tg: TelegramChannel) -> None:
    body = payload("message_location.json")
    [activity] = await tg.parse(request(body))
    ptb = ptb_update(body)
    assert ptb.message is not None and ptb.message.location is not None
    assert activity.entities == [
        {
            "type": "GeoCoordinates",
            "latitude": ptb.message.location.latitude,
            "longitude": ptb.message.location.longitude,
        }
    ]
    assert activity.text is None and activity.attachments is None


async def test_a_shared_contact_is_a_person_entity(tg: TelegramChannel) -> None:
    [activity] = await tg.parse(request(payload("message_contact.json")))
    assert activity.entities == [
        {
            "type": "Person",
            "telephone": "+4915112345678",
            "givenName": "Test Firstname",
            "familyName": "Test Lastname",
            "identifier": "1111111",
        }
    ]


async def test_a_pressed_button_gives_its_value_and_stops_the_spinner(
    tg: TelegramChannel,
) -> None:
    body = payload("callback_query.json")
    incoming = request(body)
    [activity] = await tg.parse(incoming)
    ptb = ptb_update(body)
    assert ptb.callback_query is not None
    assert activity.text == "reset_password" == ptb.callback_query.data
    assert activity.value == "reset_password"
    assert activity.id == "10011"
    assert activity.conversation is not None and activity.conversation.id == "1111111"
    assert activity.from_ is not None and activity.from_.id == "1111111"
    answer = await tg.acknowledge(incoming, [activity])
    assert answer.status == 200 and answer.content_type == "application/json"
    assert json.loads(answer.body) == {
        "method": "answerCallbackQuery",
        "callback_query_id": ptb.callback_query.id,
    }


async def test_a_group_message_is_addressed_to_the_group(tg: TelegramChannel) -> None:
    [activity] = await tg.parse(request(payload("message_group.json")))
    assert activity.conversation is not None
    assert activity.conversation.id == "-1001234567890" and activity.conversation.is_group
    assert activity.from_ is not None and activity.from_.id == "1111111"


@pytest.mark.parametrize("name", ["message_from_bot.json", "message_dice.json"])
async def test_messages_from_bots_and_without_text_or_media_are_dropped(
    tg: TelegramChannel, name: str
) -> None:
    assert await tg.parse(request(payload(name))) == []


async def test_other_update_kinds_are_ignored_and_logged_once_per_kind(
    tg: TelegramChannel, caplog: pytest.LogCaptureFixture
) -> None:
    names = [
        "edited_message.json",
        "channel_post.json",
        "my_chat_member.json",
        "callback_query_inline.json",
    ]
    with caplog.at_level(logging.INFO, logger="midtier.channels"):
        for name in names * 2:
            assert await tg.parse(request(payload(name))) == []
    ignored = [r.getMessage() for r in caplog.records if "ignores" in r.getMessage()]
    assert len(ignored) == len(names)
    for kind in ("edited_message", "channel_post", "my_chat_member", "callback_query"):
        assert any(kind in line for line in ignored), ignored


async def test_the_secret_header_passes(tg: TelegramChannel) -> None:
    await tg.verify(request(payload("message_text.json")))


async def test_a_missing_secret_header_is_a_401(tg: TelegramChannel) -> None:
    with pytest.raises(AuthError) as caught:
        await tg.verify(request(payload("message_text.json"), secret=None))
    assert not isinstance(caught.value, Forbidden)


@pytest.mark.parametrize(
    "secret",
    ["not-the-secret", SECRET[:-1], SECRET + "x", SECRET.upper(), "sécret", "\udcff\udcfe"],
)
async def test_a_wrong_secret_header_is_a_403(tg: TelegramChannel, secret: str) -> None:
    with pytest.raises(Forbidden):
        await tg.verify(request(payload("message_text.json"), secret=secret))


async def test_a_body_cut_short_passes_the_secret_but_is_a_400(tg: TelegramChannel) -> None:
    body = payload("message_text.json")
    incoming = request(body[: len(body) // 2])
    await tg.verify(incoming)  # a static secret says nothing about the body
    with pytest.raises(MalformedPayload):
        await tg.parse(incoming)


def _message(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = payload_json("message_text.json")
    data["message"].update(fields)
    return data


BAD: list[Any] = [
    [],
    None,
    "update",
    {},
    {"update_id": "10000", "message": payload_json("message_text.json")["message"]},
    {**payload_json("message_text.json"), "update_id": True},
    {**payload_json("message_text.json"), "update_id": -1},
    {"update_id": 1, "message": None},
    {"update_id": 1, "message": []},
    {"update_id": 1, "message": {"text": "no ids or chat"}},
    _message(message_id="1365"),
    _message(chat={"id": "1111111", "type": "private"}),
    _message(chat=None),
    _message(**{"from": {"id": "SECRET-LOOKING-VALUE", "is_bot": False, "first_name": "A"}}),
    _message(**{"from": {"id": 1, "is_bot": "no", "first_name": "A"}}),
    _message(text=5),
    _message(date=10**15),
    _message(date=1.5),
    _message(photo="a photo"),
    _message(photo=[{"file_id": 5}]),
    _message(document={}),
    _message(location={"latitude": "52", "longitude": 13}),
    _message(location={"latitude": 1000, "longitude": 13}),
    _message(contact={"first_name": "no phone"}),
    {"update_id": 1, "callback_query": {"id": "q", "data": "x"}},
    {
        "update_id": 1,
        "callback_query": {**payload_json("callback_query.json")["callback_query"], "data": 5},
    },
    {
        "update_id": 1,
        "callback_query": {
            **payload_json("callback_query.json")["callback_query"],
            "message": {"message_id": 1},
        },
    },
]


@pytest.mark.parametrize("data", BAD)
async def test_wrong_types_or_missing_keys_in_a_verified_body_are_a_400(
    tg: TelegramChannel, data: Any
) -> None:
    incoming = request(json.dumps(data).encode())
    await tg.verify(incoming)
    with pytest.raises(MalformedPayload) as caught:
        await tg.parse(incoming)
    assert "SECRET-LOOKING-VALUE" not in str(caught.value)  # reasons name fields, not values


async def test_fields_midtier_does_not_read_may_hold_anything(tg: TelegramChannel) -> None:
    data = _message(entities="not a list", reply_markup=7, some_future_field={"x": [1]})
    [activity] = await tg.parse(request(json.dumps(data).encode()))
    assert activity.text == "/start"


def test_settings_refuse_a_secret_token_telegram_would_refuse_without_showing_it() -> None:
    raw = {"bot_token": "123:abc", "secret_token": "has spaces and é"}
    with pytest.raises(ConfigErrors) as caught:
        settings_of(TelegramChannel, raw, "midtier.yaml", "channels.telegram")
    text = str(caught.value)
    assert "midtier.yaml: channels.telegram.secret_token" in text
    assert "has spaces" not in text
