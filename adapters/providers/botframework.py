"""Remote Bot Framework bots as a midtier provider, kind ``botframework``.

midtier plays the *channel* for a bot that runs elsewhere (botbuilder's ``CloudAdapter``, the
Microsoft 365 Agents SDK, any Bot Framework REST bot): it POSTs Activities to the bot's
messaging endpoint with ``serviceUrl`` pointing at midtier's own Connector API
(:mod:`adapters.providers.bf_connector`), and the bot replies through that API.

``providers.yaml``::

    billing:
      kind: botframework
      title: the billing bot
      timeout_s: 10           # the core gives up on a POST to the bot after this
      endpoint: http://127.0.0.1:3979/api/messages   # the bot's messaging endpoint
      app_id: 00000000-0000-0000-0000-000000000001    # the bot's MicrosoftAppId ("" = no auth)
      app_password: ${BILLING_BOT_PASSWORD}
      auth: on                # default: on when app_id is set; off = Emulator mode
      channel_id: webchat     # default: the leg's channel
      service_url: https://midtier.example.com   # default: midtier's public URL
      conversation_update: true                    # membersAdded before the first turn

Auth on: every POST carries a JWT midtier signs (``bf_auth``); the bot must be configured to
trust midtier as its channel's issuer, and its Connector calls must carry a token from
midtier's token endpoint. Auth off (no ``app_id``, like botbuilder's Emulator mode): no token is
sent, and Connector calls for this bot are accepted without one (a header that is present is
still validated).

``deliver`` returns ``[]``: replies come back through the Connector API. A bot answering
an HTTP error, or not reachable, raises ``ProviderError``. A POST has no deadline of its own:
the core's ``ProviderPool`` cancels one that outlasts ``timeout_s`` (``ProviderTimeout``). A
POST cut off counts against ``health`` as a failed one does.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from adapters.providers.bf_connector import ConnectorHub
from adapters.providers.fields import HttpUrl, http_url
from connector.activity import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    HandoffEventNames,
    new_activity_id,
    now,
)
from connector.context import ProviderContext
from connector.errors import ProviderError
from connector.logs import redactor
from connector.provider_protocol import HandoffContext, ProviderHost
from connector.sessions import Leg, MidTierSession

log = logging.getLogger("midtier.botframework")

FAILURES_UNHEALTHY = 3  # consecutive failed POSTs before health() says no
# No total deadline, not even the shared client's default: the pool's is the only one.
NO_DEADLINE = aiohttp.ClientTimeout()


class BotFrameworkSettings(BaseModel):
    """``providers.<name>`` keys of ``kind: botframework`` (besides the common ones)."""

    model_config = ConfigDict(extra="forbid")
    endpoint: HttpUrl = Field(description="the bot's messaging endpoint")
    app_id: str = Field(default="", description="the bot's MicrosoftAppId; empty: no auth")
    app_password: str = ""
    # Unset: on when app_id is set. Off is the Emulator's mode: no tokens either way.
    auth: bool | None = Field(default=None, validate_default=True)
    channel_id: str = Field(default="", description="empty: the leg's channel")
    service_url: str = Field(default="", description="empty: midtier's public URL")
    conversation_update: bool = Field(default=True, description="membersAdded first")

    @field_validator("service_url")
    @classmethod
    def _service_url(cls, value: str) -> str:
        return http_url(value) if value else value

    @field_validator("auth", "conversation_update", mode="before")
    @classmethod
    def _blank_is_default(cls, value: object, info: ValidationInfo) -> object:
        # ``auth: ${BOT_AUTH:-}`` in providers.yaml means the default, as no key does.
        if value is None or value == "":
            return cls.model_fields[info.field_name or ""].default
        return value

    @field_validator("auth")
    @classmethod
    def _credentials_for_auth(cls, value: bool | None, info: ValidationInfo) -> bool:
        app_id, password = info.data.get("app_id", ""), info.data.get("app_password", "")
        auth = bool(app_id) if value is None else value
        if auth and not (app_id and password):
            raise ValueError("auth on needs app_id and app_password")
        return auth


def _account(account: ChannelAccount) -> dict[str, Any]:
    return account.model_dump(mode="json", by_alias=True, exclude_none=True)


class BotFrameworkProvider:
    """A remote Bot Framework bot reached over its messaging endpoint."""

    kind = "botframework"

    Settings = BotFrameworkSettings

    def __init__(self, context: ProviderContext[BotFrameworkSettings, ProviderHost]) -> None:
        self.name = context.name
        self.config = context.config
        settings = context.settings
        self.endpoint = settings.endpoint
        self.app_id = settings.app_id
        self.app_password = settings.app_password
        self.auth = bool(settings.auth)  # the validator resolved the default
        self.channel_id = settings.channel_id
        self._service_url = settings.service_url.rstrip("/") or context.public_url
        self.conversation_update = settings.conversation_update
        self.title = context.title
        self.hub = context.shared(ConnectorHub)  # the app's one Connector API, mounted by it
        self.hub.register(self)
        redactor.add(self.app_password)
        self._http = context.http
        self._started = False
        self._failures = 0

    @property
    def service_url(self) -> str:
        """The ``serviceUrl`` the bot replies to: the override, or midtier's public URL."""
        return self._service_url

    def bot_account(self) -> ChannelAccount:
        """The bot as the channel knows it: its app id (or provider name) and title."""
        return ChannelAccount(id=self.app_id or self.name, name=self.title, role="bot")

    def user_account(self, leg: Leg, user_id: str) -> ChannelAccount:
        """The user as the bot knows them: the id kept on the leg since it opened."""
        return ChannelAccount(id=str(leg.data.get("user_id") or user_id), role="user")

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Take conversations (the app has started the hub: its key is loaded)."""
        self._started = True

    async def stop(self) -> None:
        """Send no more (replies not yet applied wait in the core's inbox)."""
        self._started = False

    async def health(self) -> bool:
        """No standard health endpoint exists: healthy unless the last POSTs kept failing."""
        return self._started and self._failures < FAILURES_UNHEALTHY

    # ------------------------------------------------------------------ Provider

    async def open(self, session: MidTierSession, leg: Leg, context: HandoffContext) -> str:
        """A new unguessable conversation id; the bot hears of it with the first activity."""
        if not self._started:
            raise ProviderError(self.name, "not started")
        leg.data["user_id"] = session.user_id  # persisted with the leg: close() needs it
        conversation_id = f"bf_{secrets.token_urlsafe(18)}"
        self.hub.own(conversation_id, self.name)
        return conversation_id

    async def deliver(self, leg: Leg, activity: Activity) -> list[Activity]:
        """POST the activity to the bot; replies arrive through the Connector API."""
        if self.conversation_update and activity.is_event(HandoffEventNames.CONTEXT):
            # The leg is saved by now, so the bot's welcome can be routed back.
            user = self.user_account(leg, "user")
            members = [_account(user), _account(self.bot_account())]
            update = Activity.from_wire(
                {"type": ActivityTypes.CONVERSATION_UPDATE, "membersAdded": members}
            )
            await self._post(leg, update)
        await self._post(leg, activity)
        return []

    async def close(self, leg: Leg, reason: str) -> None:
        """Tell the bot with ``endOfConversation`` (text = reason)."""
        self.hub.disown(leg.provider_conversation_id)
        end = Activity(
            type=ActivityTypes.END_OF_CONVERSATION,
            code="completedSuccessfully",
            text=reason,
            value={"reason": reason},
        )
        await self._post(leg, end)

    # ------------------------------------------------------------------ the wire

    def wire(self, leg: Leg, activity: Activity) -> dict[str, Any]:
        """The activity as the bot receives it: its conversation, itself as recipient."""
        body = activity.to_wire()
        body.setdefault("id", new_activity_id())
        body.setdefault("timestamp", now().isoformat().replace("+00:00", "Z"))
        body.setdefault("from", _account(self.user_account(leg, "user")))
        body["channelId"] = self.channel_id or leg.channel
        body["serviceUrl"] = self.service_url
        body["conversation"] = {"id": leg.provider_conversation_id}
        body["recipient"] = _account(self.bot_account())
        return body

    async def _post(self, leg: Leg, activity: Activity) -> None:
        if not self._started:
            raise ProviderError(self.name, "not started")
        headers = {}
        if self.auth:
            if self.hub.issuer is None:
                raise ProviderError(self.name, "the Connector's token issuer has not started")
            token = self.hub.issuer.token_for_bot(self.app_id, self.service_url)
            headers["Authorization"] = f"Bearer {token}"
        body, answered = self.wire(leg, activity), False
        try:
            async with self._http().post(
                self.endpoint, json=body, headers=headers, timeout=NO_DEADLINE
            ) as response:
                await response.read()
                status = response.status
            answered = status < 300
        except aiohttp.ClientError as exc:
            raise ProviderError(self.name, f"cannot reach the bot: {exc}") from exc
        finally:  # also when the pool's deadline cancels the POST
            self._failures = 0 if answered else self._failures + 1
        if not answered:
            raise ProviderError(self.name, f"the bot answered HTTP {status}")


__all__ = ["BotFrameworkProvider", "BotFrameworkSettings"]
