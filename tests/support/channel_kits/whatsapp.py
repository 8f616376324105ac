"""The contract kit for WhatsApp: webhooks signed as Meta signs them, a fake Cloud API."""

from __future__ import annotations

import itertools
import time
from typing import Any

from support.channel_kits import Reply, WebhookCall
from support.channel_kits import meta as signing
from support.fake_platform import Call, FakePlatform

WABA_ID = "102290129340398"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_NUMBER = "15550783881"
VERSION = "v21.0"
SEND_PATH = f"/{VERSION}/{PHONE_NUMBER_ID}/messages"
APP_SECRET = "whatsapp-app-secret-for-tests"
VERIFY_TOKEN = "whatsapp-verify-token-for-tests"
ACCESS_TOKEN = "EAAwhatsapp-access-token-for-tests"
ENV = {
    "WHATSAPP_APP_SECRET": APP_SECRET,
    "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
    "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
}


def settings(api_base: str) -> dict[str, Any]:
    """The ``channels.whatsapp`` block, secrets as ``${ENV}``."""
    return {
        "kind": "whatsapp",
        "app_secret": "${WHATSAPP_APP_SECRET}",
        "verify_token": "${WHATSAPP_VERIFY_TOKEN}",
        "access_token": "${WHATSAPP_ACCESS_TOKEN}",
        "api_base": api_base,
    }


def text_event(text: str, *, user: str, message_id: str, name: str = "Sheena") -> dict[str, Any]:
    """A ``messages`` webhook with one text message, shaped as Meta's documented example."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": name}, "wa_id": user}],
        "messages": [
            {
                "from": user,
                "id": message_id,
                "timestamp": str(int(time.time())),
                "type": "text",
                "text": {"body": text},
            }
        ],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": "messages"}]}],
    }


def shown_text(body: dict[str, Any]) -> str | None:
    """The text a WhatsApp user sees of a message midtier sent (None for media, typing)."""
    if body.get("type") == "text":
        return str(body["text"]["body"])
    if body.get("type") == "interactive":
        return str(body["interactive"]["body"]["text"])
    return None


class Kit:
    """How the contract suite drives a ``whatsapp`` channel."""

    kind = "whatsapp"
    env = ENV
    secret_key = "app_secret"
    signs_body = True

    def __init__(self) -> None:
        self.answered = signing.Answered()
        self._ids = itertools.count(1)

    def settings(self, api_base: str) -> dict[str, Any]:
        return settings(api_base)

    def prepare(self, platform: FakePlatform) -> None:
        platform.route("POST", SEND_PATH, self.answer)

    def answer(self, call: Call) -> dict[str, Any]:
        """The Cloud API's documented answers."""
        self.answered.calls.append(call)
        body = call.json
        if body.get("status") == "read":
            return {"success": True}
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": body["to"], "wa_id": body["to"]}],
            "messages": [{"id": f"wamid.sent-{next(self._ids)}"}],
        }

    def message(self, url: str, text: str, *, user: str, message_id: str) -> WebhookCall:
        body = signing.encode(text_event(text, user=user, message_id=message_id))
        return signing.signed(body, APP_SECRET)

    def sign_body(self, url: str, body: bytes) -> WebhookCall:
        return signing.signed(body, APP_SECRET)

    def forged(self, call: WebhookCall) -> WebhookCall:
        return signing.forged(call)

    def replies(self, platform: FakePlatform) -> list[Reply]:
        out = []
        for index, call in self.answered.indexed(platform):
            text = shown_text(call.json)
            if text is not None:
                out.append(Reply(f"{PHONE_NUMBER_ID}:{call.json['to']}", text, index))
        return out
