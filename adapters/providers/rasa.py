"""Rasa bots (open source Rasa 3.x) as a midtier provider, kind ``rasa``.

``providers.yaml``::

    orders:
      kind: rasa
      title: the orders assistant
      url: http://rasa:5005                 # the Rasa server
      channel: rest                         # rest (default) | callback
      token: ${RASA_TOKEN:-}                # Rasa's --auth-token, for /model/parse and the
                                            # tracker API (resume); sent as ?token=
      callback_secret: ${RASA_CALLBACK_SECRET}  # required with channel: callback
      parse_intents: false                  # also read intents with the bot's /model/parse
      parse_timeout_s: 2                    # ... within this time, else skipped
      text_fallback: true                   # also write buttons/images into the text
      handoff_intent: ""                    # e.g. midtier_handoff: tell the bot at once
      restart_on_close: false               # send /restart when a leg closes

**Conversations.** The Rasa ``sender`` (and the leg's provider conversation id) is
``{user id}:{16 characters of SHA-256(provider, mid-tier session id)}``: one Rasa tracker per
mid-tier session and provider, named after the user, never shared with another session or
channel. Every leg of a session to this bot reuses it, so a conversation handed to an agent
and back continues where the bot left it (the latest leg owns the key; older legs are closed).

**Metadata.** Every user message carries ``metadata.midtier`` = ``intent``, ``confidence``,
``session``, ``channel``, ``leg``; the first one after a leg opens also ``auth_code``,
``token_url`` and ``handoff`` (``reason``, ``from_provider``, ``intent``). The core's
``midtier.handoff`` event is kept for that message (the code lives only in memory), unless
``handoff_intent`` is set: then it goes to the bot at once as ``/{handoff_intent}`` with that
metadata. Close sends nothing unless ``restart_on_close``; Rasa expires its own sessions.

**Handoff.** ``adapters.rasa_handoff.ActionHandoff`` sends ``{"custom": {"midtier":
{"handoff": ...}}}`` and pauses the tracker; it becomes ``handoff.initiate``. midtier appends
``{"event": "resume"}`` when a later leg reopens this sender, or when the handoff failed
(``handoff.status`` ``failed``). The tracker API needs Rasa's ``--enable-api``.

**Callback channel.** Rasa POSTs each bot message to ``/rasa/{provider}/callback``. Rasa sends
no signature, so the URL configured in Rasa's ``credentials.yml`` carries the secret,
``.../callback?secret=...`` (midtier's access log leaves query strings out), or a proxy adds
``Authorization: Bearer <secret>``. Missing: 401; wrong: 403; unknown ``recipient_id``: 404.
Messages arriving while midtier waits for that sender's webhook answer are returned with it
(Rasa answers ``success`` only after posting them all), others go to ``provider_activity``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from adapters.providers.rasa_mapping import intent_result, to_activities
from adapters.providers.rasa_nlu import install_classifier, remove_classifier
from connector.activity import Activity, HandoffEventNames
from connector.app.requests import authorization, query_text, read_json_object
from connector.config import ProviderConfig
from connector.errors import (
    AuthError,
    ConfigError,
    Forbidden,
    MalformedPayload,
    ProviderError,
    ProviderTimeout,
)
from connector.interfaces import HandoffContext, IntentResult, ProviderHost
from connector.logs import redactor
from connector.payloads import parse_json
from connector.sessions import Leg, MidTierSession

log = logging.getLogger("midtier.rasa")

CHANNELS = ("rest", "callback")


def _flag(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true", "yes"))


class RasaProvider:
    """A Rasa server reached through its REST or callback input channel."""

    kind = "rasa"

    def __init__(self, name: str, config: ProviderConfig, host: ProviderHost) -> None:
        self.name = name
        self.config = config
        self._host = host
        s = config.settings
        key = f"providers.{name}"
        self.url = str(s.get("url") or "").rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError("providers.yaml", f"{key}.url", "required: the Rasa server's URL")
        self.channel = str(s.get("channel") or "rest")
        if self.channel not in CHANNELS:
            raise ConfigError("providers.yaml", f"{key}.channel", "expected 'rest' or 'callback'")
        self._token = str(s.get("token") or "")
        self._secret = str(s.get("callback_secret") or "")
        if self.channel == "callback" and len(self._secret) < 16:
            raise ConfigError(
                "providers.yaml",
                f"{key}.callback_secret",
                "required with channel: callback (at least 16 characters, from an env var)",
            )
        self.parse_intents = _flag(s.get("parse_intents"))
        try:
            self.parse_timeout_s = float(s.get("parse_timeout_s") or min(2.0, config.timeout_s))
        except (TypeError, ValueError) as exc:
            message = "expected a number of seconds"
            raise ConfigError("providers.yaml", f"{key}.parse_timeout_s", message) from exc
        self.text_fallback = _flag(s.get("text_fallback", True))
        self.handoff_intent = str(s.get("handoff_intent") or "")
        self.restart_on_close = _flag(s.get("restart_on_close"))
        self.callback_path = f"/rasa/{name}/callback"
        self._http: aiohttp.ClientSession | None = None
        self._pending: dict[str, dict[str, Any]] = {}  # sender -> handoff context, once
        self._inflight: dict[str, list[dict[str, Any]]] = {}  # sender -> callbacks collected
        self._params = {"token": self._token} if self._token else {}
        redactor.add(self._token)
        redactor.add(self._secret)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the shared HTTP client; hook the bot's NLU into the classifier if asked."""
        self._http = aiohttp.ClientSession()
        if self.parse_intents:
            install_classifier(self._host, self)

    async def stop(self) -> None:
        """Close the HTTP client."""
        remove_classifier(self._host, self)
        if self._http is not None:
            await self._http.close()
            self._http = None

    def mount(self, app: web.Application) -> None:
        """The callback route, for ``channel: callback``."""
        if self.channel == "callback":
            app.router.add_post(self.callback_path, self._callback)

    # ------------------------------------------------------------------ Provider

    async def health(self) -> bool:
        """``GET {url}/`` answers 200."""
        try:
            async with asyncio.timeout(self.config.timeout_s):
                async with self._client().get(f"{self.url}/") as response:
                    return response.status == 200
        except (aiohttp.ClientError, TimeoutError, ProviderError):
            return False

    def sender(self, session: MidTierSession) -> str:
        """The Rasa sender id (= provider conversation id) of ``session`` with this bot."""
        digest = hashlib.sha256(f"{self.name}\x00{session.id}".encode()).digest()
        return f"{session.user_id}:{base64.urlsafe_b64encode(digest).decode()[:16]}"

    async def open(self, session: MidTierSession, leg: Leg, context: HandoffContext) -> str:
        """Name the sender, resume a tracker the bot paused, keep the context for later."""
        self._client()
        sender = self.sender(session)
        earlier = [old for old in session.legs if old.provider == self.name]
        if earlier and earlier[-1].data.get("rasa_paused"):
            await self._resume(sender)
        leg.data.update({"session_id": session.id, "rasa_paused": False})
        self._pending[sender] = {
            "auth_code": context.auth_code,
            "token_url": context.token_url,
            "handoff": {
                "reason": context.reason,
                "from_provider": context.from_provider,
                "intent": context.intent,
            },
        }
        return sender

    async def deliver(self, leg: Leg, activity: Activity) -> list[Activity]:
        """Send a user message (or the handoff context) to the bot; return its replies."""
        sender = leg.provider_conversation_id
        if activity.is_event(HandoffEventNames.CONTEXT):
            if not self.handoff_intent:
                return []
            return await self._say(leg, f"/{self.handoff_intent}", self._metadata(leg, activity))
        if activity.is_event(HandoffEventNames.STATUS):
            value = activity.value if isinstance(activity.value, dict) else {}
            if value.get("state") == "failed" and leg.data.get("rasa_paused"):
                await self._resume(sender)  # nobody took it: the bot carries on
                leg.data["rasa_paused"] = False
            return []
        if not activity.is_message or not activity.text:
            return []
        return await self._say(leg, activity.text, self._metadata(leg, activity))

    async def close(self, leg: Leg, reason: str) -> None:
        """Forget the pending context; ``restart_on_close`` also sends ``/restart``."""
        self._pending.pop(leg.provider_conversation_id, None)
        if self.restart_on_close:
            await self._post_message(leg.provider_conversation_id, "/restart", {})

    # ------------------------------------------------------------------ NLU

    async def parse(self, text: str) -> IntentResult:
        """The bot's own NLU (``POST /model/parse``) as an IntentResult."""
        body = await self._post_json("/model/parse", {"text": text}, self.parse_timeout_s)
        try:
            return intent_result(body)
        except (ValueError, TypeError) as exc:
            raise ProviderError(self.name, f"/model/parse answered {exc}") from exc

    # ------------------------------------------------------------------ Rasa calls

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise ProviderError(self.name, "not started")
        return self._http

    def _metadata(self, leg: Leg, activity: Activity) -> dict[str, Any]:
        routed = (activity.channel_data or {}).get("midtier") or {}
        meta: dict[str, Any] = {
            "intent": routed.get("intent"),
            "confidence": routed.get("confidence"),
            "session": leg.data.get("session_id"),
            "channel": leg.channel,
            "leg": leg.id,
        }
        meta.update(self._pending.pop(leg.provider_conversation_id, {}))
        return {"midtier": meta}

    async def _say(self, leg: Leg, text: str, metadata: dict[str, Any]) -> list[Activity]:
        messages = await self._post_message(leg.provider_conversation_id, text, metadata)
        try:
            replies, handoff = to_activities(messages, text_fallback=self.text_fallback)
        except ValueError as exc:
            raise ProviderError(self.name, f"the bot answered {exc}") from exc
        if handoff is not None and handoff.get("paused", True) is not False:
            leg.data["rasa_paused"] = True  # saved with the switch that follows
        return replies

    async def _post_message(
        self, sender: str, text: str, metadata: dict[str, Any]
    ) -> list[dict[str, Any]]:
        body = {"sender": sender, "message": text, "metadata": metadata}
        if self.channel == "rest":
            answer = await self._post_json("/webhooks/rest/webhook", body, self.config.timeout_s)
            return answer if isinstance(answer, list) else [answer]
        collected: list[dict[str, Any]] = []
        self._inflight[sender] = collected
        try:
            await self._post_json("/webhooks/callback/webhook", body, self.config.timeout_s)
        finally:
            self._inflight.pop(sender, None)
        return collected

    async def _resume(self, sender: str) -> None:
        path = f"/conversations/{quote(sender, safe='')}/tracker/events"
        await self._post_json(path, {"event": "resume"}, self.config.timeout_s)

    async def _post_json(self, path: str, body: dict[str, Any], limit_s: float) -> Any:
        """POST JSON to Rasa; its answer (JSON, or the text for ``success``)."""
        http = self._client()
        try:
            async with asyncio.timeout(limit_s):
                async with http.post(self.url + path, json=body, params=self._params) as response:
                    if response.status >= 400:
                        raise ProviderError(self.name, f"{path} answered HTTP {response.status}")
                    raw = await response.read()
        except TimeoutError as exc:
            raise ProviderTimeout(self.name, f"{path}: no answer within {limit_s:g}s") from exc
        except aiohttp.ClientError as exc:
            raise ProviderError(self.name, f"{path} failed: {type(exc).__name__}") from exc
        if path == "/webhooks/callback/webhook":
            return raw.decode(errors="replace")
        try:
            return parse_json(raw)
        except MalformedPayload as exc:
            raise ProviderError(self.name, f"{path} answered something not JSON: {exc}") from exc

    # ------------------------------------------------------------------ callbacks

    def _check_secret(self, request: web.Request) -> None:
        header = authorization(request) or ""
        given = header[7:] if header.startswith("Bearer ") else query_text(request, "secret") or ""
        if not given:
            raise AuthError("the callback carries no secret")
        if not hmac.compare_digest(given.encode(), self._secret.encode()):
            log.warning("Rasa callback for %s refused: wrong secret", self.name)
            raise Forbidden("wrong callback secret")

    async def _callback(self, request: web.Request) -> web.Response:
        """One bot message from Rasa's callback channel."""
        self._check_secret(request)
        message = await read_json_object(request, "the callback body")
        if not isinstance(message.get("recipient_id"), str):
            raise MalformedPayload("the callback body needs a recipient_id")
        sender: str = message["recipient_id"]
        try:
            replies, handoff = to_activities([message], text_fallback=self.text_fallback)
        except ValueError as exc:
            raise MalformedPayload(f"the callback body is not a Rasa bot message: {exc}") from exc
        collecting = self._inflight.get(sender)
        if collecting is not None:
            collecting.append(message)
            return web.Response(text="success")
        if handoff is not None and handoff.get("paused", True) is not False:
            await self._host.update_leg_data(self.name, sender, {"rasa_paused": True})
        if not replies:  # nothing for the user, but the conversation must exist
            await self._host.update_leg_data(self.name, sender, {})
        for reply in replies:
            await self._host.provider_activity(self.name, sender, reply)
        return web.Response(text="success")


__all__ = ["CHANNELS", "RasaProvider"]
