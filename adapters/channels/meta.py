"""What Facebook Messenger and the WhatsApp Cloud API share: both are Meta webhooks and
Graph API calls.

* **Signature.** Every webhook POST carries ``X-Hub-Signature-256: sha256=<hex>``, the
  HMAC-SHA256 of the raw body under the app secret. Meta signs the body as it sent it
  (non-ASCII escaped as ``\\uXXXX``), so the bytes are hashed as they arrived, never a
  re-serialisation. A missing or malformed header is a 401, a wrong signature a 403. The
  legacy ``X-Hub-Signature`` (SHA-1) is not accepted: SHA-256 is what Meta sends to every app.
  There is no timestamp, hence no replay window; the core's dedupe on the message id
  absorbs replays of what was already recorded.
* **Handshake.** Subscribing a webhook sends ``GET ?hub.mode=subscribe&hub.verify_token=..
  &hub.challenge=..``: the challenge comes back as text/plain when the token matches, else 403.
* **Graph API errors** (``{"error": {"message", "type", "code", "error_subcode",
  "fbtrace_id"}}``, usually with HTTP 400): rate limits and temporary failures are retried,
  a closed messaging window or an unreachable user is refused for good.
* **Reading payloads.** A signed payload is still untrusted: :class:`Fields` reads each
  value with its expected type and says where it was wrong (a 400, never a 500).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, field_validator

from adapters.channels import platform_api, render
from connector.channels import ChannelRequest, ChannelResponse
from connector.errors import (
    AuthError,
    ChannelError,
    DeliveryRejected,
    Forbidden,
    MalformedPayload,
)

SIGNATURE_HEADER = "X-Hub-Signature-256"
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_TRACE = re.compile(r"[0-9A-Za-z_.+/=\-]{1,128}")
_LABEL = re.compile(r"[a-z_]{1,32}")

# Graph API error codes (developers.facebook.com/docs/graph-api/guides/error-handling,
# the Messenger and WhatsApp Cloud API error code tables).
RATE_LIMITED = frozenset({4, 17, 32, 613, 80007, 130429, 131056})
TEMPORARY = frozenset({1, 2, 131000, 131016, 131048})
USER_UNAVAILABLE = frozenset({551, 131026})

T = TypeVar("T")


class MetaSettings(BaseModel):
    """What every Meta channel is configured with (secrets as ``${ENV}`` in midtier.yaml)."""

    model_config = ConfigDict(extra="forbid")
    app_secret: str = Field(min_length=1, description="the app's App Secret: signs webhooks")
    verify_token: str = Field(min_length=8, description="what the webhook subscription sends")
    api_base: str = Field(default="https://graph.facebook.com", pattern=r"^https?://[^/?#]+")
    api_version: str = Field(default="v21.0", pattern=r"^v\d{1,3}\.\d{1,3}$")

    @field_validator("api_base")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")


def verify_signature(request: ChannelRequest, app_secret: str) -> None:
    """Check ``X-Hub-Signature-256`` over the raw body; AuthError / Forbidden otherwise."""
    header = request.header(SIGNATURE_HEADER)
    if not header:
        raise AuthError(f"missing {SIGNATURE_HEADER}")
    scheme, _, digest = header.partition("=")
    if scheme != "sha256" or _HEX64.fullmatch(digest) is None:
        raise AuthError(f"{SIGNATURE_HEADER} must be sha256=<64 hex digits>")
    expected = hmac.new(app_secret.encode(), request.body, hashlib.sha256).hexdigest()
    # Bytes, not str: the header was checked to be hex, so both sides are ASCII.
    if not hmac.compare_digest(expected.encode(), digest.lower().encode()):
        raise Forbidden(f"{SIGNATURE_HEADER} does not match the body")


def handshake(request: ChannelRequest, verify_token: str) -> ChannelResponse | None:
    """Answer the subscription GET; None for any other request (the webhook POSTs)."""
    if request.method != "GET":
        return None
    mode = request.query.get("hub.mode", "")
    token = request.query.get("hub.verify_token", "")
    challenge = request.query.get("hub.challenge", "")
    # Query values may hold any code point; compare them as bytes, in constant time.
    matches = hmac.compare_digest(
        token.encode("utf-8", "surrogatepass"), verify_token.encode("utf-8", "surrogatepass")
    )
    if mode != "subscribe" or not matches:
        raise Forbidden("not a webhook subscription with this channel's verify token")
    if (
        not challenge
        or len(challenge) > 256
        or not challenge.isascii()
        or not challenge.isprintable()
    ):
        raise Forbidden("hub.challenge is not a challenge Meta would send")
    return ChannelResponse(
        body=challenge.encode(),
        content_type="text/plain",
        headers={"X-Content-Type-Options": "nosniff"},
    )


def _code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 12:
        return int(value)
    return None


def classify(status: int, body: Any) -> ChannelError | None:
    """A Graph API error body in the outbox's terms; None leaves it to the default mapping
    (5xx and 429 retried, other 4xx refused)."""
    error = body.get("error") if isinstance(body, dict) else None
    if status >= 500 or not isinstance(error, dict):
        return None
    code, subcode = _code(error.get("code")), _code(error.get("error_subcode"))
    reason = f"Graph API error {code}/{subcode}: {platform_api.describe(error.get('message'), 160)}"
    trace = error.get("fbtrace_id")
    if isinstance(trace, str) and _TRACE.fullmatch(trace):
        reason += f" (fbtrace_id {trace})"
    if code in RATE_LIMITED:
        return ChannelError(f"rate limited: {reason}")
    if code in TEMPORARY or error.get("is_transient") is True:
        return ChannelError(f"temporary: {reason}")
    if (code == 10 and subcode == 2018278) or code == 131047:
        return DeliveryRejected(f"outside the 24-hour messaging window: {reason}")
    if code in USER_UNAVAILABLE or (code == 100 and subcode == 2018001):
        return DeliveryRejected(f"the user cannot be reached: {reason}")
    return None


async def graph_post(
    http: aiohttp.ClientSession, url: str, token: str, body: dict[str, Any], what: str
) -> Any:
    """POST ``body`` to the Graph API with the token in the Authorization header (never in
    the URL, which ends up in logs)."""
    return await platform_api.call(
        http,
        "POST",
        url,
        what=what,
        json_body=body,
        headers={"Authorization": f"Bearer {token}"},
        classify=classify,
    )


def split_conversation(conversation: str, what: str) -> tuple[str, str]:
    """``"<business id>:<user id>"`` as its two parts; DeliveryRejected if it is not."""
    business, _, user = conversation.partition(":")
    if not business.isdigit() or not user:
        raise DeliveryRejected(f"conversation id is not {what}")
    return business, user


def numbered_text(text: str, options: list[render.Choice], limit: int) -> str:
    """Choices as a numbered list within ``limit`` characters: the text is cut, not the
    choices (the user needs the numbers to answer)."""
    tail = render.numbered("", options)
    room = limit - len(tail) - 1
    head = render.cut(text, room) if text and room > 0 else ""
    return render.cut(render.numbered(head, options), limit)


def label(name: Any, suffix: str = "") -> str:
    """An event kind named by the platform, fit for a log line (``IgnoredKinds``)."""
    return (name if isinstance(name, str) and _LABEL.fullmatch(name) else "unknown") + suffix


def geo(latitude: float, longitude: float) -> dict[str, Any]:
    """A location as a Bot Framework entity."""
    return {"type": "GeoCoordinates", "latitude": latitude, "longitude": longitude}


class Fields:
    """Typed reads of an untrusted JSON object; each failure names the path."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise MalformedPayload(f"{where} must be an object")
        self.data: dict[str, Any] = data
        self.where = where

    def _get(self, key: str, kind: type[T], required: bool) -> T | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise MalformedPayload(f"{self.where}.{key} is missing")
            return None
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise MalformedPayload(f"{self.where}.{key} must be of type {kind.__name__}")
        return value

    def text(self, key: str) -> str:
        """A required non-empty string."""
        value = self._get(key, str, True)
        if not value:
            raise MalformedPayload(f"{self.where}.{key} must not be empty")
        return value

    def maybe_text(self, key: str) -> str | None:
        return self._get(key, str, False)

    def flag(self, key: str) -> bool:
        return self._get(key, bool, False) is True

    def sub(self, key: str) -> Fields | None:
        """A nested object, or None when absent."""
        value = self.data.get(key)
        return None if value is None else Fields(value, f"{self.where}.{key}")

    def items(self, key: str) -> list[Any]:
        """A list (empty when absent)."""
        return self._get(key, list, False) or []

    def number(self, key: str) -> float:
        value = self.data.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MalformedPayload(f"{self.where}.{key} must be a number")
        if not -1e9 < value < 1e9:
            raise MalformedPayload(f"{self.where}.{key} is out of range")
        return float(value)

    def time(self, key: str) -> datetime:
        """A Unix time, in seconds or milliseconds, as a number or a string of digits
        (Messenger sends milliseconds, WhatsApp seconds as a string)."""
        value = self.data.get(key)
        if isinstance(value, str) and value.isdigit() and len(value) < 16:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MalformedPayload(f"{self.where}.{key} must be a Unix time")
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise MalformedPayload(f"{self.where}.{key} is out of range") from None


def each(values: list[Any], where: str) -> list[Fields]:
    """Every element of a list as :class:`Fields` (each must be an object)."""
    return [Fields(value, f"{where}[{i}]") for i, value in enumerate(values)]
