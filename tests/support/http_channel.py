"""A small webhook channel for tests of the core's delivery: a platform of our own making.

Inbound, the "platform" posts ``{"id", "user", "conversation", "text"}`` to
``/channels/<name>`` with the shared token in ``X-Test-Token``; outbound, midtier posts
``{"conversation", "text", "id"}`` for each message (it has no typing indicator) to
``<api_base>/send`` through
:func:`adapters.channels.platform_api.call`, the same path the real channels take, so a fake
platform's 429s, 5xxs, refusals and hangs reach the outbox exactly as theirs would.

Configured by dotted path: ``kind: "support.http_channel:HttpChannel"`` (``tests`` is on
``sys.path`` of the in-process server the tests start).
"""

from __future__ import annotations

import hmac
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from adapters.channels.platform_api import call
from connector.activity import Activity, ActivityTypes, ChannelAccount, ConversationAccount
from connector.channels import ChannelRequest
from connector.context import ChannelContext
from connector.errors import AuthError, MalformedPayload

TOKEN_HEADER = "X-Test-Token"
SEND_PATH = "/send"


class HttpChannelSettings(BaseModel):
    """``channels.<name>`` of midtier.yaml."""

    model_config = ConfigDict(extra="forbid")
    api_base: str
    token: str = Field(min_length=8)
    timeout_s: float = Field(default=5.0, gt=0)


class HttpChannel:
    """The test platform's channel: verify by token, parse one message, send by HTTP."""

    Settings = HttpChannelSettings

    def __init__(self, context: ChannelContext[HttpChannelSettings]) -> None:
        self.name = context.name
        self._settings = context.settings
        self._http = context.http

    async def verify(self, request: ChannelRequest) -> None:
        """The shared token, compared in constant time as bytes."""
        given = request.header(TOKEN_HEADER).encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, self._settings.token.encode()):
            raise AuthError("bad or missing test token")

    async def parse(self, request: ChannelRequest) -> list[Activity]:
        """One text message per request."""
        body = request.json_object()
        fields = {key: body.get(key) for key in ("id", "user", "conversation", "text")}
        if not all(isinstance(value, str) and value for value in fields.values()):
            raise MalformedPayload("id, user, conversation and text must be non-empty strings")
        return [
            Activity(
                type=ActivityTypes.MESSAGE,
                id=fields["id"],
                text=fields["text"],
                channel_id=self.name,
                from_=ChannelAccount(id=str(fields["user"]), role="user"),
                conversation=ConversationAccount(id=str(fields["conversation"])),
            )
        ]

    async def send(self, activity: Activity) -> str:
        """Post a message to the platform; its message id."""
        if activity.type != ActivityTypes.MESSAGE:
            return ""  # the platform shows messages only
        payload: dict[str, Any] = {
            "conversation": activity.conversation.id if activity.conversation else "",
            "text": activity.text or "",
            "id": activity.id,
        }
        answer = await call(
            self._http(),
            "POST",
            self._settings.api_base + SEND_PATH,
            what=f"{self.name} send",
            json_body=payload,
            timeout_s=self._settings.timeout_s,
        )
        return str(answer.get("id", "")) if isinstance(answer, dict) else ""
