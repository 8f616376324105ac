"""The Bot Framework channel's kit: a fake Azure on the fake platform, and activities signed
the way Azure Bot Service signs them.

The fake Azure serves what midtier calls: the OpenID metadata (the documented document, its
``jwks_uri`` pointed here), the JWKS (one key, with ``endorsements``), the client-credentials
token endpoint, and the Bot Connector under a Teams-like ``serviceUrl`` (``<base>/amer/``).
Tokens come from midtier's own test issuer (:class:`adapters.providers.bf_auth.TokenIssuer`,
what the remote-bot tests use) with the Bot Framework's issuer, so botframework-connector's
own ``ChannelValidation`` accepts them too.
"""

from __future__ import annotations

import copy
import functools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import aiohttp
import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from multidict import CIMultiDict, CIMultiDictProxy

from adapters.channels.botframework import BotFrameworkChannel, BotFrameworkSettings
from adapters.providers.bf_auth import TokenIssuer
from connector.activity import Activity, ChannelAccount, ConversationAccount
from connector.channels import ChannelRequest
from connector.context import ChannelContext, SharedHttp
from connector.errors import AuthError
from support.channel_kits import Reply, WebhookCall
from support.fake_platform import Call, FakePlatform

PAYLOADS = Path(__file__).resolve().parents[2] / "payloads" / "botframework"
APP_ID = "3f4e1c9a-2b7d-4e88-a1c5-6d0f9b2e7a13"
APP_PASSWORD = "bf-channel-password-0123456789"
PASSWORD_ENV = "MIDTIER_BF_APP_PASSWORD"
ISSUER = "https://api.botframework.com"
SCOPE = "https://api.botframework.com/.default"
METADATA_PATH = "/v1/.well-known/openidconfiguration"
KEYS_PATH = "/v1/.well-known/keys"
TOKEN_PATH = "/botframework.com/oauth2/v2.0/token"
REGION = "/amer/"  # Teams' serviceUrls look like https://smba.trafficmanager.net/amer/
ENDORSED = ["directline", "emulator", "msteams", "webchat"]
BOT = {"id": f"28:{APP_ID}", "name": "Acme Pay"}


def payload(name: str) -> dict[str, Any]:
    """A documented example activity (or answer) from ``tests/payloads/botframework``."""
    data: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    return data


@functools.cache
def signing_key(n: int = 0) -> rsa.RSAPrivateKey:
    """RSA keys made once per test run (each costs a noticeable fraction of a second)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class BotFrameworkKit:
    """Drives the ``botframework`` channel against a fake Azure."""

    kind = "botframework"
    env = {PASSWORD_ENV: APP_PASSWORD}
    secret_key = "app_password"
    signs_body = False  # the JWT covers the serviceUrl, not the body: a cut body is a 400

    def __init__(self) -> None:
        self.issuer = TokenIssuer(ISSUER, signing_key())
        self.endorsed = list(ENDORSED)
        self.platform: FakePlatform | None = None
        self.base = "http://127.0.0.1:9"
        self.delivered: list[Call] = []  # Connector calls answered 200
        self.token_requests: list[Call] = []

    @property
    def service_url(self) -> str:
        return self.base + REGION

    def settings(self, api_base: str) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "app_id": APP_ID,
            "app_password": "${" + PASSWORD_ENV + "}",
            "openid_metadata_url": api_base + METADATA_PATH,
            "token_url": api_base + TOKEN_PATH,
        }

    def prepare(self, platform: FakePlatform) -> None:
        self.platform = platform
        self.base = platform.base_url
        platform.route("GET", METADATA_PATH, self._metadata)
        platform.route("GET", KEYS_PATH, lambda _call: self.issuer.jwks(self.endorsed))
        platform.route("POST", TOKEN_PATH, self._token)

    # ------------------------------------------------------------------ what Azure posts

    def activity(self, name: str = "message_teams_personal", **fields: Any) -> dict[str, Any]:
        """A documented example activity, addressed to this kit's bot and Connector."""
        data = copy.deepcopy(payload(name))
        data.update(serviceUrl=self.service_url, recipient=dict(BOT), **fields)
        self.serve(data["conversation"]["id"], data.get("id"))
        return data

    def signed(
        self, data: dict[str, Any], *, token: str | None = None, body: bytes | None = None
    ) -> WebhookCall:
        """``data`` posted with a token for its serviceUrl (or the given one)."""
        token = token or self.issuer.token_for_bot(APP_ID, data.get("serviceUrl", self.service_url))
        return WebhookCall(
            body=json.dumps(data).encode() if body is None else body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )

    def token(self, service_url: str | None = None, **claims: Any) -> str:
        """A channel -> bot token with some claims changed (or removed, given None)."""
        now = int(time.time())
        base = {
            "iss": ISSUER,
            "aud": APP_ID,
            "serviceurl": service_url or self.service_url,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
        }
        base.update(claims)
        values = {k: v for k, v in base.items() if v is not None}
        return jwt.encode(
            values, signing_key(), algorithm="RS256", headers={"kid": self.issuer.kid}
        )

    def message(self, url: str, text: str, *, user: str, message_id: str) -> WebhookCall:
        fields: dict[str, Any] = {
            "id": message_id,
            "text": text,
            "conversation": {"conversationType": "personal", "id": f"a:{user}"},
            "from": {"id": f"29:{user}", "name": user},
        }
        return self.signed(self.activity("message_teams_personal", **fields))

    def sign_body(self, url: str, body: bytes) -> WebhookCall:
        """Any body behind a valid token for this kit's serviceUrl."""
        return self.signed({}, body=body)

    def forged(self, call: WebhookCall) -> WebhookCall:
        token = call.headers["Authorization"].removeprefix("Bearer ")
        claims = jwt.decode(token, options={"verify_signature": False})
        kid = {"kid": self.issuer.kid}  # the right key id, the wrong key
        other = jwt.encode(claims, signing_key(1), algorithm="RS256", headers=kid)
        headers = {**call.headers, "Authorization": f"Bearer {other}"}
        return WebhookCall(body=call.body, headers=headers)

    # ------------------------------------------------------------------ the fake Azure

    def serve(self, conversation_id: str, activity_id: str | None) -> None:
        """Connector routes for one conversation (the fake platform routes exact paths)."""
        if self.platform is None:
            return
        path = f"{REGION}v3/conversations/{conversation_id}/activities"
        self.platform.route("POST", path, self.connector)
        if activity_id:
            self.platform.route("POST", f"{path}/{activity_id}", self.connector)

    def _metadata(self, _call: Call) -> dict[str, Any]:
        return {**payload("openidconfiguration"), "jwks_uri": self.base + KEYS_PATH}

    def _token(self, call: Call) -> web.StreamResponse | dict[str, Any]:
        self.token_requests.append(call)
        form = call.form
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != APP_ID
            or form.get("client_secret") != APP_PASSWORD
            or form.get("scope") != SCOPE
        ):
            return web.json_response(payload("token_error_invalid_client"), status=401)
        return self.issuer.client_credentials(APP_ID)

    def connector(self, call: Call) -> web.StreamResponse | dict[str, Any]:
        """The Bot Connector's reply / send-to-conversation: checks midtier's token."""
        try:
            app_id = self.issuer.verify_connector_token(call.headers.get("Authorization", ""))
        except AuthError as exc:
            error = {"error": {"code": "Unauthorized", "message": str(exc)}}
            return web.json_response(error, status=401)
        if app_id != APP_ID:
            return web.json_response(payload("connector_bot_not_in_roster"), status=403)
        self.delivered.append(call)
        return {"id": f"1:{len(self.delivered)}"}

    def replies(self, platform: FakePlatform) -> list[Reply]:
        out = []
        for call in self.delivered:
            body = call.json
            if body.get("type") != "message":
                continue
            index = next(i for i, c in enumerate(platform.calls) if c is call)
            out.append(Reply(body["conversation"]["id"], body.get("text", ""), index))
        return out


# ---------------------------------------------------------------------- adapter-level tests


@asynccontextmanager
async def adapter(
    kit: BotFrameworkKit, data_dir: Path, **changes: Any
) -> AsyncIterator[BotFrameworkChannel]:
    """The channel built as the core builds it, against the kit's fake Azure, with the
    shared HTTP client open (``changes``: settings to change or, given None, remove)."""
    raw = {**kit.settings(kit.base), "app_password": APP_PASSWORD, **changes}
    raw = {k: v for k, v in raw.items() if k != "kind" and v is not None}
    http = SharedHttp()
    async with aiohttp.ClientSession() as session:
        http.open(session)
        context = ChannelContext(
            name="teams",
            settings=BotFrameworkSettings.model_validate(raw),
            data_dir=data_dir,
            public_url="https://midtier.example.com",
            http=http,
            file="midtier.yaml",
            key="channels.teams",
            host=cast(Any, None),  # a webhook channel calls nothing on its host
        )
        yield BotFrameworkChannel(context)


def request_of(call: WebhookCall) -> ChannelRequest:
    """A webhook call as the core hands it to the adapter."""
    return ChannelRequest(
        method=call.method,
        url="https://midtier.example.com/channels/teams",
        path="/channels/teams",
        headers=CIMultiDictProxy(CIMultiDict(call.headers)),
        query={},
        body=call.body,
        content_type=call.headers.get("Content-Type", ""),
    )


def reply_to(inbound: Activity, **fields: Any) -> Activity:
    """What the core sends back for ``inbound``: addressed to its conversation and user,
    with the reply address the session kept (``channelData.midtier.address``)."""
    address = (inbound.channel_data or {})["address"]
    assert inbound.from_ is not None and inbound.conversation is not None
    extra = fields.pop("channel_data", None) or {}
    return Activity(
        **{"type": "message", **fields},
        id="out-1",
        conversation=ConversationAccount(id=inbound.conversation.id),
        recipient=ChannelAccount(id=inbound.from_.id, role="user"),
        from_=ChannelAccount(id="faq", name="the Acme Pay assistant", role="bot"),
        channel_data={**extra, "midtier": {"speaker": "bot", "address": address}},
    )
