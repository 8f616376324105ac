"""What a channel adapter sees of a webhook call, and what it may answer.

The core owns every webhook route (``/channels/{name}``): it enforces the size limit, reads
the body whole as bytes, and hands the adapter a :class:`ChannelRequest` (no aiohttp types,
so adapters are tested without a server). The adapter checks the platform's signature over
``body`` exactly as it arrived, parses it, and may shape the acknowledgement with a
:class:`ChannelResponse` (Slack's challenge, Twilio's empty TwiML, Bot Framework's 201).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from connector.errors import MalformedPayload
from connector.payloads import parse_content_type, parse_form, parse_json

log = logging.getLogger("midtier.channels")


@dataclass(frozen=True, slots=True)
class ChannelRequest:
    """One webhook call as the platform made it.

    ``url`` is the public URL the platform called, query string included (midtier's
    ``public_url`` plus the path), which is what Twilio signs. ``headers`` compare their
    names case-insensitively. ``body`` is the raw bytes, never re-serialised: every HMAC is
    over them.
    """

    method: str
    url: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    content_type: str = ""

    def header(self, name: str) -> str:
        """A header's value, or "" when absent."""
        return self.headers.get(name, "")

    def json(self) -> Any:
        """The body as JSON (bounded nesting, strict decoding); ``MalformedPayload`` if not."""
        return parse_json(self.body, _charset(self.content_type))

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; ``MalformedPayload`` for anything else."""
        data = self.json()
        if not isinstance(data, dict):
            raise MalformedPayload("body must be a JSON object")
        return data

    def form(self) -> dict[str, str]:
        """The body as an ``application/x-www-form-urlencoded`` form, decoded strictly."""
        return parse_form(self.body, _charset(self.content_type))


# A platform sends the same Content-Type on every call: parsed once, not once per webhook.
# (A malformed one raises, which is not cached, so it is refused every time.)
@lru_cache(maxsize=64)
def _charset(content_type: str) -> str | None:
    return parse_content_type(content_type or None).charset


@dataclass(frozen=True, slots=True)
class ChannelResponse:
    """The answer to a webhook call, when the platform wants more than ``200 {}``."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of_json(cls, data: Any, status: int = 200) -> ChannelResponse:
        return cls(status=status, body=json.dumps(data).encode())

    @classmethod
    def of_text(
        cls, text: str, status: int = 200, content_type: str = "text/plain"
    ) -> ChannelResponse:
        return cls(status=status, body=text.encode(), content_type=content_type)


OK = ChannelResponse.of_json({})


class IgnoredKinds:
    """Logs an unsupported event kind once per adapter, not once per webhook call (platforms
    send receipts and reactions by the thousand)."""

    def __init__(self, channel: str) -> None:
        self._channel = channel
        self._seen: set[str] = set()

    def __call__(self, kind: str) -> None:
        kind = kind[:64]
        if kind in self._seen or len(self._seen) > 256:
            return
        self._seen.add(kind)
        log.info(
            "channel %s ignores %s events",
            self._channel,
            kind,
            extra={"event": "ignored_kind", "channel": self._channel},
        )
