"""What one user activity does once taken from the durable inbound: a unit of work on its
session, continuation codes and offers first (:mod:`connector.continuation`), then
:mod:`connector.messages`; retried once when the session changed under it, and told to the
user plainly when it cannot be processed. An activity taken before it was recorded
(:class:`connector.unrecorded.Unrecorded`) has its record carried by that unit of work's commit
when the session's provider runs in this process, and is recorded first otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from connector.activity import Activity, ActivityTypes
from connector.claims import merge_claims
from connector.config import Config
from connector.continuation_move import Then
from connector.errors import ConflictError, RepeatedMessage
from connector.pool import ProviderPool
from connector.records import InboundEntry
from connector.sessions import MidTierSession, TranscriptEntry
from connector.store.common import open_leg_of, user_entry
from connector.store_protocol import SessionMap
from connector.to_user import ADDRESS, ToUser
from connector.unrecorded import Unrecorded
from connector.work import Turn, Turns

log = logging.getLogger("midtier.engine")

Handle = Callable[[Turn, Activity], Awaitable[None]]
Intercept = Callable[[Turn, InboundEntry, Activity], Awaitable[Then | None]]


class UserActivities:
    """Processes user activities, each in a unit of work of its session.

    ``handle`` is what a message does (``UserMessages.handle``), ``intercept`` what
    continuation takes before it (``Continuation.intercept``).
    """

    def __init__(
        self,
        config: Config,
        sessions: SessionMap,
        turns: Turns,
        pool: ProviderPool,
        to_user: ToUser,
        handle: Handle,
        intercept: Intercept,
    ) -> None:
        self._notices = config.midtier.notices
        self._sessions = sessions
        self._turns = turns
        self._pool = pool
        self._to_user = to_user
        self._handle = handle
        self._intercept = intercept

    async def process(
        self, entry: InboundEntry, unrecorded: Unrecorded | None = None
    ) -> MidTierSession | None:
        """Process one user activity; it leaves the store with what it caused (its record,
        if ``unrecorded``, goes in with it)."""
        for attempt in (1, 2):
            try:
                return await self._process_once(entry, unrecorded)
            except ConflictError:  # the session changed under us: read it again, once
                failed = attempt == 2
            except RepeatedMessage:  # recording it found it a repeat (below: None)
                failed = True
            except Exception:
                log.exception("a user message could not be processed")
                failed = True
            if unrecorded is not None:  # from here on as if it had been recorded first
                recorded = await unrecorded.record()
                if recorded is None:
                    return None
                entry, unrecorded = recorded, None
            if failed:
                break
        # Not lost silently and not retried for ever: the user hears that it failed.
        async with self._turns.turn(entry.session_id) as turn:
            turn.consumed_inbound(entry.id)
            self._to_user.notify(turn, self._notices.provider_failed)
        return None

    async def _process_once(
        self, entry: InboundEntry, unrecorded: Unrecorded | None
    ) -> MidTierSession | None:
        parsed = None
        if unrecorded is not None:  # once: a second attempt starts from the record
            parsed, unrecorded.activity = unrecorded.activity, None
        activity = parsed if parsed is not None else Activity.from_wire(entry.activity)
        async with self._turns.turn(entry.session_id) as turn:
            active = turn.session.status == "active"
            if active and unrecorded is not None:
                await self._carry(turn, unrecorded)
            then = await self._process_in(turn, entry, activity) if active else None
            if not active:
                turn.abandon()
        if active:  # a step left for after the commit: the session moves (continuation)
            return await then() if then is not None else turn.session
        if unrecorded is not None:  # recorded now, it goes to the conversation's new session
            recorded = await unrecorded.record()
            return await self.process(recorded) if recorded is not None else None
        # Closed (expired) between recording and now: the message opens a new session,
        # which gets its transcript line here.
        fresh, _ = await self._sessions.find_or_create(
            entry.channel, entry.conversation, entry.user_id
        )
        async with self._turns.turn(fresh.id) as turn:
            if activity.type == ActivityTypes.MESSAGE:
                turn.record(
                    TranscriptEntry(
                        speaker="user", text=activity.text, activity=entry.activity, ref=entry.ref
                    )
                )
            then = await self._process_in(turn, entry, activity)
        return await then() if then is not None else turn.session

    async def _carry(self, turn: Turn, unrecorded: Unrecorded) -> None:
        """Let ``turn`` commit ``unrecorded``'s record with the rest, if the session's provider
        runs in this process; else record it now: a provider outside is given only recorded
        messages (after a crash, the same message with the same id)."""
        leg = turn.session.current_leg
        if leg is not None and not self._pool.runs_in_process(leg.provider):
            if await unrecorded.record() is None:
                raise RepeatedMessage("the message repeats one recorded meanwhile")
            return
        # A session without an open leg gets one through a switch, which records it first.
        unrecorded.line = user_entry(unrecorded.entry, open_leg_of(turn.session))
        turn.unrecorded = unrecorded

    async def _process_in(self, turn: Turn, entry: InboundEntry, activity: Activity) -> Then | None:
        """Process ``entry`` in ``turn``; the record leaves with the turn's commit. A step
        returned is to be taken after that commit (see ``Continuation.intercept``)."""
        session = turn.session
        # A message recorded on a channel the session has since left is answered where the
        # session is now; what that channel says of the user or its address is not taken.
        here = (entry.channel, entry.conversation) == session.channel_key
        if here and entry.claims is not None:
            merged = merge_claims(session.claims, entry.claims)
            if merged is not session.claims:
                session.claims = merged
        if here and entry.address is not None:
            session.channel_state[ADDRESS] = entry.address
        if not session.legs:
            log.info("session opened", extra={"event": "session_opened", "channel": entry.channel})
        then = await self._intercept(turn, entry, activity) if here else None
        if then is None:
            await self._handle(turn, activity)
        turn.consumed_inbound(entry.id)
        return then
