"""The switcher and the relay, built from their own parts (store, pool, auth codes, what
goes to the user): no engine, no router, no channel side."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from support.doubles import RecordingChannel, RecordingProvider, make_config

from connector.activity import Activity, HandoffEventNames
from connector.auth import AuthCodes
from connector.config import Route
from connector.handoff import Switcher
from connector.locks import LocalLocks
from connector.outbox import Outbox
from connector.pool import ProviderPool
from connector.records import OutboxEntry
from connector.relay import MAX_HOPS, Relay
from connector.sessions import Leg, MidTierSession
from connector.settings import Notices
from connector.store.memory import MemoryStore
from connector.to_user import ToUser
from connector.work import Turns


@dataclass
class Parts:
    store: MemoryStore
    turns: Turns
    pool: ProviderPool
    switcher: Switcher
    relay: Relay
    sent: list[OutboxEntry]
    bots: dict[str, RecordingProvider]


def _parts(
    tmp_path: Path,
    *names: str,
    sticky: frozenset[str] = frozenset(),
    **given: RecordingProvider,
) -> Parts:
    names = (*names, *given)
    routes = {name: Route(intents=[name]) for name in names}
    config = make_config(tmp_path, list(names), routes)
    store = MemoryStore()
    sent: list[OutboxEntry] = []

    async def dispatch(entries: list[OutboxEntry]) -> None:
        sent.extend(entries)

    bots = {name: given.get(name) or RecordingProvider(name) for name in names}
    pool = ProviderPool(config, dict(bots))
    outbox = Outbox(store, {"test": RecordingChannel()})
    to_user = ToUser(outbox, system_name="midtier", title=pool.title, speaker=lambda _p: "bot")
    switcher = Switcher(
        pool,
        AuthCodes(store, 60),
        to_user,
        is_sticky=lambda p: p in sticky,
        transcript_lines=10,
        token_url="http://127.0.0.1:1/auth/token",
    )
    relay = Relay(
        pool,
        switcher,
        to_user,
        is_sticky=lambda p: p in sticky,
        providers_for=lambda intent: [intent] if intent in bots else [],
        fallback=lambda: None,
        notices=Notices(),
    )
    return Parts(store, Turns(store, LocalLocks(), dispatch), pool, switcher, relay, sent, bots)


async def _session(parts: Parts) -> MidTierSession:
    session, _ = await parts.store.find_or_create("test", "c1", "user-1")
    return session


def _texts(entries: list[OutboxEntry]) -> list[str]:
    return [e.activity.get("text") or "" for e in entries if e.activity.get("type") == "message"]


async def test_a_switch_to_a_bot_in_the_process_is_committed_with_the_turn(
    tmp_path: Path,
) -> None:
    parts = _parts(tmp_path, "faq")
    session = await _session(parts)
    async with parts.turns.turn(session.id) as turn:
        switched = await parts.switcher.switch(turn, ["faq"], reason="greeting")
        assert switched is not None
        stored = await parts.store.get(session.id)  # nobody outside has heard of it yet
        assert stored is not None and stored.current_provider is None
    stored = await parts.store.get(session.id)
    assert stored is not None and stored.current_provider == "faq"
    assert [leg.id for leg in stored.legs] == [switched.leg.id]


async def test_a_switch_opens_commits_and_returns_the_event_without_delivering_it(
    tmp_path: Path,
) -> None:
    parts = _parts(tmp_path, "faq")
    parts.bots["faq"].runs_in_process = False  # a remote bot: it may call back at once
    session = await _session(parts)
    async with parts.turns.turn(session.id) as turn:
        switched = await parts.switcher.switch(turn, ["faq"], reason="greeting")
        assert switched is not None
        stored = await parts.store.get(session.id)  # committed before the target hears of it
        assert stored is not None and stored.current_provider == "faq"
    assert switched.old is None
    assert switched.leg.provider_conversation_id == "faq-conv-1"
    assert switched.event.name == HandoffEventNames.CONTEXT
    assert switched.event.value["auth_code"] == parts.bots["faq"].opened[0].auth_code
    assert parts.bots["faq"].delivered == []  # the switcher delivers nothing itself


async def test_a_switch_that_no_candidate_takes_keeps_the_old_leg(tmp_path: Path) -> None:
    parts = _parts(tmp_path, "faq", "disputes")
    session = await _session(parts)
    async with parts.turns.turn(session.id) as turn:
        assert await parts.switcher.switch(turn, ["faq"], reason="first") is not None
        parts.bots["disputes"].fail_open = True
        assert await parts.switcher.switch(turn, ["disputes", None], reason="then") is None
        assert turn.session.current_provider == "faq"
    assert parts.pool.breakers.state("disputes") == "closed"  # one failure is not enough


async def test_a_candidate_whose_circuit_is_open_is_skipped(tmp_path: Path) -> None:
    parts = _parts(tmp_path, "faq", "disputes")
    for _ in range(parts.pool.breakers.failures):
        parts.pool.mark_failure("faq")
    session = await _session(parts)
    async with parts.turns.turn(session.id) as turn:
        switched = await parts.switcher.switch(turn, ["faq", "disputes"], reason="r")
    assert switched is not None and switched.leg.provider == "disputes"
    assert parts.bots["faq"].opened == []


class Answers(RecordingProvider):
    """Answers every activity it is given (events too) with ``reply(activity)``."""

    def __init__(self, name: str, reply: Callable[[Activity], list[Activity]]) -> None:
        super().__init__(name)
        self.reply = reply

    async def deliver(self, leg: Leg, activity: Activity) -> list[Activity]:
        self.delivered.append((leg.provider_conversation_id, activity))
        return [] if activity.is_event(HandoffEventNames.STATUS) else self.reply(activity)


def _hand_to(provider: str) -> Activity:
    return Activity(type="event", name=HandoffEventNames.INITIATE, value={"provider": provider})


async def test_the_relay_follows_a_handoff_request_and_answers_in_its_place(
    tmp_path: Path,
) -> None:
    def faq(activity: Activity) -> list[Activity]:
        if activity.type != "message":
            return []
        return [Activity(type="message", text="one moment"), _hand_to("disputes")]

    def disputes(activity: Activity) -> list[Activity]:
        return [Activity(type="message", text=f"disputes got {activity.type}")]

    parts = _parts(tmp_path, faq=Answers("faq", faq), disputes=Answers("disputes", disputes))
    session = await _session(parts)
    async with parts.turns.turn(session.id) as turn:
        first = await parts.switcher.switch(turn, ["faq"], reason="start")
        assert first is not None
        await parts.relay.enter(turn, first)
        await parts.relay.deliver(turn, first.leg, Activity(type="message", text="dispute"))
        assert turn.session.current_provider == "disputes"
    notice = Notices().switch.format(title="the disputes desk")
    assert _texts(parts.sent) == ["one moment", notice, "disputes got event"]
    assert parts.bots["faq"].statuses() == ["accepted"]  # the bot that asked is told


async def test_handoff_requests_are_followed_at_most_max_hops_deep(tmp_path: Path) -> None:
    ping = Answers("ping", lambda _activity: [_hand_to("pong")])
    pong = Answers("pong", lambda _activity: [_hand_to("ping")])
    parts = _parts(tmp_path, ping=ping, pong=pong)
    session = await _session(parts)
    async with parts.turns.turn(session.id) as turn:
        first = await parts.switcher.switch(turn, ["ping"], reason="start")
        assert first is not None
        await parts.relay.deliver(turn, first.leg, Activity(type="message", text="go"))
        legs = len(turn.session.legs)
    # the first leg, the request in the reply, then MAX_HOPS - 1 requests in answers to events
    assert legs == 1 + MAX_HOPS
