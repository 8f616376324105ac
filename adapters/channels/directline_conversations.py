"""Who may open which Direct Line conversation (see :mod:`.directline`).

A request's credential is the secret or a token (:mod:`.directline_tokens`); a token opens
one conversation. The routes here hand out tokens and stream URLs: ``POST tokens/generate``
(secret), ``POST tokens/refresh`` (token), ``POST conversations`` (201 new, 200 for a
token's conversation started before, as every instance sees in the store) and
``GET conversations/{id}`` (a new stream URL to reconnect).
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from adapters.channels.directline_tokens import Grant, Tokens
from adapters.channels.directline_wire import CONVERSATION_ID, token_user, watermark_of
from connector.app.requests import authorization, match_text, query_text, read_body
from connector.errors import AuthError, Forbidden, NotFound
from connector.interfaces import ChannelHost
from connector.payloads import json_object
from connector.sessions import new_id


class Conversations:
    """The credentials of Direct Line's requests and the routes that issue tokens."""

    def __init__(self, name: str, host: ChannelHost, tokens: Tokens, ws_base: str) -> None:
        self.name = name
        self._host = host
        self.tokens = tokens
        self._ws_base = ws_base

    def mount(self, app: web.Application, base: str) -> None:
        """The token and conversation routes under ``base``."""
        conv = base + "/conversations/{conversation}"
        app.router.add_post(f"{base}/tokens/generate", self._generate)
        app.router.add_post(f"{base}/tokens/refresh", self._refresh)
        app.router.add_post(f"{base}/conversations", self._start)
        app.router.add_get(conv, self._reconnect)

    def grant(self, request: web.Request) -> Grant:
        """The credential of a request: the secret or a token (AuthError: 401)."""
        value = authorization(request) or ""
        scheme, _, credential = value.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise AuthError("send Authorization: Bearer <secret or token>")
        if self.tokens.is_secret(credential):
            return Grant(conversation=None)
        return self.tokens.read(credential)

    def conversation(self, request: web.Request, grant: Grant) -> str:
        """The conversation of the request's path, if ``grant`` opens it (403/404)."""
        conversation = match_text(request, "conversation")
        grant.opens(conversation)  # 403 for another conversation's token
        if not CONVERSATION_ID.match(conversation):
            raise NotFound("no such conversation")
        return conversation

    def conversation_token(self, grant: Grant, conversation: str) -> dict[str, Any]:
        """``{conversationId, token, expires_in}``: the token itself, or a fresh one for the
        secret's holder."""
        if grant.is_secret:
            token, expires_in = self.tokens.issue(conversation, grant.user)
        else:
            token, expires_in = grant.token, grant.expires_in(time.time())
        return {"conversationId": conversation, "token": token, "expires_in": expires_in}

    def _stream_url(self, conversation: str, watermark: int) -> str:
        query = f"watermark={watermark}&" if watermark else ""
        return f"{self._ws_base}/conversations/{conversation}/stream?{query}t=" + (
            self.tokens.stream(conversation)
        )

    async def generate(self, user: str | None) -> dict[str, Any]:
        """A token for a new conversation (what ``tokens/generate`` answers)."""
        conversation = new_id("dlc")
        token, expires_in = self.tokens.issue(conversation, user)
        return {"conversationId": conversation, "token": token, "expires_in": expires_in}

    async def _generate(self, request: web.Request) -> web.Response:
        if not self.grant(request).is_secret:
            raise Forbidden("tokens/generate needs the secret")
        raw = await read_body(request)
        user = token_user(json_object(raw, what="body")) if raw.strip() else None
        return no_store_json(await self.generate(user))

    async def _refresh(self, request: web.Request) -> web.Response:
        grant = self.grant(request)
        if grant.conversation is None:
            raise Forbidden("tokens/refresh needs a token, not the secret")
        token, expires_in = self.tokens.issue(grant.conversation, grant.user)
        return no_store_json(
            {"conversationId": grant.conversation, "token": token, "expires_in": expires_in}
        )

    async def _start(self, request: web.Request) -> web.Response:
        grant = self.grant(request)
        conversation = grant.conversation or new_id("dlc")
        ttl = self._host.config.midtier.session.idle_timeout_s + self.tokens.ttl_s
        # Shared by every instance: a token's second start is a 200, as the service answers.
        started = await self._host.store.seen(f"directline:{self.name}:{conversation}", ttl)
        body = {
            **self.conversation_token(grant, conversation),
            "streamUrl": self._stream_url(conversation, 0),
            "referenceGrammarId": "",
        }
        return no_store_json(body, status=200 if started else 201)

    async def _reconnect(self, request: web.Request) -> web.Response:
        grant = self.grant(request)
        conversation = self.conversation(request, grant)
        watermark = watermark_of(query_text(request, "watermark"))
        body = {
            **self.conversation_token(grant, conversation),
            "streamUrl": self._stream_url(conversation, watermark),
        }
        return no_store_json(body)


def no_store_json(body: dict[str, Any], status: int = 200) -> web.Response:
    """A JSON answer that no cache keeps (it may hold a token)."""
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})
