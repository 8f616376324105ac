"""The Bot Framework channel's tokens, both ways.

**Azure -> midtier.** Azure Bot Service signs every activity it posts with a JWT
(``Authorization: Bearer``), checked here as botframework-connector's ``ChannelValidation``
and ``JwtTokenExtractor`` do: the key is found by ``kid`` in the JWKS that the OpenID
metadata names (cached, refreshed about daily, and early, at most every few minutes, when a
token names a key not seen yet: Microsoft rotates keys); RS256 only; ``iss`` the Bot
Framework's; ``exp``/``nbf`` with 5 minutes of skew; ``aud`` the bot's app id. What the token
vouches for in the body (the key's endorsements, the ``serviceurl`` claim) the channel checks
against the activity (:func:`check_vouched`).

**midtier -> Connector.** Replies carry a token from the OAuth2 client-credentials flow at
the token URL (:class:`ConnectorToken`), cached until shortly before it expires.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
from jwt.algorithms import RSAAlgorithm

from adapters.channels import platform_api
from connector.errors import AuthError, ChannelError, Forbidden, MalformedPayload
from connector.payloads import json_object, loads

log = logging.getLogger("midtier.channels.botframework")

CLOCK_SKEW_S = 300
KEYS_MAX_AGE_S = 24 * 3600
UNKNOWN_KID_REFRESH_S = 300  # a token naming an unknown key refreshes the keys at most this often
FAILED_RETRY_S = 5  # ... and with no keys at all (the first fetch failed), this often
TOKEN_MARGIN_S = 300  # a Connector token is renewed this long before it expires
FETCH_TIMEOUT_S = 10.0
MAX_TOKEN_CHARS = 16_384

Http = Callable[[], aiohttp.ClientSession]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One key of the JWKS. ``endorsements``: the channel ids it may sign for (None: the
    key names none, so any)."""

    key: Any  # an RSA public key (PyJWT's own type alias is not exported for typing)
    endorsements: frozenset[str] | None


def _key_of(jwk: Any) -> tuple[str, SigningKey] | None:
    if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
        return None
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        return None
    try:
        public = RSAAlgorithm.from_jwk(jwk)
    except (jwt.InvalidKeyError, ValueError, TypeError, KeyError):
        return None
    found = jwk.get("endorsements")
    endorsements: frozenset[str] | None = None
    if found is not None:
        # A malformed list endorses nothing: fail closed.
        ok = isinstance(found, list) and all(isinstance(e, str) for e in found)
        endorsements = frozenset(found) if ok else frozenset()
    return kid, SigningKey(public, endorsements)


class OpenIdKeys:
    """The signing keys named by an OpenID metadata document, fetched through the shared
    HTTP client at start-up (best effort) and whenever they are old or a token names a key
    they lack."""

    def __init__(self, http: Http, metadata_url: str, *, clock: Clock = time.monotonic) -> None:
        self._http = http
        self._url = metadata_url
        self._clock = clock
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None  # last successful refresh
        self._tried_at: float | None = None  # last attempt, successful or not
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Fetch the keys now if they are old; a failure is logged, and retried on use."""
        if self._stale():
            await self._refresh("")

    async def get(self, kid: str) -> SigningKey | None:
        """The key ``kid``, refreshing the set when it is old or does not know ``kid``."""
        if self._stale() or kid not in self._keys:
            await self._refresh(kid)
        return self._keys.get(kid)

    def _stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at > KEYS_MAX_AGE_S

    async def _refresh(self, kid: str) -> None:
        async with self._lock:
            if not self._stale() and kid in self._keys:
                return  # another request refreshed them while this one waited
            now = self._clock()
            # Tokens naming unknown keys (or an outage) must not make us fetch per request.
            wait = UNKNOWN_KID_REFRESH_S if self._keys else FAILED_RETRY_S
            if self._tried_at is not None and now - self._tried_at < wait:
                return
            self._tried_at = now
            try:
                keys = await self._fetch()
            except (aiohttp.ClientError, TimeoutError, MalformedPayload, ValueError) as exc:
                # Keep the keys we had: a passing outage of the key service must not stop
                # the tokens we can still check.
                log.warning("fetching the Bot Framework signing keys failed: %s", exc)
                return
            self._keys = keys
            self._fetched_at = now

    async def _fetch(self) -> dict[str, SigningKey]:
        metadata = await self._get_json(self._url)
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise ValueError("the OpenID metadata has no jwks_uri")
        jwks = await self._get_json(jwks_uri)
        found = jwks.get("keys")
        if not isinstance(found, list):
            raise ValueError("the JWKS has no keys")
        return dict(k for k in map(_key_of, found) if k is not None)

    async def _get_json(self, url: str) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
        async with self._http().get(url, timeout=timeout) as response:
            body = await response.read()
            if response.status != 200:
                raise ValueError(f"HTTP {response.status} from {url}")
        return json_object(body, what=url)


def _jose_header(token: str) -> dict[str, Any]:
    """The token's header, read with bounded nesting before PyJWT reads it (its
    ``json.loads`` would recurse on ``[[[[...``)."""
    segment = token.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        header = loads(raw.decode("utf-8"), max_depth=8, what="the token header")
    except (ValueError, MalformedPayload):  # base64, UTF-8 and JSON errors
        raise AuthError("invalid token: malformed header") from None
    if not isinstance(header, dict):
        raise AuthError("invalid token: malformed header")
    return header


@dataclass(frozen=True, slots=True)
class Verified:
    """What a valid token vouches for."""

    claims: dict[str, Any]
    endorsements: frozenset[str] | None


async def check_token(
    authorization: str, keys: OpenIdKeys, *, app_id: str, issuer: str
) -> Verified:
    """Check ``Authorization: Bearer <JWT>``: ``AuthError`` (401) unless it is a valid token
    of the Bot Framework, ``Forbidden`` (403) when it is valid but for another bot."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError("Authorization must be 'Bearer <token>'")
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthError("invalid token: too long")
    header = _jose_header(token)
    if header.get("alg") != "RS256":
        raise AuthError("invalid token: it must be signed with RS256")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise AuthError("invalid token: no key id")
    key = await keys.get(kid)
    if key is None:
        raise AuthError("invalid token: signed with an unknown key")
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            issuer=issuer,
            leeway=CLOCK_SKEW_S,
            # The audience is checked below, so that a valid token for another bot is a 403.
            options={"verify_aud": False, "require": ["exp", "iss", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    if claims.get("aud") != app_id:
        raise Forbidden("the token is for another bot")
    return Verified(claims, key.endorsements)


def check_vouched(verified: Verified, *, channel_id: str, service_url: str) -> None:
    """The activity's ``channelId`` must be endorsed by the signing key (when it names any),
    and its ``serviceUrl`` must be the token's: only then is that URL trusted."""
    if verified.endorsements is not None and channel_id not in verified.endorsements:
        raise AuthError(f"the signing key is not endorsed for channel {channel_id[:64]!r}")
    if verified.claims.get("serviceurl") != service_url:
        raise AuthError("the activity's serviceUrl is not the one its token was issued for")


class ConnectorToken:
    """midtier's bearer token for the Bot Connector (OAuth2 client credentials)."""

    def __init__(
        self,
        http: Http,
        token_url: str,
        *,
        app_id: str,
        app_password: str,
        scope: str,
        clock: Clock = time.monotonic,
    ) -> None:
        self._http = http
        self._url = token_url
        self._form = {
            "grant_type": "client_credentials",
            "client_id": app_id,
            "client_secret": app_password,
            "scope": scope,
        }
        self._clock = clock
        self._token: tuple[str, float] | None = None  # (access token, expires at)
        self._lock = asyncio.Lock()

    def drop(self, token: str) -> None:
        """Forget ``token`` (the Connector refused it); the next ``get`` fetches anew."""
        if self._token is not None and self._token[0] == token:
            self._token = None

    async def get(self) -> str:
        """A token valid for at least a few more minutes; ``ChannelError`` when none can be
        had now (the outbox retries: a wrong password is fixed by the deployer, and the
        replies wait for it)."""
        cached = self._token
        if cached is not None and cached[1] - self._clock() > TOKEN_MARGIN_S:
            return cached[0]
        async with self._lock:
            cached = self._token
            if cached is not None and cached[1] - self._clock() > TOKEN_MARGIN_S:
                return cached[0]
            body = await platform_api.call(
                self._http(),
                "POST",
                self._url,
                what="Bot Framework token request",
                form=self._form,
                classify=_token_error,
            )
            token, lifetime = _grant(body)
            self._token = (token, self._clock() + lifetime)
            return token


def _token_error(status: int, body: Any) -> ChannelError:
    return ChannelError(f"Bot Framework token request: HTTP {status} {platform_api.describe(body)}")


def _grant(body: Any) -> tuple[str, float]:
    if not isinstance(body, dict):
        raise ChannelError("Bot Framework token request: the answer is not a JSON object")
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise ChannelError("Bot Framework token request: the answer has no access_token")
    expires = body.get("expires_in", 3600)
    # Azure AD has sent expires_in as a number and, in older versions, as a string.
    if isinstance(expires, str) and expires.isdigit():
        expires = int(expires)
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        expires = 3600
    return token, max(60.0, float(expires))
