"""The core, assembled from its parts, and its channel side.

``submit`` records a user's activity (:mod:`connector.inbound`) and returns once it is
recorded, which is when the channel may acknowledge it; a worker per channel conversation
then processes the records in order, each as one unit of work (:mod:`connector.work`) under
the session's lock: continuation codes and offers first (:mod:`connector.continuation`),
then :mod:`connector.messages` reads the intent, routes, switches if needed and delivers to
the provider, whose replies are queued for the outbox; all of it is committed with the
record. The provider side (``ProviderHost``: ``provider_activity``, ``hand_back``,
``transfer``, handoff requests and statuses) lives in :mod:`connector.hosting` and takes the
same per-session lock, so provider events and user messages of one session never interleave.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from connector.activity import Activity, ActivityTypes
from connector.auth import AuthCodes
from connector.channel_protocol import ChannelAdapter
from connector.claims import merge_claims
from connector.config import Config
from connector.continuation import Continuation, Then
from connector.errors import ConflictError, NotFound, RepeatedMessage
from connector.expiry import expire_idle
from connector.handoff import Switcher
from connector.hosting import Host, Understanding
from connector.inbound import Unrecorded, UserInbound, inbound_entry
from connector.interfaces import IntentClassifier, SessionStore
from connector.locks import LocalLocks
from connector.messages import UserMessages
from connector.outbox import Outbox
from connector.pool import ProviderPool
from connector.provider_protocol import Provider
from connector.records import InboundEntry
from connector.relay import Relay
from connector.routing.policy import Router
from connector.sessions import DeliveryFailure, MidTierSession, Speaker, TranscriptEntry
from connector.store.common import open_leg_of, user_entry
from connector.to_user import ADDRESS, ToUser
from connector.work import Turn, Turns

log = logging.getLogger("midtier.engine")


class Engine:
    """The core, assembled from its parts, and its channel side.

    The parts stand alone: the provider pool (:mod:`connector.pool`), the units of work
    (:class:`connector.work.Turns`), the switcher (:mod:`connector.handoff`), the relay that
    acts on what providers send (:mod:`connector.relay`), what goes to the user
    (:mod:`connector.to_user`) through the outbox, the durable inbound, and the provider side
    (``host``, :class:`connector.hosting.Host`, which providers are given).
    """

    def __init__(
        self,
        config: Config,
        store: SessionStore,
        classifier: IntentClassifier,
        channels: dict[str, ChannelAdapter],
        providers: dict[str, Provider],
        *,
        token_url: str = "",
    ) -> None:
        self.config = config
        self.store = store
        self.understanding = Understanding(classifier)
        self.channels = channels
        self.providers = providers
        mid = config.midtier
        self.outbox = Outbox(store, channels, mid.outbox, on_failure=self._delivery_failed)
        self.turns = Turns(store, LocalLocks(), self.outbox.dispatch)
        self.turn = self.turns.turn
        self.locks = self.turns.locks
        self.auth = AuthCodes(store, mid.auth.code_ttl_s)
        self.pool = ProviderPool(config, providers)
        self.router = Router(
            config.routing,
            unavailable=self.pool.unavailable,
            open_legs=self.pool.open_legs,
            reachable=mid.continuation.reachable(mid.channels),
        )
        self.to_user = ToUser(
            self.outbox,
            system_name=mid.title,
            title=self.pool.title,
            speaker=self.speaker,
            midtier_voice=self.pool.speaks_for_midtier,
        )
        lines = mid.session.handoff_transcript
        sticky = self.router.is_sticky
        self.switcher = Switcher(
            self.pool,
            self.auth,
            self.to_user,
            is_sticky=sticky,
            transcript_lines=lines,
            token_url=token_url,
        )
        self.relay = Relay(
            self.pool,
            self.switcher,
            self.to_user,
            is_sticky=sticky,
            providers_for=self.router.providers_for,
            fallback=config.routing.fallback,
            notices=mid.notices,
        )
        self.host = Host(
            config,
            store,
            self.turns,
            self.pool,
            self.switcher,
            self.relay,
            self.to_user,
            self.auth,
            self.router,
            self.understanding,
        )
        self.inbox = self.host.inbox
        self.inbound = UserInbound(
            store, self._process, mid.session.dedupe_ttl_s, ack_within_s=mid.session.ack_within_s
        )
        self.token_url = token_url
        self.public_url = token_url.removesuffix("/auth/token")
        self.data_dir = Path("data")
        self.messages = UserMessages(
            config,
            self.understanding,
            self.router,
            self.switcher,
            self.relay,
            self.to_user,
            offer_move=lambda turn, decision, activity: self.continuation.offer_move(
                turn, decision, activity
            ),
        )
        self.continuation = Continuation(self, self.messages.handle)

    def speaker(self, provider: str) -> Speaker:
        return "agent" if self.router.is_sticky(provider) else "bot"

    def notify(self, turn: Turn, text: str) -> None:
        """Tell the user something in midtier's own voice."""
        self.to_user.notify(turn, text)

    async def expire_idle(self) -> int:
        """Close sessions idle longer than ``session.idle_timeout_s``; return how many."""
        timeout = self.config.midtier.session.idle_timeout_s
        return await expire_idle(self.store, self.turns, self.pool, timeout)

    async def _delivery_failed(self, session_id: str, failure: DeliveryFailure) -> None:
        """Keep a reply that never reached the user on its session, in a unit of work."""
        try:
            async with self.turn(session_id) as turn:
                # Kept on the session and out of the outbox at once: nobody sees it as both.
                turn.outbox_finished(failure.activity_id)
                if not turn.session.record_failure(failure):
                    turn.abandon()  # recorded before a crash, tried once more since
        except NotFound:
            log.warning("a reply of a session that no longer exists failed: %s", failure.reason)

    # ------------------------------------------------------------------ channel side

    async def submit(
        self,
        channel: str,
        activity: Activity,
        *,
        claims: dict[str, Any] | None = None,
        ref: str | None = None,
        channel_state: dict[str, Any] | None = None,
        address: dict[str, Any] | None = None,
    ) -> InboundEntry | None:
        """Record a user's activity; once this returns the channel may acknowledge it.

        Returns the record (None: a repeat of ``ref``, already recorded). Raises
        ``MalformedPayload`` for an activity midtier cannot take. ``address`` is what a
        reply needs besides the conversation id; the newest one is kept on the session.
        """
        limit = self.config.midtier.limits.max_text_chars
        entry = inbound_entry(
            channel,
            activity,
            limit,
            claims=claims,
            ref=ref,
            channel_state=channel_state,
            address=address,
        )
        return await self.inbound.record(entry)

    async def receive(
        self, channel: str, activity: Activity, *, claims: dict[str, Any] | None = None
    ) -> MidTierSession | None:
        """Record a user's activity (``activity.id`` is the channel's id) and wait until it
        has been processed and its replies were tried. Returns the session (None for a
        repeat)."""
        limit = self.config.midtier.limits.max_text_chars
        entry = inbound_entry(channel, activity, limit, claims=claims, ref=activity.id)
        session = await self.inbound.receive(entry)
        await self.outbox.settled(channel, entry.conversation)
        return session

    async def set_channel_state(self, session_id: str, values: dict[str, Any]) -> None:
        """Change channel-owned state of a session (e.g. a new resume secret's hash)."""
        async with self.turn(session_id) as turn:
            turn.session.channel_state.update(values)

    async def signal_user(self, channel: str, conversation: str, activity: Activity) -> None:
        """A passing signal from the user (``typing``): given to a person on the desk, not
        recorded. Bots are not told."""
        session = await self.store.by_channel(channel, conversation)
        leg = session.current_leg if session is not None else None
        if leg is None or session is None or session.status != "active":
            return
        if not self.router.is_sticky(leg.provider):
            return
        await self.pool.signal(leg, activity)

    async def _process(
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
        async with self.turn(entry.session_id) as turn:
            turn.consumed_inbound(entry.id)
            self.notify(turn, self.config.midtier.notices.provider_failed)
        return None

    async def _process_once(
        self, entry: InboundEntry, unrecorded: Unrecorded | None
    ) -> MidTierSession | None:
        activity = Activity.from_wire(entry.activity)
        async with self.turn(entry.session_id) as turn:
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
            return await self._process(recorded) if recorded is not None else None
        # Closed (expired) between recording and now: the message opens a new session,
        # which gets its transcript line here.
        fresh, _ = await self.store.find_or_create(entry.channel, entry.conversation, entry.user_id)
        async with self.turn(fresh.id) as turn:
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
        if leg is not None and not self.pool.runs_in_process(leg.provider):
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
            session.claims = merge_claims(session.claims, entry.claims)
        if here and entry.address is not None:
            session.channel_state[ADDRESS] = entry.address
        if not session.legs:
            log.info("session opened", extra={"event": "session_opened", "channel": entry.channel})
        then = await self.continuation.intercept(turn, entry, activity) if here else None
        if then is None:
            await self.messages.handle(turn, activity)
        turn.consumed_inbound(entry.id)
        return then
