"""The contract kit for Messenger: webhooks signed as Meta signs them, a fake Send API."""

from __future__ import annotations

import itertools
import time
from typing import Any

from support.channel_kits import Reply, WebhookCall
from support.channel_kits import meta as signing
from support.fake_platform import Call, FakePlatform

PAGE_ID = "682498302938465"
VERSION = "v21.0"
SEND_PATH = f"/{VERSION}/me/messages"
APP_SECRET = "messenger-app-secret-for-tests"
VERIFY_TOKEN = "messenger-verify-token-for-tests"
PAGE_TOKEN = "EAAmessenger-page-token-for-tests"
ENV = {
    "MESSENGER_APP_SECRET": APP_SECRET,
    "MESSENGER_VERIFY_TOKEN": VERIFY_TOKEN,
    "MESSENGER_PAGE_ACCESS_TOKEN": PAGE_TOKEN,
}


def settings(api_base: str) -> dict[str, Any]:
    """The ``channels.messenger`` block, secrets as ``${ENV}``."""
    return {
        "kind": "messenger",
        "app_secret": "${MESSENGER_APP_SECRET}",
        "verify_token": "${MESSENGER_VERIFY_TOKEN}",
        "page_access_token": "${MESSENGER_PAGE_ACCESS_TOKEN}",
        "api_base": api_base,
    }


def text_event(text: str, *, user: str, message_id: str) -> dict[str, Any]:
    """A Page webhook with one text message, shaped as Meta's documented example."""
    now = int(time.time() * 1000)
    return {
        "object": "page",
        "entry": [
            {
                "id": PAGE_ID,
                "time": now,
                "messaging": [
                    {
                        "sender": {"id": user},
                        "recipient": {"id": PAGE_ID},
                        "timestamp": now,
                        "message": {"mid": message_id, "text": text},
                    }
                ],
            }
        ],
    }


class Kit:
    """How the contract suite drives a ``messenger`` channel."""

    kind = "messenger"
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
        """The Send API's documented answers."""
        self.answered.calls.append(call)
        body = call.json
        recipient = body["recipient"]["id"]
        if "sender_action" in body:
            return {"recipient_id": recipient}
        return {"recipient_id": recipient, "message_id": f"m_{next(self._ids)}"}

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
            message = call.json.get("message") or {}
            if "text" in message:
                conversation = f"{PAGE_ID}:{call.json['recipient']['id']}"
                out.append(Reply(conversation, message["text"], index))
        return out
