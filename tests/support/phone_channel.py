"""A small messaging app for tests whose platform knows its users by phone number.

It stands in for SMS or WhatsApp where a test needs a second channel beside the web chat:
the platform posts signed JSON webhooks (``X-Phone-Signature: sha256=<hex HMAC-SHA256 of
the raw body>``, the secret from the settings), vouches for the sender's number (given to
the core as an identity, ``channelData.identities``) and takes replies at
``POST <api_base>/messages``. Configured by dotted path, as a third-party channel would be::

    channels:
      sms: {kind: "support.phone_channel:PhoneChannel", secret: "${SMS_SECRET}",
            api_base: "http://127.0.0.1:<port>/sms"}

Webhook body: ``{"id": "<message id>", "from": "<phone number>", "text": "..."}``.
:class:`PhoneUser` is one user of it, talking through the fake platform.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
from collections.abc import Callable
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from adapters.channels.platform_api import call
from connector.activity import Activity, ActivityTypes, ChannelAccount, ConversationAccount, now
from connector.channels import ChannelRequest
from connector.claims import phone_identity
from connector.context import ChannelContext
from connector.errors import AuthError, MalformedPayload
from support.fake_platform import FakePlatform

HEADER = "X-Phone-Signature"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class PhoneSettings(BaseModel):
    """``channels.<name>`` of this kind."""

    model_config = ConfigDict(extra="forbid")
    secret: str = Field(min_length=16)
    api_base: str
    # Whether the platform vouches for the number (an identity in the verified claims).
    proves_phone: bool = True


class PhoneChannel:
    """Verify, parse and send for the test app."""

    Settings = PhoneSettings

    def __init__(self, context: ChannelContext[PhoneSettings]) -> None:
        self.name = context.name
        self._settings = context.settings
        self._http = context.http

    async def verify(self, request: ChannelRequest) -> None:
        expected = signature(self._settings.secret, request.body).encode()
        if not hmac.compare_digest(request.header(HEADER).encode(), expected):
            raise AuthError("the webhook's signature does not match")

    async def parse(self, request: ChannelRequest) -> list[Activity]:
        data = request.json_object()
        fields = [data.get(key) for key in ("id", "from", "text")]
        if not all(isinstance(value, str) and value for value in fields):
            raise MalformedPayload("id, from and text must be non-empty strings")
        message_id, number, text = (str(value) for value in fields)
        identity = phone_identity(number) if self._settings.proves_phone else None
        return [
            Activity(
                type=ActivityTypes.MESSAGE,
                id=message_id,
                timestamp=now(),
                channel_id=self.name,
                from_=ChannelAccount(id=number, role="user"),
                recipient=ChannelAccount(id="midtier", role="bot"),
                conversation=ConversationAccount(id=number),
                text=text,
                channel_data={"identities": [identity]} if identity else None,
            )
        ]

    async def send(self, activity: Activity) -> str:
        if activity.type != ActivityTypes.MESSAGE or activity.conversation is None:
            return activity.id or ""
        body = {"to": activity.conversation.id, "text": activity.text or ""}
        url = f"{self._settings.api_base}/messages"
        answer = await call(self._http(), "POST", url, what=f"{self.name} send", json_body=body)
        return str(answer.get("id", "")) if isinstance(answer, dict) else ""


def answer_sends(platform: FakePlatform, name: str) -> None:
    """Give the fake platform the send route of channel ``name`` (``/<name>/messages``)."""
    ids = itertools.count(1)
    platform.route("POST", f"/{name}/messages", lambda _call: {"id": f"{name}-{next(ids)}"})


class PhoneUser:
    """One user of a phone channel: says things through signed webhooks, reads replies."""

    _ids = itertools.count(1)

    def __init__(
        self, base: str, platform: FakePlatform, channel: str, number: str, secret: str
    ) -> None:
        self.url = f"{base}/channels/{channel}"
        self.platform = platform
        self.channel = channel
        self.number = number
        self._secret = secret
        self._read = 0

    async def post(self, body: dict[str, Any], secret: str | None = None) -> int:
        raw = json.dumps(body).encode()
        headers = {
            HEADER: signature(secret or self._secret, raw),
            "Content-Type": "application/json",
        }
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url, data=raw, headers=headers) as response,
        ):
            return response.status

    async def say(self, text: str) -> None:
        body = {"id": f"{self.channel}-m{next(self._ids)}", "from": self.number, "text": text}
        status = await self.post(body)
        assert 200 <= status < 300, status

    def replies(self) -> list[str]:
        path = f"/{self.channel}/messages"
        return [c.json["text"] for c in self.platform.to(path) if c.json["to"] == self.number]

    async def expect(self, where: Callable[[str], bool], within: float = 15.0) -> str:
        """The next reply not yet taken whose text matches ``where`` (earlier ones that do
        not match are skipped)."""
        async with asyncio.timeout(within):
            while True:
                replies = self.replies()
                for i in range(self._read, len(replies)):
                    if where(replies[i]):
                        self._read = i + 1
                        return replies[i]
                seen = len(self.platform.calls)
                await self.platform.wait_for(lambda _call: True, count=seen + 1)
