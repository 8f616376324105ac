"""Who may resume a web chat conversation (see :mod:`.webchat_socket`).

A new conversation gets a public id (``wc_...``, the channel conversation id) and a resume
token ``<id>.<secret>``: 256 random bits that only the page holds. midtier stores only the
secret's SHA-256 in the session's channel state (``RESUME_KEY``), never logs it and never
sends it to a provider; a ``rotate`` frame replaces it (other tabs then start over). Saying
hello with a conversation id, or anything that left midtier, resumes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from connector.sessions import MidTierSession
from connector.store_protocol import SessionMap

RESUME_KEY = "webchat_resume_sha256"  # in the session's channel state


def resume_digest(secret: str) -> str:
    """What is stored of a resume secret: its SHA-256 (the secret is 256 random bits)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_token(conversation: str) -> tuple[str, str]:
    """A fresh resume token for ``conversation`` (for the page) and its digest (to store)."""
    secret = secrets.token_urlsafe(32)
    return f"{conversation}.{secret}", resume_digest(secret)


async def resumed(
    sessions: SessionMap, channel: str, token: object
) -> tuple[MidTierSession, str] | None:
    """The session a resume token opens and its stored digest (None: it opens none; the
    session may be closed)."""
    conversation, _, secret = (token if isinstance(token, str) else "").partition(".")
    if not conversation or not secret:
        return None
    session = await sessions.by_channel(channel, conversation)
    known = session.channel_state.get(RESUME_KEY) if session is not None else None
    if session is None or not isinstance(known, str):
        return None
    if not hmac.compare_digest(known, resume_digest(secret)):
        return None
    return session, known
