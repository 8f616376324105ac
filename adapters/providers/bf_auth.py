"""midtier as the token issuer of the Bot Framework channel it plays for remote bots.

Real Bot Framework channels get their tokens from login.botframework.com and Azure AD;
midtier cannot reach those (and should not need to), so it issues and checks its own:

* **midtier -> bot**: ``Authorization: Bearer <JWT>`` on every activity it POSTs, RS256,
  ``iss`` = :attr:`TokenIssuer.issuer`, ``aud`` = the bot's app id, ``serviceurl`` = the
  activity's ``serviceUrl``, ``nbf``/``exp``, header ``kid``. The bot finds the key through
  OpenID metadata (:meth:`TokenIssuer.openid_metadata`) -> JWKS (:meth:`TokenIssuer.jwks`),
  whose key carries ``endorsements`` (the channel ids midtier sends).
* **bot -> midtier**: the bot gets a token by OAuth2 client credentials at
  :meth:`TokenIssuer.client_credentials` (app id + password checked); the Connector API checks
  it with :meth:`TokenIssuer.verify_connector_token` (signature, issuer, audience
  :data:`CONNECTOR_AUDIENCE`, expiry with 5 minutes of skew) and returns the bot's app id.

The RSA key is made at first start and kept in ``<data>/botframework-signing-key.pem``
(mode 0600): bots cache the JWKS for a day, so a restart must not change it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from connector.errors import AuthError, MalformedPayload
from connector.payloads import loads

# What a bot asks for at the token endpoint (botbuilder's default scope, with /.default).
CONNECTOR_AUDIENCE = "https://api.botframework.com"
TOKEN_LIFETIME_S = 3600
CLOCK_SKEW_S = 300
KEY_FILE = "botframework-signing-key.pem"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    """The signing key at ``path``; a new 2048-bit key is written there (0600) if missing."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key


class TokenIssuer:
    """Signs and checks the JWTs of both directions with one RSA key.

    ``issuer`` is midtier's public base URL; bots are configured to trust exactly that
    value. Tokens to bots are cached per (app id, service URL) until 5 minutes before expiry,
    so that a conversation does not cost an RSA signature per message.
    """

    def __init__(self, issuer: str, key: rsa.RSAPrivateKey) -> None:
        self.issuer = issuer.rstrip("/")
        self._key = key
        self._public = key.public_key()
        der = self._public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = _b64(hashlib.sha256(der).digest()[:18])
        self._to_bot: dict[tuple[str, str], tuple[str, float]] = {}

    # ------------------------------------------------------------------ discovery documents

    def jwks(self, endorsements: list[str]) -> dict[str, Any]:
        """The JSON Web Key Set: our one key, endorsed for ``endorsements`` (channel ids)."""
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self._public, as_dict=True)
        jwk.update(kid=self.kid, use="sig", alg="RS256", endorsements=sorted(endorsements))
        return {"keys": [jwk]}

    def openid_metadata(self, jwks_uri: str, token_endpoint: str) -> dict[str, Any]:
        """OpenID Connect discovery document (what botbuilder's and MSAL's clients read)."""
        return {
            "issuer": self.issuer,
            "jwks_uri": jwks_uri,
            "token_endpoint": token_endpoint,
            "authorization_endpoint": token_endpoint.rsplit("/", 1)[0] + "/authorize",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "grant_types_supported": ["client_credentials"],
        }

    # ------------------------------------------------------------------ midtier -> bot

    def token_for_bot(self, app_id: str, service_url: str) -> str:
        """A bearer token for an activity POSTed to the bot ``app_id``."""
        cached = self._to_bot.get((app_id, service_url))
        now = time.time()
        if cached is not None and cached[1] - now > CLOCK_SKEW_S:
            return cached[0]
        claims = {
            "iss": self.issuer,
            "aud": app_id,
            "serviceurl": service_url,
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now) + TOKEN_LIFETIME_S,
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})
        self._to_bot[(app_id, service_url)] = (token, now + TOKEN_LIFETIME_S)
        return token

    # ------------------------------------------------------------------ bot -> midtier

    def client_credentials(self, app_id: str) -> dict[str, Any]:
        """The token response for a bot whose app id and password were checked."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": CONNECTOR_AUDIENCE,
            "appid": app_id,
            "azp": app_id,
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_LIFETIME_S,
            "jti": secrets.token_urlsafe(12),
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})
        return {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_S,
            "ext_expires_in": TOKEN_LIFETIME_S,
            "access_token": token,
        }

    def verify_connector_token(self, header: str) -> str:
        """Check an ``Authorization`` header of a Connector call; return the caller's app id.

        Raises ``AuthError`` (401) for anything but a valid token of ours for the Connector.
        """
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("Authorization must be 'Bearer <token>'")
        _check_jose_header(token.strip())
        try:
            if jwt.get_unverified_header(token).get("kid") != self.kid:
                raise AuthError("token not signed with midtier's key")
            claims = jwt.decode(
                token.strip(),
                self._public,
                algorithms=["RS256"],
                audience=CONNECTOR_AUDIENCE,
                issuer=self.issuer,
                leeway=CLOCK_SKEW_S,
                options={"require": ["exp", "nbf", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from exc
        app_id = claims.get("appid") or claims.get("azp")
        if not isinstance(app_id, str) or not app_id:
            raise AuthError("token has no appid")
        return app_id


def _check_jose_header(token: str) -> None:
    """Refuse a token whose header segment is not a shallow JSON object, before PyJWT reads it.

    PyJWT parses the header of an unverified token with ``json.loads``; a header of
    ``[[[[...`` would recurse until ``RecursionError``. The payload is parsed only after the
    signature checked out, so it needs no such guard.
    """
    segment = token.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        header = loads(raw.decode("utf-8"), max_depth=8, what="the token header")
    except (ValueError, MalformedPayload) as exc:  # base64, UTF-8 and JSON errors
        raise AuthError("invalid token: malformed header") from exc
    if not isinstance(header, dict):
        raise AuthError("invalid token: malformed header")


__all__ = ["CONNECTOR_AUDIENCE", "KEY_FILE", "TokenIssuer", "load_or_create_key"]
