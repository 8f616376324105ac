"""midtier's Bot Connector API and token issuer endpoints for remote Bot Framework bots.

One :class:`ConnectorHub` per midtier app serves every ``botframework`` provider: each
provider asks its context for the app's hub (``context.shared(ConnectorHub)``) and registers
itself as a :class:`ConnectorBot`; the app mounts the hub's routes once and starts it (loads
the signing key) before the providers. The Connector routes find the provider that owns a
conversation id, check the caller (see :mod:`adapters.providers.bf_auth`), and hand what the
bot sent to the core.

**Why the inbox.** The core holds the session's lock while it delivers to a bot, and
``host.provider_activity`` takes that same lock. A botbuilder bot hosted on aiohttp posts its
replies *during* midtier's POST, before answering it; awaiting the core inline would deadlock.
So a Connector call is checked (auth, conversation, leg open, body), its activity is stored in
the core's provider inbox (``host.accept``), and the call is answered with a
``ResourceResponse``: replies reach the user in the order the bot sent them, after the
delivery that caused them, and survive a crash once acknowledged.

Routes (``{cid}`` is percent-decoded by aiohttp):

- ``POST /v3/conversations/{cid}/activities[/{id}]``: reply / send, 200 ``{"id"}``
- ``PUT`` / ``DELETE .../activities/{id}``: forwarded as ``messageUpdate`` / ``messageDelete``
- ``GET .../members``, ``.../members/{mid}``, ``.../activities/{id}/members``: user and bot
- ``POST /v3/conversations`` (create), ``GET /v3/conversations``, ``.../activities/history``,
  ``.../attachments``: 501 ``{"error": {"code": "NotSupported", "message"}}``
- ``GET /v1/.well-known/openidconfiguration`` and ``/v1/.well-known/keys``: metadata + JWKS
  for midtier -> bot tokens (also at ``/adfs/.well-known/openid-configuration``, where MSAL
  looks for it when a bot's login URL is ``{midtier}/adfs``)
- ``POST /adfs/oauth2/token``: client credentials for bot -> midtier tokens
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import secrets
from typing import Protocol

from aiohttp import web
from pydantic import ValidationError

from adapters.providers.bf_auth import CONNECTOR_AUDIENCE, KEY_FILE, TokenIssuer, load_or_create_key
from connector.activity import Activity, ChannelAccount, ConversationAccount
from connector.app import status_for
from connector.app.requests import authorization, match_text, read_form, read_json_object
from connector.app.token import oauth_error
from connector.context import ServiceContext
from connector.errors import (
    AuthError,
    Forbidden,
    MalformedPayload,
    NotFound,
    SessionClosed,
)
from connector.sessions import Leg

log = logging.getLogger("midtier.botframework")

METADATA_PATH = "/v1/.well-known/openidconfiguration"
JWKS_PATH = "/v1/.well-known/keys"
LOGIN_PATH = "/adfs"  # MSAL skips Microsoft's instance discovery for an ".../adfs" authority
TOKEN_PATH = "/adfs/oauth2/token"
_CONV = "/v3/conversations/{cid}"
_DROPPED = frozenset({"trace", "delay", "invokeResponse"})


class ConnectorBot(Protocol):
    """What the hub needs of a provider whose bot calls the Connector API: who the bot is,
    how it signs in, and how the channel presents the bot and the user to it."""

    name: str
    app_id: str
    app_password: str
    auth: bool
    channel_id: str

    def bot_account(self) -> ChannelAccount: ...

    def user_account(self, leg: Leg, user_id: str) -> ChannelAccount: ...


def not_supported(what: str) -> web.Response:
    """501 in the Connector's ErrorResponse shape, for calls midtier deliberately lacks."""
    message = f"midtier's Connector does not support {what}"
    return web.json_response({"error": {"code": "NotSupported", "message": message}}, status=501)


class ConnectorHub:
    """Connector API + token issuer of one app; dispatches to the owning provider."""

    def __init__(self, context: ServiceContext) -> None:
        self.host = context.host
        self.base_url = context.public_url  # midtier's public base URL, no trailing slash
        self.providers: dict[str, ConnectorBot] = {}
        self.issuer: TokenIssuer | None = None
        self._key_path = context.data_dir / KEY_FILE
        self._channels = context.channels
        self._owners: dict[str, str] = {}  # conversation id -> provider (cache of the store)

    def register(self, provider: ConnectorBot) -> None:
        """Serve ``provider``'s conversations (and its bot's token requests)."""
        self.providers[provider.name] = provider

    def own(self, conversation_id: str, provider: str) -> None:
        """Remember whose conversation this is (the store is asked for those not known)."""
        self._owners[conversation_id] = provider

    def disown(self, conversation_id: str) -> None:
        """Forget a closed conversation's owner."""
        self._owners.pop(conversation_id, None)

    async def start(self) -> None:
        """Load (or make) the signing key once for all providers (the app starts the hub)."""
        if self.issuer is None:
            key = await asyncio.to_thread(load_or_create_key, self._key_path)
            self.issuer = TokenIssuer(self.base_url, key)

    def endorsements(self) -> list[str]:
        """Channel ids our key is endorsed for: every channel and provider channel_id."""
        ids = {"midtier", *self._channels}
        ids.update(p.channel_id for p in self.providers.values() if p.channel_id)
        return sorted(ids)

    # ------------------------------------------------------------------ routes

    def mount(self, app: web.Application) -> None:
        """Add the Connector API and issuer routes (the app does, once)."""
        r = app.router
        r.add_get(METADATA_PATH, self._metadata)
        r.add_get("/.well-known/openid-configuration", self._metadata)
        r.add_get(LOGIN_PATH + "/.well-known/openid-configuration", self._metadata)
        r.add_get(JWKS_PATH, self._jwks)
        r.add_post(TOKEN_PATH, self._token)
        r.add_post("/v3/conversations", self._refuse)
        r.add_get("/v3/conversations", self._refuse)
        r.add_post(_CONV + "/activities", self._post_activity)
        r.add_post(_CONV + "/activities/history", self._refuse)
        r.add_post(_CONV + "/activities/{aid}", self._post_activity)
        r.add_put(_CONV + "/activities/{aid}", self._put_activity)
        r.add_delete(_CONV + "/activities/{aid}", self._delete_activity)
        r.add_get(_CONV + "/activities/{aid}/members", self._members)
        r.add_get(_CONV + "/members", self._members)
        r.add_get(_CONV + "/members/{mid}", self._member)
        r.add_post(_CONV + "/attachments", self._refuse)

    async def _metadata(self, request: web.Request) -> web.Response:
        issuer = self._issuer()
        return web.json_response(
            issuer.openid_metadata(self.base_url + JWKS_PATH, self.base_url + TOKEN_PATH)
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        return web.json_response(self._issuer().jwks(self.endorsements()))

    async def _token(self, request: web.Request) -> web.Response:
        """OAuth2 client credentials for registered auth-on bots (RFC 6749 errors)."""
        try:
            form = await read_form(request)
            basic = authorization(request) or ""
        except (AuthError, MalformedPayload) as exc:  # RFC 6749 errors, the core's statuses
            error = "invalid_client" if isinstance(exc, AuthError) else "invalid_request"
            return oauth_error(status_for(exc), error, str(exc))
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if basic.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            except ValueError:
                return oauth_error(400, "invalid_request", "malformed Basic credentials")
        if form.get("grant_type") != "client_credentials":
            return oauth_error(400, "unsupported_grant_type", "only client_credentials")
        bot = next((p for p in self.providers.values() if p.auth and p.app_id == client_id), None)
        if bot is None or not hmac.compare_digest(secret.encode(), bot.app_password.encode()):
            log.warning("token request refused for client %r", client_id[:64])
            return oauth_error(401, "invalid_client", "unknown client or wrong secret")
        scopes = form.get("scope", "").split()
        if scopes and CONNECTOR_AUDIENCE not in {s.removesuffix("/.default") for s in scopes}:
            return oauth_error(400, "invalid_scope", f"scope must be {CONNECTOR_AUDIENCE}")
        grant = self._issuer().client_credentials(client_id)
        return web.json_response(grant, headers={"Cache-Control": "no-store"})

    async def _refuse(self, request: web.Request) -> web.Response:
        what = f"{request.method} {request.match_info.route.resource.canonical}"  # type: ignore[union-attr]
        return not_supported(what)

    async def _post_activity(self, request: web.Request) -> web.Response:
        provider, cid, _ = await self._authorize(request)
        activity = await _read_activity(request)
        activity_id = activity.id or secrets.token_hex(16)
        if activity.type not in _DROPPED:
            activity.id = activity_id
            await self._enqueue(provider, cid, activity)
        return web.json_response({"id": activity_id})

    async def _put_activity(self, request: web.Request) -> web.Response:
        provider, cid, _ = await self._authorize(request)
        activity = await _read_activity(request)
        activity.type, activity.id = "messageUpdate", match_text(request, "aid")
        await self._enqueue(provider, cid, activity)
        return web.json_response({"id": activity.id})

    async def _delete_activity(self, request: web.Request) -> web.Response:
        provider, cid, _ = await self._authorize(request)
        await self._enqueue(
            provider, cid, Activity(type="messageDelete", id=match_text(request, "aid"))
        )
        return web.Response(status=200)

    async def _members(self, request: web.Request) -> web.Response:
        provider, _, user = await self._authorize(request)
        accounts = [user, provider.bot_account()]
        return web.json_response([a.model_dump(mode="json", exclude_none=True) for a in accounts])

    async def _member(self, request: web.Request) -> web.Response:
        provider, cid, user = await self._authorize(request)
        member = match_text(request, "mid")
        for account in (user, provider.bot_account()):
            if account.id == member:
                return web.json_response(account.model_dump(mode="json", exclude_none=True))
        raise NotFound(f"no member {member[:64]!r} in conversation {cid[:64]!r}")

    # ------------------------------------------------------------------ checks

    def _issuer(self) -> TokenIssuer:
        if self.issuer is None:
            raise NotFound("the Bot Framework token issuer has not started")
        return self.issuer

    async def _authorize(self, request: web.Request) -> tuple[ConnectorBot, str, ChannelAccount]:
        """Caller, owner and open leg of a Connector call; touches no session.

        A present ``Authorization`` header is always validated (401); an auth-on bot must
        send one (401), for a conversation of its own (403). Unknown conversation 404, closed 409.
        """
        cid = match_text(request, "cid")
        header = authorization(request)
        caller = self._issuer().verify_connector_token(header) if header else None
        provider = await self._owner(cid)
        if provider.auth and caller is None:
            raise AuthError(f"Connector calls of {provider.name!r} need a bearer token")
        if caller is not None and caller != provider.app_id:
            raise Forbidden(f"conversation {cid!r} does not belong to the caller's bot")
        session = await self.host.store.by_provider(provider.name, cid)
        leg = session.leg_for_provider(provider.name, cid) if session else None
        if session is None or leg is None:
            raise NotFound(f"no conversation {cid!r}")
        if not leg.is_open or session.status != "active":
            raise SessionClosed(f"conversation {cid!r} is closed")
        return provider, cid, provider.user_account(leg, session.user_id)

    async def _owner(self, cid: str) -> ConnectorBot:
        name = self._owners.get(cid)
        if name is None:
            for candidate in self.providers:
                if await self.host.store.by_provider(candidate, cid) is not None:
                    name = candidate
                    break
        provider = self.providers.get(name or "")
        if provider is None:
            raise NotFound(f"no conversation {cid!r}")
        return provider

    # ------------------------------------------------------------------ hand-over

    async def _enqueue(self, provider: ConnectorBot, cid: str, activity: Activity) -> None:
        """Hand the bot's activity to the core's inbox: stored now, applied in order soon.

        Bots post replies while midtier's POST to them is still open (and the session's lock
        held), so the core applies them after the Connector call has been answered.
        """
        if activity.conversation is None:
            activity.conversation = ConversationAccount(id=cid)
        activity.conversation.id = cid
        if activity.from_ is None:
            activity.from_ = provider.bot_account()
        await self.host.accept(provider.name, cid, [activity])


async def _read_activity(request: web.Request) -> Activity:
    body = await read_json_object(request, "body (an Activity)")
    if not isinstance(body.get("type"), str) or not body["type"]:
        raise MalformedPayload("activity has no type")
    try:
        return Activity.from_wire(body)
    except ValidationError as exc:
        raise MalformedPayload(f"not an Activity: {exc.errors()[0]['msg']}") from exc


__all__ = [
    "JWKS_PATH",
    "LOGIN_PATH",
    "METADATA_PATH",
    "TOKEN_PATH",
    "ConnectorBot",
    "ConnectorHub",
]
