"""The sections of ``midtier.yaml`` besides channels' own settings: notices, session,
limits, auth codes, outbox and store, and how an allowed origin is written. Assembled (and
re-exported) by :mod:`connector.config`.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelConfig(BaseModel):
    """One channel. ``kind`` names an adapter; the other keys belong to that adapter."""

    model_config = ConfigDict(extra="allow")
    kind: str


class Notices(_Strict):
    """What the user is told. ``{title}`` is the target provider's title."""

    switch: str = "One moment, I'm passing you to {title}. You can keep typing."
    hand_back: str = "You're back with {title}. Anything else I can help with?"
    unavailable: str = (
        "Sorry, nobody can take this conversation right now. "
        "Your messages are saved; please try again in a little while."
    )
    provider_failed: str = "Sorry, something went wrong on our side. Let me get you some help."
    # The question above the choices when routing asks the user (next best action ``ask``).
    choose: str = "I want to get this to the right place. Which of these is it about?"


class SessionSettings(_Strict):
    idle_timeout_s: float = Field(default=24 * 3600, gt=0)
    handoff_transcript: int = Field(default=50, ge=0, description="entries passed on a switch")
    dedupe_ttl_s: float = Field(default=24 * 3600, gt=0)
    # A bot that has not answered a message within this long shows the user it is typing
    # (0: at once, before every answer). A bot that answers sooner needs no indicator, and
    # on webhook channels each one is an extra call to the platform.
    typing_after_s: float = Field(default=0.5, ge=0, le=60)
    # A message processed (its bot's answer included) within this long is recorded with what
    # it caused, in one transaction, and acknowledged after that; a slower one is recorded on
    # its own at this point and acknowledged while its processing goes on (0: always so).
    ack_within_s: float = Field(default=0.05, ge=0, le=5)


class Limits(_Strict):
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    max_text_chars: int = Field(default=4000, gt=0)


class AuthSettings(_Strict):
    code_ttl_s: float = Field(default=120, gt=0, le=3600)


class OutboxSettings(_Strict):
    """How replies that a platform did not take are retried (``connector.outbox``).

    Our own backoff doubles from ``first_backoff_s`` up to ``max_backoff_s``, with jitter;
    a wait the platform asks for (``Retry-After``) is always honoured, however long. A reply
    still not taken ``give_up_after_s`` after it was written is given up and recorded on its
    session. Replies parked because nobody is connected (a closed web chat tab) are kept
    until their session closes instead.
    """

    give_up_after_s: float = Field(default=24 * 3600, gt=0)
    first_backoff_s: float = Field(default=1.0, gt=0)
    max_backoff_s: float = Field(default=300.0, gt=0)
    # Conversations of one channel retried at once: a platform that hangs holds at most
    # this many retries, and the other channels' retries go on beside them.
    retry_concurrency: int = Field(default=8, gt=0, le=1000)


class StoreSettings(_Strict):
    """The embedded SQLite store. ``normal``: a commit survives the process being killed;
    ``full``: also a power cut or an OS crash, at the cost of an fsync per commit.
    ``commit_window_ms``: with ``normal``, how long a group commit waits for the writes of
    other conversations to join it (0: only those of the same turn of the event loop)."""

    synchronous: Literal["normal", "full"] = "normal"
    commit_window_ms: float = Field(default=1.0, ge=0, le=50)


def normalize_origin(value: str) -> str | None:
    """``scheme://host[:port]`` in lower case without a default port; None if not an origin.

    Browsers send ``Origin`` in this form; config entries are normalized the same way so that
    ``https://Desk.example.com:443/`` and ``https://desk.example.com`` compare equal.
    """
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")
