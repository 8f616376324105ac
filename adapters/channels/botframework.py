"""Azure Bot Service (Microsoft Teams and the other Azure channels) as a channel, kind
``botframework``: midtier is the bot's messaging endpoint.

Azure posts one Activity per request to ``https://<public url>/channels/<name>`` (or the
``path_alias``, e.g. ``/api/messages``) with a JWT that :mod:`.botframework_auth` checks;
the activity's ``serviceUrl`` is trusted only once it matches the token. Replies are
separate calls to the Bot Connector at that ``serviceUrl``, with midtier's own token. How
activities map both ways is in :mod:`.botframework_wire`.

* ``message`` passes through as it came (text, attachments, card submits' ``value``,
  ``channelData`` such as Teams' tenant); ``typing`` passes as typing. The dedupe key is
  ``activity.id``; the conversation key is ``"<channelId>:<conversation.id>"``.
* ``conversationUpdate`` and the other kinds are acknowledged and left out (logged once).
* ``invoke`` wants its answer in the HTTP response, which midtier does not give: it is
  answered ``501`` with an empty body, as a botbuilder bot that has no handler for it does.
* Everything else is acknowledged ``201`` with an empty body, as botbuilder's aiohttp
  integration does.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.channels import platform_api
from adapters.channels.botframework_auth import (
    ConnectorToken,
    OpenIdKeys,
    check_token,
    check_vouched,
)
from adapters.channels.botframework_wire import inbound_activity, reply_body, required_text
from connector.activity import Activity, ActivityTypes
from connector.app.webhooks import channel_webhook
from connector.channels import ChannelRequest, ChannelResponse, IgnoredKinds
from connector.context import ChannelContext
from connector.errors import ChannelError, DeliveryRejected, MalformedPayload
from connector.logs import redactor

ACK = ChannelResponse(status=201)
NOT_IMPLEMENTED = ChannelResponse(status=501)


class BotFrameworkSettings(BaseModel):
    """``channels.<name>`` of ``kind: botframework`` in midtier.yaml."""

    model_config = ConfigDict(extra="forbid")
    app_id: str = Field(default="", description="the Azure Bot's Microsoft App ID")
    app_password: str = Field(default="", description="its client secret: write ${ENV}")
    openid_metadata_url: str = "https://login.botframework.com/v1/.well-known/openidconfiguration"
    issuer: str = "https://api.botframework.com"
    token_url: str = "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
    scope: str = "https://api.botframework.com/.default"
    allow_unauthenticated: bool = Field(
        default=False, description="the Emulator's no-auth mode: local use only, no app_id"
    )
    path_alias: str | None = Field(
        default=None, pattern=r"^/[A-Za-z0-9_\-./]*$", description='e.g. "/api/messages"'
    )

    @model_validator(mode="after")
    def _auth_is_on_or_explicitly_off(self) -> BotFrameworkSettings:
        if self.allow_unauthenticated:
            if self.app_id or self.app_password:
                raise ValueError("allow_unauthenticated is only for a bot without app_id")
        elif not self.app_id or not self.app_password:
            raise ValueError("app_id and app_password are required (or allow_unauthenticated)")
        if self.path_alias is not None and self.path_alias.startswith("/channels/"):
            raise ValueError("path_alias must be outside /channels/")
        return self


class BotFrameworkChannel:
    """The bot's messaging endpoint for Azure Bot Service, and its Bot Connector client."""

    Settings = BotFrameworkSettings

    def __init__(self, context: ChannelContext[BotFrameworkSettings]) -> None:
        self.name = context.name
        settings = self._settings = context.settings
        self._http = context.http
        self._keys = OpenIdKeys(context.http, settings.openid_metadata_url)
        self._token: ConnectorToken | None = None
        if settings.app_id:
            redactor.add(settings.app_password)
            self._token = ConnectorToken(
                context.http,
                settings.token_url,
                app_id=settings.app_id,
                app_password=settings.app_password,
                scope=settings.scope,
            )
        self._ignored = IgnoredKinds(context.name)

    async def start(self) -> None:
        """Fetch Azure's signing keys before the first activity arrives."""
        if not self._settings.allow_unauthenticated:
            await self._keys.load()

    # ------------------------------------------------------------------ inbound

    async def verify(self, request: ChannelRequest) -> None:
        """The JWT first (401/403 without reading the body), then what it vouches for."""
        settings = self._settings
        header = request.header("Authorization")
        if not header and settings.allow_unauthenticated:
            return  # the Emulator without credentials; a header that is sent is still checked
        verified = await check_token(
            header, self._keys, app_id=settings.app_id, issuer=settings.issuer
        )
        data = request.json_object()
        check_vouched(
            verified,
            channel_id=required_text(data, "channelId"),
            service_url=required_text(data, "serviceUrl"),
        )

    async def parse(self, request: ChannelRequest) -> list[Activity]:
        """One activity per request: a message or typing, else nothing."""
        data = request.json_object()
        kind = data.get("type")
        if not isinstance(kind, str) or not kind:
            raise MalformedPayload("activity type must be a non-empty string")
        if kind not in (ActivityTypes.MESSAGE, ActivityTypes.TYPING):
            self._ignored(kind)
            return []
        return [inbound_activity(data, self.name)]

    async def acknowledge(
        self, request: ChannelRequest, activities: list[Activity]
    ) -> ChannelResponse:
        """201 and no body; 501 for an ``invoke``, whose answer midtier cannot give."""
        if not activities and request.json_object().get("type") == "invoke":
            return NOT_IMPLEMENTED
        return ACK

    def mount(self, app: web.Application) -> None:
        """``path_alias`` answers exactly as ``/channels/<name>`` does (the core's route)."""
        alias = self._settings.path_alias
        if alias is None:
            return

        async def through_core(request: web.Request) -> web.StreamResponse:
            # The core's handler finds the channel by the route's {name}; give it ours.
            request.match_info["name"] = self.name
            return await channel_webhook(request)

        app.router.add_route("*", alias, through_core)

    # ------------------------------------------------------------------ outbound

    async def send(self, activity: Activity) -> str:
        """POST to the Connector at the conversation's ``serviceUrl``; the activity id."""
        if activity.type not in (ActivityTypes.MESSAGE, ActivityTypes.TYPING):
            return activity.id or ""  # events, endOfConversation...: nothing to show
        meta = (activity.channel_data or {}).get("midtier")
        address = meta.get("address") if isinstance(meta, dict) else None
        if not isinstance(address, dict) or not all(
            isinstance(address.get(k), str) for k in ("serviceUrl", "conversationId")
        ):
            raise DeliveryRejected("no Bot Framework address for this conversation")
        body = reply_body(activity, address)
        url = "{}/v3/conversations/{}/activities".format(
            address["serviceUrl"].rstrip("/"), quote(address["conversationId"], safe="")
        )
        reply_to = address.get("replyToId")
        if isinstance(reply_to, str) and reply_to:
            url += "/" + quote(reply_to, safe="")
        answer = await self._post(url, body)
        found = answer.get("id") if isinstance(answer, dict) else None
        return found if isinstance(found, str) else ""

    async def _post(self, url: str, body: dict[str, Any]) -> Any:
        """One Connector call; a refused token is renewed and the call made once more."""
        token = await self._token.get() if self._token is not None else None
        try:
            return await self._call(url, body, token)
        except _TokenRefused:
            if token is None or self._token is None:
                raise
            self._token.drop(token)
        return await self._call(url, body, await self._token.get())

    async def _call(self, url: str, body: dict[str, Any], token: str | None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return await platform_api.call(
            self._http(),
            "POST",
            url,
            what="Bot Connector",
            json_body=body,
            headers=headers,
            classify=_connector_error,
        )


class _TokenRefused(ChannelError):
    """The Connector answered 401: retried later by the outbox if a new token fails too."""


def _connector_error(status: int, body: Any) -> ChannelError | None:
    if status == 401:
        return _TokenRefused(f"Bot Connector: HTTP 401 {platform_api.describe(body)}")
    return None  # 429/5xx retried, 403 (bot removed) / 404 (conversation gone) rejected
