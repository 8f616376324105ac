"""The Telegram channel's outbound side, against a fake Bot API on 127.0.0.1: messages,
inline keyboards (read back with python-telegram-bot), numbered choices, photos, typing,
the Bot API's errors in the outbox's terms, and ``setWebhook`` at start-up."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import telegram
from support.channel_kits.telegram import BOT_TOKEN, SECRET, path
from support.fake_platform import FakePlatform, fake_platform
from support.telegram_adapter import PTB_BOT, PUBLIC_URL, channel, payload_json

from adapters.channels.render import cut_utf16
from adapters.channels.telegram import TelegramChannel
from connector.activity import Activity, Attachment, ConversationAccount
from connector.context import SharedHttp
from connector.errors import ChannelError, DeliveryRejected


@dataclass
class Api:
    platform: FakePlatform
    http: SharedHttp
    data_dir: Path
    tg: TelegramChannel

    def channel(self, **settings: Any) -> TelegramChannel:
        """Another channel on the same fake Bot API."""
        return channel(self.data_dir, self.http, api_base=self.platform.base_url, **settings)

    def sent(self) -> list[tuple[str, Any]]:
        """(method, JSON body) of every call made, oldest first."""
        return [(c.path.rsplit("/", 1)[1], c.json) for c in self.platform.calls]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with fake_platform() as platform, aiohttp.ClientSession() as session:
        ok = payload_json("api/send_message_ok.json")
        for method in ("sendMessage", "sendPhoto"):
            platform.route("POST", path(method), lambda _call: ok)
        platform.route("POST", path("sendChatAction"), lambda _c: {"ok": True, "result": True})
        platform.route(
            "POST", path("setWebhook"), lambda _c: payload_json("api/set_webhook_ok.json")
        )
        http = SharedHttp()
        http.open(session)
        tg = channel(tmp_path, http, api_base=platform.base_url, timeout_s=0.5)
        yield Api(platform, http, tmp_path, tg)


def reply(text: str | None = None, chat: str = "1111111", **fields: Any) -> Activity:
    return Activity(type="message", text=text, conversation=ConversationAccount(id=chat), **fields)


def actions(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"actions": [{"type": "imBack", "title": t, "value": v} for t, v in pairs]}


async def test_text_goes_to_the_chat_with_send_message(api: Api) -> None:
    message_id = await api.tg.send(reply("Hi there"))
    assert api.sent() == [("sendMessage", {"chat_id": 1111111, "text": "Hi there"})]
    assert message_id == "1367"  # result.message_id of the Bot API's answer
    [call] = api.platform.calls
    assert call.path == f"/bot{BOT_TOKEN}/sendMessage"


async def test_a_bot_api_call_is_declared_json_and_escapes_what_is_not_ascii(api: Api) -> None:
    await api.tg.send(reply("Grüße \U0001f600"))
    [call] = api.platform.calls
    assert call.headers["Content-Type"] == "application/json"
    assert call.body == b'{"chat_id":1111111,"text":"Gr\\u00fc\\u00dfe \\ud83d\\ude00"}'
    assert call.json == {"chat_id": 1111111, "text": "Grüße \U0001f600"}


async def test_a_group_is_addressed_by_its_negative_id(api: Api) -> None:
    await api.tg.send(reply("Hi all", chat="-1001234567890"))
    assert api.sent()[0][1]["chat_id"] == -1001234567890


async def test_text_over_the_limit_is_cut_counting_as_telegram_does(api: Api) -> None:
    await api.tg.send(reply("a" * 5000))
    await api.tg.send(reply("😀" * 3000))  # 6000 UTF-16 code units
    plain, emoji = (body["text"] for _, body in api.sent())
    assert len(plain) == 4096 and plain.endswith("…")
    assert len(emoji.encode("utf-16-le")) // 2 <= 4096 and emoji.endswith("😀…")


def test_a_cut_never_splits_a_surrogate_pair() -> None:
    cut = cut_utf16("a" + "😀" * 10, 6)  # a😀😀 would be 5 units, a😀😀😀 7
    assert cut == "a😀😀…"
    cut.encode("utf-8")  # no lone surrogate left behind


async def test_choices_become_an_inline_keyboard_python_telegram_bot_reads_back(
    api: Api,
) -> None:
    offer = actions(("Reset my password", "reset_password"), ("Talk to a person", "agent"))
    await api.tg.send(reply("What can I help you with?", suggested_actions=offer))
    [(method, body)] = api.sent()
    assert method == "sendMessage" and body["text"] == "What can I help you with?"
    markup = telegram.InlineKeyboardMarkup.de_json(body["reply_markup"], PTB_BOT)
    assert markup is not None and markup.to_dict() == body["reply_markup"]
    expected = telegram.InlineKeyboardMarkup.from_column(
        [
            telegram.InlineKeyboardButton("Reset my password", callback_data="reset_password"),
            telegram.InlineKeyboardButton("Talk to a person", callback_data="agent"),
        ]
    )
    assert body["reply_markup"] == expected.to_dict()  # one button per row


async def test_hero_card_buttons_become_an_inline_keyboard_under_the_card_text(api: Api) -> None:
    card = Attachment(
        content_type="application/vnd.microsoft.card.hero",
        content={
            "title": "Cards",
            "buttons": [{"type": "postBack", "title": "Freeze", "value": "f"}],
        },
    )
    await api.tg.send(reply(attachments=[card]))
    [(_, body)] = api.sent()
    assert body["text"] == "Cards"
    assert body["reply_markup"] == {"inline_keyboard": [[{"text": "Freeze", "callback_data": "f"}]]}


async def test_choices_whose_values_do_not_fit_callback_data_are_numbered_text(api: Api) -> None:
    too_long = "é" * 33  # 33 characters, 66 bytes: callback_data counts bytes
    await api.tg.send(reply("Pick one", suggested_actions=actions(("A", "a"), ("B", too_long))))
    [(_, body)] = api.sent()
    assert "reply_markup" not in body
    assert body["text"] == "Pick one\n1. A\n2. B"


async def test_choices_without_text_still_get_a_text_above_the_buttons(api: Api) -> None:
    await api.tg.send(reply(suggested_actions=actions(("Yes", "yes"), ("No", "no"))))
    [(_, body)] = api.sent()
    assert body["text"] == "1. Yes\n2. No" and len(body["reply_markup"]["inline_keyboard"]) == 2


async def test_an_image_goes_with_send_photo_before_the_text(api: Api) -> None:
    image = Attachment(content_type="image/png", content_url="https://cdn.example.com/card.png")
    await api.tg.send(reply("Your new card", attachments=[image]))
    assert api.sent() == [
        ("sendPhoto", {"chat_id": 1111111, "photo": "https://cdn.example.com/card.png"}),
        ("sendMessage", {"chat_id": 1111111, "text": "Your new card"}),
    ]


async def test_typing_is_a_chat_action(api: Api) -> None:
    typing = Activity(type="typing", conversation=ConversationAccount(id="1111111"))
    assert await api.tg.send(typing) == ""
    assert api.sent() == [("sendChatAction", {"chat_id": 1111111, "action": "typing"})]


async def test_events_and_empty_messages_send_nothing(api: Api) -> None:
    event = Activity(type="event", name="x", conversation=ConversationAccount(id="1111111"))
    assert await api.tg.send(event) == ""
    assert await api.tg.send(reply()) == ""
    assert api.platform.calls == []


IMAGE = Attachment(content_type="image/png", content_url="https://cdn.example.com/card.png")
WIRE_CASES = {
    "text": reply("Hi there"),
    "a group's text": reply("Hi all", chat="-1001234567890"),
    "text and choices": reply("Which?", suggested_actions=actions(("Card", "card"))),
    "an image and text": reply("Here", attachments=[IMAGE]),
    "typing": Activity(type="typing", conversation=ConversationAccount(id="1111111")),
    "an event": Activity(type="event", name="x", conversation=ConversationAccount(id="1111111")),
    "an empty message": reply(),
    "an empty text": reply(""),
}


@pytest.mark.parametrize("case", WIRE_CASES)
async def test_the_outbox_wire_form_of_a_reply_makes_the_calls_the_activity_makes(
    api: Api, case: str
) -> None:
    activity = WIRE_CASES[case]
    from_activity = await api.tg.send(activity)
    calls = api.sent()
    api.platform.calls.clear()
    assert await api.tg.send_wire(activity.to_wire()) == from_activity
    assert api.sent() == calls


async def test_a_wire_reply_without_a_conversation_is_rejected_for_good(api: Api) -> None:
    with pytest.raises(DeliveryRejected):
        await api.tg.send_wire({"type": "message", "text": "Hi", "conversation": {}})
    assert api.platform.calls == []


async def test_a_429_is_retried_after_the_seconds_telegram_asks_for(api: Api) -> None:
    api.platform.fail_next(status=429, body=payload_json("api/error_429.json"))
    with pytest.raises(ChannelError) as caught:
        await api.tg.send(reply("hi"))
    assert not isinstance(caught.value, DeliveryRejected)
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize("status", [500, 502])
async def test_a_server_error_is_retried(api: Api, status: int) -> None:
    api.platform.fail_next(status=status, body=payload_json("api/error_502.json"))
    with pytest.raises(ChannelError) as caught:
        await api.tg.send(reply("hi"))
    assert not isinstance(caught.value, DeliveryRejected)


async def test_no_answer_in_time_is_retried(api: Api) -> None:
    api.platform.fail_next(status=200, hang_s=1.5)  # over the channel's 0.5 s
    with pytest.raises(ChannelError) as caught:
        await api.tg.send(reply("hi"))
    assert not isinstance(caught.value, DeliveryRejected)


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (403, "api/error_403_blocked.json"),
        (403, "api/error_403_kicked.json"),
        (400, "api/error_400_chat_not_found.json"),
    ],
)
async def test_a_blocked_bot_or_an_unknown_chat_is_rejected_for_good(
    api: Api, status: int, name: str
) -> None:
    api.platform.fail_next(status=status, body=payload_json(name))
    with pytest.raises(DeliveryRejected) as caught:
        await api.tg.send(reply("hi"))
    assert payload_json(name)["description"] in str(caught.value)


async def test_a_refused_bot_token_is_retried_not_blamed_on_the_user(api: Api) -> None:
    api.platform.fail_next(status=401, body=payload_json("api/error_401.json"))
    with pytest.raises(ChannelError) as caught:
        await api.tg.send(reply("hi"))
    assert not isinstance(caught.value, DeliveryRejected)
    assert "bot token" in str(caught.value)


async def test_an_answer_that_is_not_ok_is_retried(api: Api) -> None:
    api.platform.route("POST", path("sendMessage"), lambda _c: {"ok": False})
    with pytest.raises(ChannelError) as caught:
        await api.tg.send(reply("hi"))
    assert not isinstance(caught.value, DeliveryRejected)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500])
async def test_no_error_text_holds_the_bot_token(api: Api, status: int) -> None:
    api.platform.fail_next(status=status, body={"ok": False, "description": "nope"})
    with pytest.raises(ChannelError) as caught:
        await api.tg.send(reply("hi"))
    assert BOT_TOKEN not in str(caught.value) and "/bot" not in str(caught.value)


async def test_start_sets_the_webhook_for_the_kinds_midtier_reads(api: Api) -> None:
    tg = api.channel(set_webhook=True)
    await tg.start()
    [(method, body)] = api.sent()
    assert method == "setWebhook"
    assert body == {
        "url": f"{PUBLIC_URL}/channels/telegram",
        "secret_token": SECRET,
        "allowed_updates": ["message", "callback_query"],
    }
    kinds = {str(kind) for kind in telegram.constants.UpdateType}
    assert set(body["allowed_updates"]) <= kinds


async def test_start_leaves_the_webhook_alone_unless_asked(api: Api) -> None:
    await api.tg.start()
    assert api.platform.calls == []


async def test_a_failed_set_webhook_is_logged_without_the_token(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    tg = api.channel(set_webhook=True)
    api.platform.fail_next(status=401, body=payload_json("api/error_401.json"))
    with caplog.at_level(logging.INFO):
        await tg.start()  # midtier still starts
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "setWebhook failed" in warning.getMessage() and "Unauthorized" in warning.getMessage()
    assert all(BOT_TOKEN not in r.getMessage() for r in caplog.records)
    assert all("/bot" not in r.getMessage() for r in caplog.records)
