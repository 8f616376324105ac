"""A user's message in its unit of work (``UserMessages``), built from its own parts: a
classifier, a router, the pool, the switcher and the relay, what goes to the user. No engine,
no inbound, no channel."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from support.doubles import KEYWORDS, KeywordClassifier, RecordingProvider, make_config

from connector.activity import Activity
from connector.auth import AuthCodes
from connector.config import Route
from connector.handoff import Switcher
from connector.hosting import Understanding
from connector.locks import LocalLocks
from connector.messages import UserMessages
from connector.outbox import Outbox
from connector.pool import ProviderPool
from connector.records import OutboxEntry
from connector.relay import Relay
from connector.routing.decision import RouteDecision
from connector.routing.policy import Router
from connector.settings import Notices
from connector.store.memory import MemoryStore
from connector.to_user import ToUser
from connector.work import Turn, Turns


@dataclass
class World:
    store: MemoryStore
    turns: Turns
    messages: UserMessages
    bots: dict[str, RecordingProvider]
    sent: list[OutboxEntry]
    moves: list[RouteDecision]


def _world(tmp_path: Path) -> World:
    routes = {
        "faq": Route(intents=["greet", "check_balance"]),
        "disputes": Route(intents=["dispute_charge"]),
        "agents": Route(intents=["report_fraud"], sticky=True),
    }
    config = make_config(tmp_path, list(routes), routes)
    store = MemoryStore()
    bots = {name: RecordingProvider(name) for name in routes}
    pool = ProviderPool(config, dict(bots))
    router = Router(config.routing, unavailable=pool.unavailable, open_legs=pool.open_legs)
    outbox = Outbox(store, {})
    to_user = ToUser(outbox, system_name="midtier", title=pool.title, speaker=lambda _p: "bot")
    switcher = Switcher(
        pool,
        AuthCodes(store, 60),
        to_user,
        is_sticky=router.is_sticky,
        transcript_lines=10,
        token_url="http://127.0.0.1:1/auth/token",
    )
    relay = Relay(
        pool,
        switcher,
        to_user,
        is_sticky=router.is_sticky,
        providers_for=router.providers_for,
        fallback=lambda: config.routing.fallback,
        notices=config.midtier.notices,
    )
    sent: list[OutboxEntry] = []
    moves: list[RouteDecision] = []

    async def dispatch(entries: list[OutboxEntry]) -> None:
        sent.extend(entries)

    async def offer_move(turn: Turn, decision: RouteDecision, activity: Activity) -> None:
        moves.append(decision)

    messages = UserMessages(
        config,
        Understanding(KeywordClassifier(KEYWORDS)),
        router,
        switcher,
        relay,
        to_user,
        offer_move,
    )
    return World(store, Turns(store, LocalLocks(), dispatch), messages, bots, sent, moves)


async def _say(world: World, text: str) -> None:
    session, _ = await world.store.find_or_create("test", "c1", "user-1")
    async with world.turns.turn(session.id) as turn:
        await world.messages.handle(turn, Activity(type="message", id="m", text=text))


def _texts(world: World) -> list[str]:
    return [e.activity.get("text") or "" for e in world.sent if e.activity.get("type") == "message"]


async def test_a_message_goes_to_the_provider_of_its_intent_with_the_intent_attached(
    tmp_path: Path,
) -> None:
    world = _world(tmp_path)
    await _say(world, "what's my balance")
    [message] = [a for _, a in world.bots["faq"].delivered if a.type == "message"]
    assert message.channel_data == {"midtier": {"intent": "check_balance", "confidence": 0.9}}
    assert _texts(world) == ["faq: what's my balance"]


async def test_a_provider_that_fails_hands_the_message_to_the_next_candidate(
    tmp_path: Path,
) -> None:
    world = _world(tmp_path)
    await _say(world, "hello")  # faq has the conversation
    world.bots["faq"].fail_deliver = True
    await _say(world, "my balance please")
    # faq failed: the fallback (the agents' desk) opened and got the message
    assert world.bots["agents"].messages() == ["my balance please"]
    session = await world.store.by_channel("test", "c1")
    assert session is not None and session.current_provider == "agents"


async def test_when_nobody_can_take_it_the_user_is_told_plainly(tmp_path: Path) -> None:
    world = _world(tmp_path)
    for bot in world.bots.values():
        bot.fail_open = True
    await _say(world, "hello")
    notices = [e.activity for e in world.sent if e.activity.get("from", {}).get("id") == "midtier"]
    assert [n["text"] for n in notices] == [Notices().unavailable]
