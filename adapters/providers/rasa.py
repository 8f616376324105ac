"""Rasa bots (open source Rasa 3.x) as a midtier provider, kind ``rasa``.

Settings: :class:`~adapters.providers.rasa_settings.RasaSettings`.

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

**Handoff.** ``adapters.botside.rasa.ActionHandoff`` sends ``{"custom": {"midtier":
{"handoff": ...}}}`` and pauses the tracker; it becomes ``handoff.initiate``. midtier appends
``{"event": "resume"}`` when a later leg reopens this sender, or when the handoff failed
(``handoff.status`` ``failed``). The tracker API needs Rasa's ``--enable-api``.

**Callback channel.** Rasa POSTs each bot message to ``/rasa/{provider}/callback``. Rasa sends
no signature, so the URL configured in Rasa's ``credentials.yml`` carries the secret,
``.../callback?secret=...`` (midtier's access log leaves query strings out), or a proxy adds
``Authorization: Bearer <secret>``. Missing: 401; wrong: 403; unknown ``recipient_id``: 404.
Messages arriving while midtier waits for that sender's webhook answer are returned with it
(Rasa answers ``success`` only after posting them all), others go to ``provider_activity``.

**Deadlines.** Calls made for ``open``, ``deliver``, ``close`` and ``health`` set none of their
own: the core's ``ProviderPool`` cancels one that outlasts ``timeout_s``. ``/model/parse`` is
not such a call (the classifier asks it for every message, before routing), so it keeps its
own, shorter ``parse_timeout_s``.
"""

from __future__ import annotations

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
from adapters.providers.rasa_settings import RasaSettings
from connector.activity import Activity, HandoffEventNames
from connector.app.requests import authorization, query_text, read_json_object
from connector.context import ProviderContext
from connector.errors import (
    AuthError,
    Forbidden,
    MalformedPayload,
    ProviderError,
    ProviderTimeout,
)
from connector.interfaces import IntentResult
from connector.logs import redactor
from connector.payloads import parse_json
from connector.provider_protocol import HandoffContext, ProviderHost
from connector.sessions import Leg, MidTierSession

log = logging.getLogger("midtier.rasa")

# No total deadline, not even the shared client's default: the pool's is the only one.
NO_DEADLINE = aiohttp.ClientTimeout()


class RasaProvider:
    """A Rasa server reached through its REST or callback input channel."""

    kind = "rasa"

    Settings = RasaSettings

    def __init__(self, context: ProviderContext[RasaSettings, ProviderHost]) -> None:
        self.name = context.name
        self.config = context.config
        self._host = context.host
        settings = context.settings
        self.url = settings.url.rstrip("/")
        self.channel = settings.channel
        self._secret = settings.callback_secret
        self.parse_intents = settings.parse_intents
        self.parse_timeout_s = settings.parse_timeout_s or min(2.0, self.config.timeout_s)
        self.text_fallback = settings.text_fallback
        self.handoff_intent = settings.handoff_intent
        self.restart_on_close = settings.restart_on_close
        self.callback_path = f"/rasa/{self.name}/callback"
        self._http = context.http
        self._started = False
        self._pending: dict[str, dict[str, Any]] = {}  # sender -> handoff context, once
        self._inflight: dict[str, list[dict[str, Any]]] = {}  # sender -> callbacks collected
        self._params = {"token": settings.token} if settings.token else {}
        redactor.add(settings.token)
        redactor.add(self._secret)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Hook the bot's NLU into the classifier if asked; calls to Rasa may begin."""
        self._started = True
        if self.parse_intents:
            install_classifier(self._host, self)

    async def stop(self) -> None:
        """Unhook the bot's NLU; calls to Rasa end."""
        remove_classifier(self._host, self)
        self._started = False

    def mount(self, app: web.Application) -> None:
        """The callback route, for ``channel: callback``."""
        if self.channel == "callback":
            app.router.add_post(self.callback_path, self._callback)

    # ------------------------------------------------------------------ Provider

    async def health(self) -> bool:
        """``GET {url}/`` answers 200."""
        try:
            async with self._client().get(f"{self.url}/", timeout=NO_DEADLINE) as response:
                return response.status == 200
        except (aiohttp.ClientError, ProviderError):
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
        if not self._started:
            raise ProviderError(self.name, "not started")
        return self._http()

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
            answer = await self._post_json("/webhooks/rest/webhook", body)
            return answer if isinstance(answer, list) else [answer]
        collected: list[dict[str, Any]] = []
        self._inflight[sender] = collected
        try:
            await self._post_json("/webhooks/callback/webhook", body)
        finally:
            self._inflight.pop(sender, None)
        return collected

    async def _resume(self, sender: str) -> None:
        path = f"/conversations/{quote(sender, safe='')}/tracker/events"
        await self._post_json(path, {"event": "resume"})

    async def _post_json(
        self, path: str, body: dict[str, Any], limit_s: float | None = None
    ) -> Any:
        """POST JSON to Rasa; its answer (JSON, or the text for ``success``). ``limit_s``: a
        deadline of its own (``/model/parse``); None for calls within the pool's."""
        http = self._client()
        limit = NO_DEADLINE if limit_s is None else aiohttp.ClientTimeout(total=limit_s)
        try:
            async with http.post(
                self.url + path, json=body, params=self._params, timeout=limit
            ) as response:
                if response.status >= 400:
                    raise ProviderError(self.name, f"{path} answered HTTP {response.status}")
                raw = await response.read()
        except TimeoutError as exc:  # only ``limit_s`` times a call: NO_DEADLINE sets no timer
            raise ProviderTimeout(self.name, f"{path}: no answer within {limit_s}s") from exc
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


__all__ = ["RasaProvider"]
