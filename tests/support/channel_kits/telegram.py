"""The Telegram kit: updates built with python-telegram-bot's own classes, sent with the
secret header Telegram sets, and replies read from the Bot API calls midtier made.

Telegram's ids are integers; the suite's user and message labels ("u-100", "mid-3") are
turned into stable integers (a label of digits is its own number).
"""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime
from itertools import count
from typing import Any

import telegram

from adapters.channels.telegram import HEADER
from support.channel_kits import Reply, WebhookCall
from support.fake_platform import Call, FakePlatform

BOT_TOKEN = "123456:AAH-offline-test-token_0123456789ab"
SECRET = "kit-secret_0123456789-abcdefghij"
BOT: dict[str, Any] = {
    "id": 123456,
    "is_bot": True,
    "first_name": "Acme Pay",
    "username": "acmepay_bot",
}
SENDS = ("sendMessage", "sendPhoto")


def number(label: str) -> int:
    """A stable positive integer for a label of the suite (digits stand for themselves)."""
    return int(label) if label.isdigit() else zlib.crc32(label.encode()) % 2_000_000_000 + 1


def path(method: str) -> str:
    """Where the fake platform gets a Bot API method."""
    return f"/bot{BOT_TOKEN}/{method}"


class TelegramKit:
    """Drives the ``telegram`` channel for the contract suite and the end-to-end tests."""

    kind = "telegram"
    env = {"TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_SECRET_TOKEN": SECRET}
    secret_key = "secret_token"
    signs_body = False  # a static secret header: a body cut short still "verifies"

    def __init__(self) -> None:
        self.delivered: list[Call] = []  # calls the platform accepted (not the failed ones)
        self._message_ids = count(5000)

    def settings(self, api_base: str) -> dict[str, Any]:
        return {
            "kind": "telegram",
            "bot_token": "${TELEGRAM_BOT_TOKEN}",
            "secret_token": "${TELEGRAM_SECRET_TOKEN}",
            "api_base": api_base,
        }

    def prepare(self, platform: FakePlatform) -> None:
        for method in SENDS:
            platform.route("POST", path(method), self.accept)
        platform.route("POST", path("sendChatAction"), lambda _call: {"ok": True, "result": True})
        platform.route(
            "POST",
            path("setWebhook"),
            lambda _call: {"ok": True, "result": True, "description": "Webhook was set"},
        )

    def accept(self, call: Call) -> dict[str, Any]:
        """Answer a send as the Bot API does: ``{"ok": true, "result": <Message>}``."""
        self.delivered.append(call)
        sent = call.json
        chat = sent["chat_id"]
        result: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "from": BOT,
            "chat": {"id": chat, "type": "private" if chat > 0 else "supergroup"},
            "date": int(datetime.now(UTC).timestamp()),
        }
        if "text" in sent:
            result["text"] = sent["text"]
        return {"ok": True, "result": result}

    def update(self, text: str, *, user: str, message_id: str) -> dict[str, Any]:
        """A user's text message as Telegram's JSON, built by python-telegram-bot."""
        uid = number(user)
        sender = telegram.User(id=uid, is_bot=False, first_name="Test", last_name=user)
        chat = telegram.Chat(id=uid, type=telegram.constants.ChatType.PRIVATE, first_name="Test")
        message = telegram.Message(
            message_id=number(message_id),
            date=datetime.now(UTC).replace(microsecond=0),
            chat=chat,
            from_user=sender,
            text=text,
        )
        data: dict[str, Any] = telegram.Update(
            update_id=number(message_id), message=message
        ).to_dict()
        return data

    def message(self, url: str, text: str, *, user: str, message_id: str) -> WebhookCall:
        return self.signed(self.update(text, user=user, message_id=message_id))

    def button(self, data: str, *, user: str, update_id: str) -> WebhookCall:
        """The user pressing an inline keyboard button that carries ``data``."""
        uid = number(user)
        sender = telegram.User(id=uid, is_bot=False, first_name="Test", last_name=user)
        chat = telegram.Chat(id=uid, type=telegram.constants.ChatType.PRIVATE, first_name="Test")
        keyboard = telegram.Message(
            message_id=number(update_id) + 1,
            date=datetime.now(UTC).replace(microsecond=0),
            chat=chat,
            from_user=telegram.User(BOT["id"], BOT["first_name"], True, username=BOT["username"]),
            text="Choose one",
        )
        query = telegram.CallbackQuery(
            id=f"cb-{update_id}",
            from_user=sender,
            chat_instance="-4436525618427632131",
            message=keyboard,
            data=data,
        )
        return self.signed(
            telegram.Update(update_id=number(update_id), callback_query=query).to_dict()
        )

    def signed(self, update: dict[str, Any]) -> WebhookCall:
        """An update as Telegram posts it: JSON with the secret header."""
        body = json.dumps(update).encode()
        return WebhookCall(body=body, headers={"Content-Type": "application/json", HEADER: SECRET})

    def sign_body(self, url: str, body: bytes) -> WebhookCall:
        return WebhookCall(body=body, headers={"Content-Type": "application/json", HEADER: SECRET})

    def forged(self, call: WebhookCall) -> WebhookCall:
        return WebhookCall(
            body=call.body, headers={**call.headers, HEADER: "not-the-secret"}, method=call.method
        )

    def replies(self, platform: FakePlatform) -> list[Reply]:
        out = []
        for call in self.delivered:
            sent = call.json
            text = sent.get("text") or sent.get("photo") or ""
            index = next(i for i, seen in enumerate(platform.calls) if seen is call)
            out.append(Reply(str(sent["chat_id"]), text, index))
        return out


def kit() -> TelegramKit:
    return TelegramKit()
