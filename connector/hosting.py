"""The provider side of the core (``ProviderHost``), and session expiry.

Providers call these from outside a delivery (an agent typing, resolving or transferring, a
bot sending proactively, a callback from the inbox). Each finds the session by the provider
conversation id and runs as one unit of work under the same per-session lock as user
messages, so the two never interleave.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from connector.activity import Activity, now
from connector.errors import NotFound, SessionClosed
from connector.handoff import status_event
from connector.routing.decision import intent_history
from connector.sessions import CHANNEL_ONLY, Leg
from connector.work import Turn, after_commit

log = logging.getLogger("midtier.engine")

T = TypeVar("T")
IDLE_PAGE = 100
_BREAK = 1  # idle sessions read from the store at a time

if TYPE_CHECKING:
    from connector.auth import AuthCodes
    from connector.config import Config
    from connector.handoff import Switcher
    from connector.inbox import ProviderInbox
    from connector.interfaces import Provider, SessionStore
    from connector.pool import ProviderPool
    from connector.routing.policy import Router
    from connector.to_user import ToUser


class _Core(Protocol):
    """What these methods use of the engine they are mixed into."""

    store: SessionStore
    config: Config
    providers: dict[str, Provider]
    router: Router
    switcher: Switcher
    auth: AuthCodes
    pool: ProviderPool
    inbox: ProviderInbox
    to_user: ToUser

    def turn(self, session_id: str) -> AbstractAsyncContextManager[Turn]: ...

    def provider_turn(
        self, provider: str, conversation_id: str
    ) -> AbstractAsyncContextManager[tuple[Turn, Leg]]: ...

    async def _emit(self, turn: Turn, leg: Leg, activity: Activity) -> None: ...

    async def _hand_back(self, turn: Turn, leg: Leg, reason: str) -> None: ...

    async def _transfer(self, turn: Turn, target: str, reason: str) -> None: ...

    def notify(self, turn: Turn, text: str) -> None: ...

    async def change_leg(
        self, provider: str, provider_conversation_id: str, change: Callable[[dict[str, Any]], T]
    ) -> T: ...

    async def provider_status(self, leg: Leg, state: str, message: str | None = None) -> None: ...


async def _idle_ids(store: SessionStore, cutoff: datetime) -> AsyncIterator[str]:
    """Ids of the sessions idle since before ``cutoff``, read a page at a time.

    The caller closes each one, or finds it written to (no longer idle), so every page holds
    others; the same page twice means none of it could be closed, and ends the pass.
    """
    done: list[str] = []
    while (page := await store.idle_sessions(cutoff, IDLE_PAGE)) and page != done:
        for session_id in page:
            yield session_id
        done = page


class ProviderSide:
    """Mixed into :class:`connector.engine.Engine`."""

    @asynccontextmanager
    async def provider_turn(
        self: _Core, provider: str, conversation_id: str
    ) -> AsyncIterator[tuple[Turn, Leg]]:
        """A unit of work on the session of ``provider``'s open conversation."""
        found = await self.store.by_provider(provider, conversation_id)
        if found is None:
            raise NotFound(f"no conversation {conversation_id!r} for provider {provider!r}")
        async with self.turn(found.id) as turn:
            leg = turn.session.leg_for_provider(provider, conversation_id)
            if leg is None or not leg.is_open or turn.session.status != "active":
                raise SessionClosed(f"conversation {conversation_id!r} of {provider!r} is closed")
            yield turn, leg

    async def _requested_handoff(self: _Core, turn: Turn, leg: Leg, activity: Activity) -> None:
        value = activity.value if isinstance(activity.value, dict) else {}
        reason = str(value.get("reason") or f"{leg.provider} asked for a handoff")
        target = value.get("provider") or value.get("skill")
        candidates: list[str | None] = []
        if isinstance(target, str):
            candidates.append(target)
        wanted = value.get("intent")
        if isinstance(wanted, str):
            candidates += self.router.providers_for(wanted)
        candidates.append(self.config.routing.fallback)
        new_leg = await self.switcher.switch(
            turn,
            candidates,
            reason=reason,
            intent=wanted if isinstance(wanted, str) else None,
            notice=self.config.midtier.notices.switch,
            requested=True,
        )
        if new_leg is None:
            await self.provider_status(leg, "failed", "no provider could take the conversation")
            self.notify(turn, self.config.midtier.notices.unavailable)
        elif not self.router.is_sticky(new_leg.provider):
            await self.provider_status(leg, "accepted")

    async def provider_status(
        self: _Core, leg: Leg, state: str, message: str | None = None
    ) -> None:
        """Tell a bot the ``handoff.status`` of a conversation it handed off or gets back."""
        provider = self.providers.get(leg.provider)
        if provider is None or self.router.is_sticky(leg.provider):
            return
        status = provider.deliver(leg, status_event(state, message))
        await self.pool.quietly(leg.provider, status, "handoff.status")

    async def _forward_status(self: _Core, turn: Turn, leg: Leg, activity: Activity) -> None:
        origin = leg.data.get("handoff_from")
        if not origin:
            return
        old = turn.session.leg(origin["leg"])
        if old is not None:
            value = activity.value if isinstance(activity.value, dict) else {}
            await self.provider_status(old, str(value.get("state", "")), value.get("message"))

    async def expire_idle(self: _Core) -> int:
        """Close sessions idle longer than ``session.idle_timeout_s``; return how many."""
        cutoff = now() - timedelta(seconds=self.config.midtier.session.idle_timeout_s)
        closed = 0
        async for stale_id in _idle_ids(self.store, cutoff):
            async with self.turn(stale_id) as turn:
                session = turn.session
                if session.status != "active" or session.updated_at >= cutoff:
                    turn.abandon()  # written to meanwhile: it is not idle
                    continue
                leg = session.current_leg
                if leg is not None:
                    leg.closed_at, leg.close_reason = now(), "expired"
                session.status = "closed"
                await turn.commit()
                if leg is not None:
                    self.pool.leg_closed(leg.provider)
                    await self.pool.close_leg(leg, "expired")
                closed += 1
        await self.store.expire(cutoff)  # also purges old dedupe keys and used codes
        return closed

    async def provider_activity(
        self: _Core, provider: str, provider_conversation_id: str, activity: Activity
    ) -> None:
        """A provider sends an activity into a conversation outside a delivery."""
        async with self.provider_turn(provider, provider_conversation_id) as (turn, leg):
            await self._emit(turn, leg, activity)

    async def proactive(
        self: _Core,
        provider: str,
        provider_conversation_id: str,
        run: Callable[[Leg], Awaitable[list[Activity]]],
    ) -> None:
        """A provider-side turn: ``run(leg)``'s leg changes and activities commit together."""
        async with self.provider_turn(provider, provider_conversation_id) as (turn, leg):
            for activity in await run(leg):
                await self._emit(turn, leg, activity)

    async def hand_back(
        self: _Core, provider: str, provider_conversation_id: str, reason: str
    ) -> None:
        """The provider (a person) is done: see :meth:`_hand_back`."""
        async with self.provider_turn(provider, provider_conversation_id) as (turn, leg):
            await self._hand_back(turn, leg, reason)

    async def _hand_back(self: _Core, turn: Turn, leg: Leg, reason: str) -> None:
        """The conversation goes back to the bot that asked for this handoff, if one did
        (it paused and waits for ``completed``); otherwise to ``routing.default`` (the home
        bot), or the last bot that had it.

        The bot that gets it, and a bot that handed it off, are told ``handoff.status``
        ``completed``.
        """
        session = turn.session
        bots = [
            old.provider
            for old in reversed(session.legs[:-1])
            if not self.router.is_sticky(old.provider)
        ]
        origin = leg.data.get("handoff_from") or {}
        asked = [origin["provider"]] if origin.get("requested") else []
        candidates = [*asked, self.config.routing.default, *bots]
        new_leg = await self.switcher.switch(
            turn, candidates, reason=reason, notice=self.config.midtier.notices.hand_back
        )
        if new_leg is None:
            raise NotFound("no bot could take the conversation back")
        await self.provider_status(new_leg, "completed", reason)
        handed_off = session.leg(str(origin.get("leg", "")))
        if handed_off is not None and handed_off.provider != new_leg.provider:
            await self.provider_status(handed_off, "completed", reason)

    async def transfer(
        self: _Core, provider: str, provider_conversation_id: str, target: str, reason: str
    ) -> None:
        """The provider passes the conversation to ``target``."""
        if target not in self.providers:
            raise NotFound(f"no provider named {target!r}")
        async with self.provider_turn(provider, provider_conversation_id) as (turn, _leg):
            await self._transfer(turn, target, reason)

    async def _transfer(self: _Core, turn: Turn, target: str, reason: str) -> None:
        if target not in self.providers:
            raise NotFound(f"no provider named {target!r}")
        new_leg = await self.switcher.switch(
            turn, [target], reason=reason, notice=self.config.midtier.notices.switch
        )
        if new_leg is None:
            raise NotFound(f"{target} could not take the conversation")

    async def accept(
        self: _Core,
        provider: str,
        provider_conversation_id: str,
        activities: list[Activity],
        action: dict[str, Any] | None = None,
    ) -> None:
        """Keep a provider callback durably and apply it soon, in order (``ProviderInbox``)."""
        await self.inbox.accept(provider, provider_conversation_id, activities, action)

    async def tell_provider_failed(
        self: _Core, provider: str, provider_conversation_id: str, message: str
    ) -> None:
        """Tell a provider that what it asked for (hand back, transfer) could not be done."""
        session = await self.store.by_provider(provider, provider_conversation_id)
        leg = session.leg_for_provider(provider, provider_conversation_id) if session else None
        target = self.providers.get(provider)
        if leg is None or not leg.is_open or target is None:
            return
        failed = target.deliver(leg, status_event("failed", message))
        await self.pool.quietly(provider, failed, "telling that its request failed")

    async def change_leg(
        self: _Core,
        provider: str,
        provider_conversation_id: str,
        change: Callable[[dict[str, Any]], T],
    ) -> T:
        """Run ``change`` on the open leg's data under the session's lock; persist it."""
        async with self.provider_turn(provider, provider_conversation_id) as (_turn, leg):
            return change(leg.data)

    async def update_leg_data(
        self: _Core, provider: str, provider_conversation_id: str, data: dict[str, Any]
    ) -> None:
        """Merge provider-owned state into the open leg (persisted with the session)."""
        await self.change_leg(
            provider, provider_conversation_id, lambda leg_data: leg_data.update(data)
        )

    async def after_commit(self: _Core, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` once the current unit of work is committed (now if none is)."""
        await after_commit(callback)

    async def signal(
        self: _Core, provider: str, provider_conversation_id: str, activity: Activity
    ) -> None:
        """Send a transient activity (an agent typing) straight to the user's channel.

        Not recorded and not queued in the outbox: it is stale a few seconds later, so it
        goes now or never. Dropped when the leg is closed or no longer the provider's current
        one, and when the channel cannot send (nobody listening).
        """
        session = await self.store.by_provider(provider, provider_conversation_id)
        leg = session.current_leg if session is not None else None
        if session is None or leg is None or session.status != "active":
            return
        if (leg.provider, leg.provider_conversation_id) != (provider, provider_conversation_id):
            return
        await self.to_user.signal(session, leg, activity)

    async def redeem(self: _Core, code: str, provider: str) -> dict[str, Any]:
        """Exchange an authorization code for the user's claims and transcript."""
        record = await self.auth.redeem(code, provider)
        session = await self.store.get(record.session_id)
        if session is None:
            raise NotFound("the session of this code no longer exists")
        transcript = await self.store.transcript(
            session.id, last=self.config.midtier.session.handoff_transcript
        )
        return {
            "session_id": session.id,
            "user_id": session.user_id,
            "claims": session.claims,
            "intents": intent_history(await self.store.decisions(session.id)),
            "transcript": [
                e.model_dump(mode="json", exclude=set(CHANNEL_ONLY)) for e in transcript
            ],
        }
