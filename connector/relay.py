"""What providers send, acted on in one loop: replies to the user, statuses, handoffs.

A provider answers a delivery with activities, and so does a provider calling back later.
Each is acted on in order: a message or other visible activity goes to the user, a typing
signal passes straight through, a ``handoff.status`` goes on to the bot that handed the
conversation off, and a ``handoff.initiate`` switches the conversation (:mod:`connector.handoff`)
and delivers the ``midtier.handoff`` event to the new provider, whose answers are acted on
in the same loop, in the place of the request, as if the request had been answered there.

The number of handoff requests followed is carried with each activity (``hops``): a bot that
hands over on the event it gets would otherwise bounce a conversation around for ever, so a
request ``MAX_HOPS`` deep is ignored.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import NamedTuple

from connector.activity import Activity, ActivityTypes, HandoffEventNames
from connector.errors import ProviderError
from connector.handoff import Switched, Switcher
from connector.pool import ProviderPool
from connector.records import ended
from connector.sessions import Leg
from connector.settings import Notices
from connector.to_user import ToUser
from connector.work import Turn

log = logging.getLogger("midtier.relay")

MAX_HOPS = 4  # handoff requests followed within one turn


class _Step(NamedTuple):  # a tuple: built for every reply, at half a frozen dataclass's cost
    """One thing the loop does: deliver ``activity`` to ``leg``'s provider (``inbound``), or
    act on an activity ``leg``'s provider sent."""

    leg: Leg
    activity: Activity
    hops: int
    inbound: bool = False


class Relay:
    """Delivers to providers and acts on what they send."""

    def __init__(
        self,
        pool: ProviderPool,
        switcher: Switcher,
        to_user: ToUser,
        *,
        is_sticky: Callable[[str | None], bool],
        providers_for: Callable[[str], list[str]],
        fallback: Callable[[], str | None],
        notices: Notices,
    ) -> None:
        self._pool = pool
        self._switcher = switcher
        self._to_user = to_user
        self._is_sticky = is_sticky
        self._providers_for = providers_for
        self._fallback = fallback  # read per handoff: ``midtier reload`` may change it
        self._notices = notices

    async def deliver(self, turn: Turn, leg: Leg, activity: Activity, hops: int = 0) -> None:
        """Deliver ``activity`` to ``leg``'s provider and act on what it answers.

        A ``ProviderError`` of this delivery is raised (the caller picks the next candidate);
        failures further on (a provider the conversation was handed to) are logged.
        """
        replies = await self._pool.deliver(leg, activity)
        await self.act(turn, leg, replies, hops)
        if activity.type == ActivityTypes.MESSAGE and leg.is_open:
            _note_expecting(turn, leg, replies)

    async def act(
        self, turn: Turn, leg: Leg, activities: Iterable[Activity], hops: int = 0
    ) -> None:
        """Act on ``activities`` that ``leg``'s provider sent, following handoff requests."""
        await self._run(turn, [_Step(leg, activity, hops) for activity in activities])

    async def enter(self, turn: Turn, switched: Switched, hops: int = 0) -> None:
        """Give the provider a conversation was switched to its ``midtier.handoff`` event,
        and act on what it answers."""
        await self._run(turn, [_handed(switched, hops)])

    async def _run(self, turn: Turn, steps: list[_Step]) -> None:
        """The loop: each step delivers to a provider or acts on what one sent; what a step
        leads to (a provider's answers, the event of a switch) is done next, in its place."""
        pending = deque(steps)
        while pending:
            step = pending.popleft()
            if step.inbound:
                follow = await self._deliver_quietly(step)
            else:
                switched = await self._act(turn, step)
                follow = [] if switched is None else [_handed(switched, step.hops + 1)]
            pending.extendleft(reversed(follow))

    async def status(self, leg: Leg, state: str, message: str | None = None) -> None:
        """Tell a bot the ``handoff.status`` of a conversation it handed off or gets back
        (people on the desk see the conversation itself instead)."""
        if not self._is_sticky(leg.provider):
            await self._pool.status(leg, state, message)

    async def _deliver_quietly(self, step: _Step) -> list[_Step]:
        try:
            replies = await self._pool.deliver(step.leg, step.activity)
        except ProviderError as exc:  # the leg stands; the user's message tries it next
            log.warning("the handoff event did not reach %s: %s", step.leg.provider, exc)
            return []
        return [_Step(step.leg, reply, step.hops) for reply in replies]

    async def _act(self, turn: Turn, step: _Step) -> Switched | None:
        """Act on one activity a provider sent; a switch it caused is returned."""
        leg, activity = step.leg, step.activity
        if activity.is_event(HandoffEventNames.INITIATE):
            if step.hops >= MAX_HOPS:
                log.warning("handoff request ignored: too many handoffs in one turn")
                return None
            return await self._requested(turn, leg, activity)
        if activity.is_event(HandoffEventNames.STATUS):
            await self._forward_status(turn, leg, activity)
        elif activity.type in (ActivityTypes.EVENT, ActivityTypes.HANDOFF):
            pass  # provider-internal events do not reach the user
        elif not leg.is_open:
            log.info("activity from closed leg of %s dropped", leg.provider)
        elif activity.type == ActivityTypes.TYPING:
            await self._to_user.signal(turn.session, leg, activity)
        else:
            self._to_user.send(turn, leg, activity)
        return None

    async def _requested(self, turn: Turn, leg: Leg, activity: Activity) -> Switched | None:
        """A provider asks to hand the conversation over (PROTOCOLS.md section 7)."""
        value = activity.value if isinstance(activity.value, dict) else {}
        reason = str(value.get("reason") or f"{leg.provider} asked for a handoff")
        target = value.get("provider") or value.get("skill")
        candidates: list[str | None] = []
        if isinstance(target, str):
            candidates.append(target)
        wanted = value.get("intent")
        if isinstance(wanted, str):
            candidates += self._providers_for(wanted)
        candidates.append(self._fallback())
        switched = await self._switcher.switch(
            turn,
            candidates,
            reason=reason,
            intent=wanted if isinstance(wanted, str) else None,
            notice=self._notices.switch,
            requested=True,
            ended=ended("handed_off"),
        )
        if switched is None:
            await self.status(leg, "failed", "no provider could take the conversation")
            self._to_user.notify(turn, self._notices.unavailable)
        elif not self._is_sticky(switched.leg.provider):
            await self.status(leg, "accepted")
        return switched

    async def _forward_status(self, turn: Turn, leg: Leg, activity: Activity) -> None:
        origin = leg.data.get("handoff_from")
        if not origin:
            return
        old = turn.session.leg(origin["leg"])
        if old is not None:
            value = activity.value if isinstance(activity.value, dict) else {}
            await self.status(old, str(value.get("state", "")), value.get("message"))


def _handed(switched: Switched, hops: int) -> _Step:
    return _Step(switched.leg, switched.event, hops, inbound=True)


def _note_expecting(turn: Turn, leg: Leg, replies: list[Activity]) -> None:
    """Remember whether the provider's last reply asked the user a question."""
    current = turn.session.current_leg
    if current is None or current.id != leg.id:
        return
    current.data["expecting_input"] = any(r.input_hint == "expectingInput" for r in replies)
