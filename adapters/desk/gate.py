"""The desk socket before sign-in: one ``auth`` frame within a deadline, or the socket closes.

Close codes (each after an ``error`` frame saying why, except the deadline):

    4401  unauthorized: wrong or missing token, invalid or expired session, reserved name,
          or a first frame that is not ``auth``
    4408  no ``auth`` frame within ``sign_in.timeout_s``
    4429  too many wrong tokens from this address; try again after the cool-down
    1008  the first frame is not a JSON object with a ``type``
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from adapters.desk.signin import (
    AgentIdentity,
    DeskSignIn,
    NameReserved,
    SessionExpired,
    SignInRefused,
)
from adapters.desk.throttle import SignInThrottle
from adapters.pages import parse_frame, send_error

log = logging.getLogger("midtier.agent_desk")

UNAUTHORIZED = 4401
TIMED_OUT = 4408
TOO_MANY = 4429


async def _refuse(
    ws: web.WebSocketResponse, close: int, code: str, reason: str, **extra: Any
) -> None:
    await send_error(ws, code, reason, **extra)
    await ws.close(code=close, message=code.encode())


async def sign_in(
    ws: web.WebSocketResponse,
    address: str,
    signin: DeskSignIn,
    throttle: SignInThrottle,
    timeout_s: float,
) -> AgentIdentity | None:
    """The agent this socket signed in as, or None once the socket is closed."""
    try:
        # One deadline for the whole wait: ws.receive(timeout=...) restarts its clock at every
        # ping, so a client that only pings would never be closed.
        async with asyncio.timeout(timeout_s):
            msg = await ws.receive()
    except TimeoutError:
        await ws.close(code=TIMED_OUT, message=b"no sign-in before the deadline")
        return None
    if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
        return None
    frame, _problem = parse_frame(msg)
    if frame is None:
        await _refuse(
            ws,
            WSCloseCode.POLICY_VIOLATION,
            "malformed_frame",
            "the first frame must be a JSON auth frame",
        )
        return None
    if frame["type"] != "auth":
        await _refuse(ws, UNAUTHORIZED, "unauthorized", "invalid or missing agent token")
        return None
    wait = throttle.blocked(address)
    if wait is not None:
        seconds = math.ceil(wait)
        log.warning("agent desk sign-in from %s refused: too many failures", address)
        await _refuse(
            ws,
            TOO_MANY,
            "too_many_attempts",
            f"too many failed sign-ins; try again in {seconds} s",
            retry_after=seconds,
        )
        return None
    try:
        return signin.sign_in(frame)
    except SessionExpired as exc:
        await _refuse(ws, UNAUTHORIZED, SessionExpired.code, str(exc))
    except SignInRefused as exc:
        delay = throttle.failed(address)
        log.warning("agent desk sign-in from %s refused: %s", address, exc)
        if delay:
            await asyncio.sleep(delay)  # slows guessing; other sockets are not held up
        await _refuse(ws, UNAUTHORIZED, SignInRefused.code, str(exc))
    except NameReserved as exc:
        await _refuse(ws, UNAUTHORIZED, NameReserved.code, str(exc))
    return None
