"""Waiting for a leg that is being opened: a provider may call back (or a bot in the process
start a proactive turn) before the commit that saves its leg is done."""

from __future__ import annotations

import asyncio
import time

from connector.errors import NotFound
from connector.sessions import MidTierSession
from connector.store_protocol import SessionMap

OPENING_POLL_S = 0.02  # how often a look-up waiting for a leg being opened tries again


async def wait_for_leg(
    sessions: SessionMap, provider: str, conversation: str, within_s: float
) -> MidTierSession:
    """The session that has ``provider``'s ``conversation``, once one has (``NotFound``
    after ``within_s``): a provider may call back while its leg is still being opened, not
    yet saved."""
    deadline = time.monotonic() + within_s
    while (found := await sessions.by_provider(provider, conversation)) is None:
        if time.monotonic() > deadline:
            raise NotFound(f"no conversation {conversation!r} of {provider!r}")
        await asyncio.sleep(OPENING_POLL_S)  # bounded by the provider's timeout
    return found
