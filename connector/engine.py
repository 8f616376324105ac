"""The core, assembled from its parts, and its channel side.

``submit`` records a user's activity (:mod:`connector.inbound`) and returns once it is
recorded, which is when the channel may acknowledge it; a worker per channel conversation
then processes the records in order (:mod:`connector.processing`), each as one unit of work
(:mod:`connector.work`) under the session's lock: continuation codes and offers first
(:mod:`connector.continuation`),
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

from connector.activity import Activity
from connector.auth import AuthCodes
from connector.channel_protocol import ChannelAdapter
from connector.config import Config
from connector.continuation import Continuation
from connector.errors import NotFound
from connector.expiry import expire_idle
from connector.handoff import Switcher
from connector.hosting import Host, Understanding
from connector.inbound import UserInbound, inbound_entry
from connector.interfaces import IntentClassifier, SessionStore
from connector.locks import LocalLocks
from connector.messages import UserMessages
from connector.outbox import Outbox
from connector.outcomes import SuccessRates, record
from connector.pool import ProviderPool
from connector.processing import UserActivities
from connector.provider_protocol import Provider
from connector.records import InboundEntry, Verdict
from connector.relay import Relay
from connector.routing.policy import Router
from connector.sessions import DeliveryFailure, MidTierSession, Speaker
from connector.to_user import ToUser
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
        # Read at each refresh: ``midtier reload`` may change the window.
        self.rates = SuccessRates(store, lambda: self.router.config)
        self.router = Router(
            config.routing,
            unavailable=self.pool.unavailable,
            open_legs=self.pool.open_legs,
            success=self.rates,
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
            fallback=lambda: self.router.fallback,
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
        self.activities = UserActivities(
            config,
            store,
            self.turns,
            self.pool,
            self.to_user,
            self.messages.handle,
            self.continuation.intercept,
        )
        self.inbound = UserInbound(
            store,
            self.activities.process,
            mid.session.dedupe_ttl_s,
            ack_within_s=mid.session.ack_within_s,
        )

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
        entry, own = inbound_entry(
            channel,
            activity,
            limit,
            claims=claims,
            ref=ref,
            channel_state=channel_state,
            address=address,
        )
        return await self.inbound.record(entry, own)

    async def receive(
        self, channel: str, activity: Activity, *, claims: dict[str, Any] | None = None
    ) -> MidTierSession | None:
        """Record a user's activity (``activity.id`` is the channel's id) and wait until it
        has been processed and its replies were tried. Returns the session (None for a
        repeat)."""
        limit = self.config.midtier.limits.max_text_chars
        entry, _ = inbound_entry(channel, activity, limit, claims=claims, ref=activity.id)
        session = await self.inbound.receive(entry)
        await self.outbox.settled(channel, entry.conversation)
        return session

    async def set_channel_state(self, session_id: str, values: dict[str, Any]) -> None:
        """Change channel-owned state of a session (e.g. a new resume secret's hash)."""
        async with self.turn(session_id) as turn:
            turn.session.channel_state.update(values)

    async def rate(self, session_id: str, verdict: Verdict) -> bool:
        """The user's word on the conversation: the outcome of the leg serving it, else of
        the last one that did (False: no provider has had it yet)."""
        async with self.turn(session_id) as turn:
            legs = turn.session.legs
            if not legs:
                turn.abandon()
                return False
            record(turn, turn.session.current_leg or legs[-1], verdict)
        return True

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
