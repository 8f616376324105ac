"""What the channel contract suite needs to know of each webhook channel: a kit per kind.

A kit builds the channel's settings against a fake platform, signs a webhook exactly as the
platform does (with the platform's own SDK where it has one), forges one, and reads back
the replies midtier sent through the platform's API. Every webhook kind in
``adapters.channels.REGISTRY`` must have a kit in ``KITS``: the contract suite fails for a
channel without one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from support.fake_platform import FakePlatform


@dataclass(frozen=True)
class WebhookCall:
    """One webhook request as the platform would make it (to ``/channels/<name>``)."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"
    query: str = ""  # e.g. "?hub.mode=subscribe&..." (without the path)

    def with_body(self, body: bytes) -> WebhookCall:
        """The same headers (signature included) over another body."""
        return replace(self, body=body)


@dataclass(frozen=True)
class Reply:
    """Something midtier sent through the platform's API."""

    conversation: str  # the platform's chat / channel / recipient the reply went to
    text: str
    call_index: int  # position in ``platform.calls``


class ChannelKit(Protocol):
    """How the suite drives one kind of webhook channel."""

    kind: str
    # Environment variables the settings refer to (secrets: never in config files).
    env: dict[str, str]
    # The settings key holding a secret (for the "missing secret" check), e.g. "app_secret".
    secret_key: str
    # Whether a body cut short still passes verification (a static secret, not an HMAC of
    # the body: Telegram). Such a body must then be a 400.
    signs_body: bool

    def settings(self, api_base: str) -> dict[str, Any]:
        """The ``channels.<name>`` block of midtier.yaml, its API base at the fake platform,
        secrets written as ``${ENV}``."""
        ...

    def prepare(self, platform: FakePlatform) -> None:
        """Give the fake platform the routes midtier calls to send (documented answers)."""

    def message(self, url: str, text: str, *, user: str, message_id: str) -> WebhookCall:
        """A user's text message, signed for ``url`` (the full public webhook URL)."""
        ...

    def forged(self, call: WebhookCall) -> WebhookCall:
        """``call`` with a signature that does not verify (wrong secret)."""
        ...

    def sign_body(self, url: str, body: bytes) -> WebhookCall:
        """Any body (garbage included), signed as the platform signs: for the fuzzers."""
        ...

    def replies(self, platform: FakePlatform) -> list[Reply]:
        """What midtier sent to users through the platform's API, oldest first (messages,
        not typing indicators)."""
        ...


def _lazy(path: str) -> Callable[[], ChannelKit]:
    """A factory that imports ``"module:Class"`` only when a kit is wanted."""

    def make() -> ChannelKit:
        module, _, name = path.partition(":")
        kit: ChannelKit = getattr(importlib.import_module(module), name)()
        return kit

    return make


# kind -> a factory of its kit; one line per webhook channel.
KITS: dict[str, Callable[[], ChannelKit]] = {
    "botframework": _lazy("support.channel_kits.botframework:BotFrameworkKit"),
    "messenger": _lazy("support.channel_kits.messenger:Kit"),
    "slack": _lazy("support.channel_kits.slack:SlackKit"),
    "telegram": _lazy("support.channel_kits.telegram:TelegramKit"),
    "twilio": _lazy("support.channel_kits.twilio:TwilioKit"),
    "whatsapp": _lazy("support.channel_kits.whatsapp:Kit"),
}
