"""Direct Line 3.0, the subset Bot Framework clients (Web Chat among them) use.

Routes under ``base_path`` (``/v3/directline``), each with ``Authorization: Bearer`` and
the secret or a token (:mod:`.directline_tokens`): ``POST tokens/generate`` (secret),
``POST tokens/refresh`` (token), ``POST conversations`` (201 new, 200 for a token's
conversation started before), ``GET conversations/{id}`` (a new stream URL to reconnect),
``POST|GET conversations/{id}/activities`` (post one; poll an ActivitySet after a
watermark), the WebSocket at the stream URL (:mod:`.directline_stream`) and ``upload``
(501). Credentials and the token routes are in :mod:`.directline_conversations`, payloads in
:mod:`.directline_wire`, the Web Chat page in :mod:`.directline_page`.

**What a client reads** is the session's transcript, the user's own messages included:
the watermark is the transcript ``seq``. Replies reach ``send()`` through the outbox and go
to the conversation's open streams; with none open ``send`` still succeeds, since polling
and reconnecting read the transcript. A stream that opens catches up from the transcript
while the conversation's deliveries are paused, so each activity reaches it once; a user's
message is echoed to the streams under the same pause, before any reply to it.

**Who the user is** is whatever the token (or, without a user in it, the client) says: the
claims carry ``verified: false``.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from adapters.channels.directline_conversations import Conversations, no_store_json
from adapters.channels.directline_page import bundle_installed, mount_page
from adapters.channels.directline_stream import Streams
from adapters.channels.directline_tokens import Tokens
from adapters.channels.directline_wire import (
    SHOWN_TYPES,
    activity_set,
    history,
    read_posted,
    watermark_of,
)
from adapters.local_secrets import read_or_create_secret
from connector.activity import Activity, ActivityTypes, new_activity_id
from connector.app.requests import match_text, query_text, read_body
from connector.context import ChannelContext
from connector.errors import ConfigError, SessionClosed
from connector.logs import redactor
from connector.payloads import json_object

CORS = {
    "Access-Control-Allow-Origin": "*",  # bearer credentials only, never cookies
    "Access-Control-Allow-Headers": "Authorization, Content-Type, x-ms-bot-agent",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Max-Age": "600",
}


log = logging.getLogger("midtier.directline")

# Stands in for the secret until start-up has read the kept one: random, never shown.
_UNSET = secrets.token_urlsafe(48)


class DirectLineSettings(BaseModel):
    """``channels.<name>`` of ``kind: directline`` in midtier.yaml."""

    model_config = ConfigDict(extra="forbid")
    # ${ENV}; the first signs, any opens. None given: midtier makes one up at its first
    # start and keeps it in ``<data dir>/<channel name>-secret`` (owner-only), which is
    # enough for the page midtier serves; a token server of your own needs it from ${ENV}.
    secret: list[str] = Field(default_factory=list)
    title: str | None = Field(default=None, description="the page's title; midtier's title")
    base_path: str = Field(default="/v3/directline", pattern=r"^/[A-Za-z0-9_\-/]*[^/]$")
    page_path: str | None = Field(default="/directline/", pattern=r"^/([A-Za-z0-9_\-]+/)*$")
    token_ttl_s: int = Field(default=1800, ge=60, le=86400)
    keepalive_s: float = Field(default=30.0, gt=0, le=300)

    @field_validator("secret", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("secret")
    @classmethod
    def _long(cls, value: list[str]) -> list[str]:
        if any(len(s) < 32 for s in value):
            raise ValueError("each secret must be at least 32 characters")
        return value


class DirectLineChannel:
    """Direct Line's REST API and streams; replies go to every open stream."""

    Settings = DirectLineSettings

    def __init__(self, context: ChannelContext[DirectLineSettings]) -> None:
        self.name = context.name
        self._host = context.host
        self.settings = settings = context.settings
        for secret in settings.secret:
            redactor.add(secret)
        self._secret_file = context.data_dir / f"{self.name}-secret"
        # Without a configured secret, the kept one is read (or made) before serving.
        tokens = Tokens(self.name, settings.secret or [_UNSET], settings.token_ttl_s)
        self.title = settings.title or self._host.config.midtier.title
        self.base = settings.base_path
        ws_base = context.public_url.replace("http", "ws", 1) + self.base
        self.conversations = Conversations(self.name, self._host, tokens, ws_base)
        self.streams = Streams(self.name, self._host, settings.keepalive_s)
        self._where = (context.file, context.key)

    async def start(self) -> None:
        """Read (or make, once) the kept secret when the config gives none."""
        if self.settings.secret:
            return
        secret, made = read_or_create_secret(self._secret_file, lambda: secrets.token_urlsafe(48))
        if made:
            log.info("Direct Line secret generated and written to %s", self._secret_file)
        redactor.add(secret)
        self.conversations.tokens = Tokens(self.name, [secret], self.settings.token_ttl_s)

    def check(self) -> None:
        """For ``midtier check``: the page needs Web Chat's bundle."""
        if self.settings.page_path is not None and not bundle_installed():
            file, key = self._where
            raise ConfigError(
                file,
                f"{key}.page_path",
                "Web Chat's bundle is not installed: run scripts/fetch-webchat.sh "
                "(or set page_path: null to serve no page)",
            )

    # ------------------------------------------------------------------ outbound

    async def send(self, activity: Activity) -> str:
        """Push to the conversation's open streams (none open is fine: clients read the
        transcript when they come back)."""
        conversation = activity.conversation.id if activity.conversation else ""
        if activity.type in SHOWN_TYPES and self.streams.any_open(conversation):
            await self.streams.deliver(conversation, activity)
        return activity.id or ""

    async def shutdown(self) -> None:
        """Server going down: close every stream (clients reconnect by themselves)."""
        await self.streams.shutdown()

    # ------------------------------------------------------------------ routes

    def mount(self, app: web.Application) -> None:
        base, conv = self.base, self.base + "/conversations/{conversation}"
        self.conversations.mount(app, base)
        app.router.add_post(f"{conv}/activities", self._post_activity)
        app.router.add_get(f"{conv}/activities", self._activities)
        app.router.add_get(f"{conv}/stream", self._stream)
        app.router.add_post(f"{conv}/upload", self._upload)
        app.router.add_route("OPTIONS", base + "/{tail:.*}", self._preflight)
        app.on_response_prepare.append(self._cors)
        if self.settings.page_path is not None:
            mount_page(app, self, self.settings.page_path)

    async def _cors(self, request: web.Request, response: web.StreamResponse) -> None:
        # Pages of other sites may run Web Chat against midtier: the API answers them all,
        # error statuses included, as Direct Line does (the token is the gate).
        if request.path.startswith(self.base + "/"):
            response.headers.setdefault("Access-Control-Allow-Origin", "*")

    async def _preflight(self, request: web.Request) -> web.Response:
        return web.Response(status=204, headers=CORS)

    async def generate(self, user: str | None) -> dict[str, Any]:
        """A token for a new conversation, for the page (as ``tokens/generate`` answers)."""
        return await self.conversations.generate(user)

    async def _upload(self, request: web.Request) -> web.Response:
        self.conversations.conversation(request, self.conversations.grant(request))
        body = {"error": "NotSupported", "reason": "this service takes no uploads"}
        return web.json_response(body, status=501)

    async def _post_activity(self, request: web.Request) -> web.Response:
        grant = self.conversations.grant(request)
        conversation = self.conversations.conversation(request, grant)
        raw = await read_body(request)
        posted = read_posted(
            json_object(raw, what="activity"),
            channel=self.name,
            conversation=conversation,
            bound_user=grant.user,
            trusted=grant.is_secret,
        )
        activity = posted.activity
        if activity.type == ActivityTypes.TYPING:
            await self._host.signal_user(self.name, conversation, activity)
            return no_store_json({"id": new_activity_id()})
        session = await self._host.store.by_channel(self.name, conversation)
        if session is not None and session.status != "active":
            raise SessionClosed("this conversation has ended; start a new one")
        claims = {"sub": posted.user, "channel": self.name, "verified": False}
        # Paused: the echo goes out before any reply to it, and not to a stream that is
        # reading the transcript (which then holds it) at the same time.
        async with self._host.outbox.paused(self.name, conversation):
            entry = await self._host.submit(
                self.name, activity, claims=claims, ref=posted.client_id
            )
            streams = self.streams
            if entry is None:  # a repeat of a message recorded before: the same answer
                line = await streams.line(conversation, lambda e: e.ref == posted.client_id)
                return no_store_json(
                    {"id": line.activity.get("id", "") if line is not None else ""}
                )
            sent = entry.id
            if activity.type == ActivityTypes.MESSAGE and streams.any_open(conversation):
                line = await streams.line(conversation, lambda e: e.activity.get("id") == sent)
                if line is not None:
                    await streams.echo(conversation, line)
        return no_store_json({"id": sent})

    async def _activities(self, request: web.Request) -> web.Response:
        grant = self.conversations.grant(request)
        conversation = self.conversations.conversation(request, grant)
        after = watermark_of(query_text(request, "watermark"))
        activities, mark = history(await self.streams.entries(conversation), after)
        return no_store_json(activity_set(activities, mark))

    # ------------------------------------------------------------------ the stream

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        conversation = match_text(request, "conversation")
        self.conversations.tokens.read(query_text(request, "t") or "", "stream").opens(conversation)
        after = watermark_of(query_text(request, "watermark"))
        # No Origin check: nothing ambient (no cookie) opens it, only the token in the URL.
        return await self.streams.serve(request, conversation, after)
