"""``midtier.yaml: continuation``: moving a live session to another channel (see
:mod:`connector.continuation`). Plain pydantic models, validated with the rest of the config.

::

    continuation:
      code_ttl_s: 600
      channels:
        webchat: {title: web chat}
        whatsapp: {title: WhatsApp, link: "https://wa.me/15551234567?text={code}"}
        telegram: {title: Telegram, link: "https://t.me/acme_pay_bot?start={code}"}
"""

from __future__ import annotations

import re
import string
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_SPACES = re.compile(r"\s+")


def normalize_phrase(text: str) -> str:
    """How a user's words compare to a command: lower case, single spaces, no end mark."""
    return _SPACES.sub(" ", text.strip().lower()).rstrip(".!?")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


class ContinuationChannel(_Strict):
    """How one channel is offered as a place to continue."""

    title: str | None = Field(default=None, description="how users call it: 'WhatsApp'")
    # Opens the app with the code typed in, e.g. https://wa.me/15551234567?text={code} or
    # https://t.me/<bot>?start={code}; without {code}, the user types the code themselves.
    link: str | None = None

    @field_validator("link")
    @classmethod
    def _link(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError("a link must be an https:// (or http://) URL")
        if _placeholders(value) - {"code"}:
            raise ValueError("a link may only use the placeholder {code}")
        return value


class ContinuationNotices(_Strict):
    """What midtier says about continuing; ``{...}`` are filled in as named."""

    offer: str = (
        "To continue this conversation on another channel, send this code there within "
        "{minutes} minutes: {code}."
    )
    offer_move: str = (
        "{title} can help you with this on {channels}. To continue there, send this code "
        "within {minutes} minutes: {code}. Or just keep writing here."
    )
    offer_link: str = "Or open {link} to continue in another app."
    continued_here: str = "You're continuing your conversation from {channel}."
    continued_elsewhere: str = (
        "This conversation continues on {channel}. If you write here again, you start a new "
        "conversation."
    )
    identity_offer: str = (
        "Continue your conversation from {channel}? Reply YES, or just tell me what you need."
    )
    wrong_code: str = (
        "That code is not valid or has expired. Ask for a new one where your conversation is."
    )
    throttled: str = "Too many wrong codes. Please wait a few minutes before you try again."
    same_conversation: str = (
        "This code continues this conversation somewhere else: send it on the other channel."
    )
    ended: str = "That conversation has ended and cannot continue here; this is a new one."

    @model_validator(mode="after")
    def _known_placeholders(self) -> ContinuationNotices:
        allowed = {
            "offer": {"code", "minutes"},
            "offer_move": {"title", "channels", "code", "minutes"},
            "offer_link": {"link"},
            "continued_here": {"channel"},
            "continued_elsewhere": {"channel"},
            "identity_offer": {"channel"},
        }
        for name in type(self).model_fields:
            try:
                used = _placeholders(getattr(self, name))
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
            unknown = used - allowed.get(name, set())
            if unknown:
                raise ValueError(f"{name}: unknown placeholder(s) {sorted(unknown)}")
        return self


class ContinuationSettings(_Strict):
    """A live session may move to another channel with a one-time code, a link, or an
    identity that platforms proved on both channels."""

    enabled: bool = True
    code_ttl_s: float = Field(default=600, gt=0, le=3600)
    # What a user says to get a code (compared after normalize_phrase).
    commands: list[str] = Field(
        default_factory=lambda: ["/continue", "continue on another channel"]
    )
    # What accepts an offer to continue a conversation found by identity.
    yes: list[str] = Field(default_factory=lambda: ["yes", "y"])
    # Wrong codes allowed per channel conversation, and in all, within the window.
    max_wrong_per_conversation: int = Field(default=5, gt=0)
    max_wrong_overall: int = Field(default=100, gt=0)
    throttle_window_s: float = Field(default=900, gt=0)
    # The page behind ``<public url>/continue#<token>`` ("module:Class"); None: no link form.
    page: str | None = "adapters.channels.continuation_page:ContinuationPage"
    channels: dict[str, ContinuationChannel] = Field(default_factory=dict)
    notices: ContinuationNotices = Field(default_factory=ContinuationNotices)

    @field_validator("commands", "yes")
    @classmethod
    def _phrases(cls, value: list[str]) -> list[str]:
        out = [normalize_phrase(v) for v in value]
        if any(not v for v in out):
            raise ValueError("phrases must not be empty")
        return out

    def title(self, channel: str) -> str:
        """How users call ``channel`` (its configured title, else its name)."""
        found = self.channels.get(channel)
        return (found.title if found else None) or channel

    def reachable(self, configured: Any) -> list[str]:
        """The configured channels a conversation may move to (none when disabled)."""
        return list(configured) if self.enabled else []

    def check_channels(self, configured: Any) -> list[str]:
        """Names under ``channels`` that are not configured channels."""
        return [name for name in self.channels if name not in configured]
