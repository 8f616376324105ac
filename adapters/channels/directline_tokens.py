"""Direct Line's credentials: the secret, and the tokens it signs (see :mod:`.directline`).

A **secret** (``channels.<name>.secret``, from an env var; several for rotation) is held by
a company's servers and opens every conversation. A **token** opens one conversation: it is
a JWT (HS256) whose key is derived from the secret with HMAC-SHA256, binding the
conversation id (``conv``), an expiry (``exp``) and, when the token server named one, the
user (``user``, which Bot Framework Web Chat reads to know who it is). Tokens are signed
with the first secret and accepted under any of them, so a secret can be rotated without
ending the conversations of the day. A **stream token** is a token of its own kind (another
audience) that lives a minute: it rides in the stream URL's query, where a proxy might log
it, so it opens the stream and nothing else.

Tokens are never logged and never put in exception texts.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from connector.errors import AuthError, Forbidden

Use = Literal["conversation", "stream"]

ISSUER = "midtier"
STREAM_TTL_S = 60  # Direct Line gives a client 60 s to connect to a stream URL
MAX_TOKEN_CHARS = 4096
LEEWAY_S = 10  # instances' clocks differ a little: a token is not "from the future"
_KEY_LABEL = b"midtier directline token key v1"


@dataclass(frozen=True, slots=True)
class Grant:
    """What a credential opens: every conversation (the secret) or one (a token)."""

    conversation: str | None  # None: the secret, which opens all of them
    user: str | None = None  # the user a token server bound to the token
    expires_at: int = 0  # epoch seconds (a token's ``exp``)
    token: str = ""  # the token itself, to hand back unchanged

    @property
    def is_secret(self) -> bool:
        return self.conversation is None

    def opens(self, conversation: str) -> None:
        """Forbidden (403) unless this credential opens ``conversation``."""
        if self.conversation is not None and self.conversation != conversation:
            raise Forbidden("this token is for another conversation")

    def expires_in(self, now: float) -> int:
        return max(0, self.expires_at - int(now))


def derive_key(secret: str, channel: str) -> bytes:
    """The token key of one secret: HMAC-SHA256 keyed by the secret over a fixed label and
    the channel's name (two Direct Line channels never accept each other's tokens)."""
    return hmac.new(
        secret.encode("utf-8"), _KEY_LABEL + b"\x00" + channel.encode("utf-8"), hashlib.sha256
    ).digest()


class Tokens:
    """Issues and checks the tokens of one Direct Line channel."""

    def __init__(self, channel: str, secrets: list[str], ttl_s: int) -> None:
        if not secrets:
            raise ValueError("a Direct Line channel needs a secret")
        self._secrets = [s.encode("utf-8") for s in secrets]
        self._keys = [derive_key(s, channel) for s in secrets]
        self._audience = f"directline:{channel}"
        self.ttl_s = ttl_s

    def is_secret(self, value: str) -> bool:
        """Whether ``value`` is one of the secrets (constant time, over bytes, each compared)."""
        given = value.encode("utf-8", "surrogatepass")
        found = False
        for secret in self._secrets:
            found |= hmac.compare_digest(given, secret)
        return found

    def issue(
        self, conversation: str, user: str | None = None, *, now: float | None = None
    ) -> tuple[str, int]:
        """A conversation token and its lifetime in seconds."""
        return self._sign("conversation", conversation, user, self.ttl_s, now), self.ttl_s

    def stream(self, conversation: str, *, now: float | None = None) -> str:
        """A token for the stream URL of ``conversation``, good for a minute."""
        return self._sign("stream", conversation, None, STREAM_TTL_S, now)

    def _sign(
        self, use: Use, conversation: str, user: str | None, ttl: int, at: float | None
    ) -> str:
        issued = int(time.time() if at is None else at)
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": f"{self._audience}:{use}",
            "conv": conversation,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl,
        }
        if user is not None:
            claims["user"] = user
        return jwt.encode(claims, self._keys[0], algorithm="HS256")

    def read(self, token: str, use: Use = "conversation") -> Grant:
        """The grant of a token this channel signed, unexpired; AuthError (401) otherwise."""
        if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            raise AuthError("the token is not valid")
        for key in self._keys:
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=["HS256"],
                    audience=f"{self._audience}:{use}",
                    issuer=ISSUER,
                    leeway=LEEWAY_S,
                    options={"require": ["exp", "iat", "aud", "iss"]},
                )
            except jwt.InvalidSignatureError:
                continue  # maybe signed with another of the secrets
            except jwt.ExpiredSignatureError:
                raise AuthError("the token has expired") from None
            except jwt.PyJWTError:
                raise AuthError("the token is not valid") from None
            return _grant(claims, token)
        raise AuthError("the token is not valid")


def _grant(claims: dict[str, Any], token: str) -> Grant:
    conversation, user, exp = claims.get("conv"), claims.get("user"), claims.get("exp")
    if not isinstance(conversation, str) or not conversation:
        raise AuthError("the token is not valid")
    if user is not None and not isinstance(user, str):
        raise AuthError("the token is not valid")
    return Grant(
        conversation=conversation,
        user=user,
        expires_at=exp if isinstance(exp, int) else 0,
        token=token,
    )
