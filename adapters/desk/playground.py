"""The routing playground beside the agent desk: its page, and the gate of its questions.

Conversation designers try messages at ``/agent/playground`` and see what the running
server's router would do with them (``POST /routing/explain``, :mod:`connector.app.playground`).
The desk's tokens let them in, checked as the desk's sign-in checks them and counted by the
same throttle: wrong tokens from one address here and on ``/agent/ws`` add up, and an
address refused on one is refused on the other. A token that lets a request in is answered
with a signed desk session as well, which the page keeps (in the tab's session storage, as
the desk page does) and sends instead of the token from then on.
"""

from __future__ import annotations

import asyncio
import logging
import math

from aiohttp import web

from adapters.desk.signin import DeskSignIn, NameReserved, SessionExpired, SignInRefused
from adapters.desk.throttle import SignInThrottle
from adapters.pages import page_handler
from connector.app.playground import offer_gate
from connector.errors import AuthError, Forbidden, TooManyAttempts

log = logging.getLogger("midtier.agent_desk")

# Who a shared-token session of the playground says it is (it never speaks to customers).
PLAYGROUND_NAME = "Routing playground"
MISSING = "missing agent token: send Authorization: Bearer <the desk token or your own>"


class DeskGate:
    """Lets in the bearers of the desk's tokens and sessions; slows down and then refuses
    addresses that keep guessing (a :class:`connector.interfaces.ExplainGate`)."""

    def __init__(self, signin: DeskSignIn, throttle: SignInThrottle) -> None:
        self._signin = signin
        self._throttle = throttle

    async def admit(self, credential: str | None, address: str) -> str | None:
        """See ``ExplainGate.admit``: a fresh signed session when a token let the request
        in, None when a session did."""
        wait = self._throttle.blocked(address)
        if wait is not None:
            seconds = math.ceil(wait)
            log.warning("routing playground request from %s refused: too many failures", address)
            raise TooManyAttempts(
                f"too many failed sign-ins; try again in {seconds} s", retry_after=seconds
            )
        if credential is None:
            raise AuthError(MISSING)  # not a guess: nothing was tried
        try:
            identity = self._signin.bearer(credential, PLAYGROUND_NAME)
        except SessionExpired as exc:
            raise AuthError(f"{exc} (enter the token again)") from None
        except SignInRefused:
            delay = self._throttle.failed(address)
            log.warning("routing playground request from %s refused: invalid token", address)
            if delay:
                await asyncio.sleep(delay)  # slows guessing; other requests are not held up
            raise AuthError("invalid agent token or session") from None
        except NameReserved as exc:
            raise Forbidden(str(exc)) from None
        return None if identity.session == credential else identity.session


def mount_playground(
    app: web.Application, path: str, signin: DeskSignIn, throttle: SignInThrottle
) -> None:
    """Serve the playground's page at ``path`` and guard ``POST /routing/explain``."""
    offer_gate(app, DeskGate(signin, throttle))
    app.router.add_get(path, page_handler("adapters.providers", "playground.html", framable=False))
