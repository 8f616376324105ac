"""Continuation in-process: the engine with two recording channels, a web chat-like one
("web", unverified claims) and an SMS-like one ("sms", verified, with a phone identity)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from support.doubles import (
    KEYWORDS,
    KeywordClassifier,
    RecordingChannel,
    RecordingProvider,
    make_config,
    user_message,
)

from connector.config import ChannelConfig, MidtierConfig, Route
from connector.continuation_settings import ContinuationSettings
from connector.engine import Engine
from connector.interfaces import IntentResult
from connector.records import Changes
from connector.routing.moves import MOVES_OFFERED
from connector.routing.policy import Router
from connector.sessions import MidTierSession
from connector.store import MemoryStore

PHONE = "phone:+16505551234"
CODE = re.compile(r"\b([2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4})\b")


def web_claims(user: str = "user-1") -> dict[str, Any]:
    return {"sub": user, "channel": "web", "verified": False}


def sms_claims(number: str = "+16505551234", *, verified: bool = True) -> dict[str, Any]:
    return {"sub": number, "channel": "sms", "verified": verified, "identities": [PHONE]}


class World:
    def __init__(self, tmp: Path, store: MemoryStore | None = None) -> None:
        routes = {
            "faq": Route(intents=["greet", "check_balance"]),
            "disputes": Route(intents=["dispute_charge"]),
            "agents": Route(intents=["report_fraud"], sticky=True),
        }
        config = make_config(tmp, list(routes), routes)
        config.midtier.channels = {"web": ChannelConfig(kind="x"), "sms": ChannelConfig(kind="x")}
        self.providers = {n: RecordingProvider(n) for n in routes}
        self.web, self.sms = RecordingChannel("web"), RecordingChannel("sms")
        self.store = store or MemoryStore()
        self.engine = Engine(
            config,
            self.store,
            KeywordClassifier(KEYWORDS),
            {"web": self.web, "sms": self.sms},
            dict(self.providers),
        )

    async def on_web(self, text: str, conversation: str = "w1") -> MidTierSession:
        message = user_message(text, conversation=conversation)
        session = await self.engine.receive("web", message, claims=web_claims())
        assert session is not None
        return session

    async def on_sms(
        self, text: str, conversation: str = "+16505551234", **claims: Any
    ) -> MidTierSession:
        message = user_message(text, conversation=conversation)
        given = claims.get("claims", sms_claims(conversation))
        session = await self.engine.receive("sms", message, claims=given)
        assert session is not None
        return session

    def code(self) -> str:
        [code] = CODE.findall(self.web.texts()[-1])
        return code


async def test_a_code_sent_in_its_own_conversation_is_kept_for_the_other_channel(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    started = await world.on_web("hello")
    await world.on_web("/continue")
    code = world.code()
    await world.on_web(code)
    assert world.web.texts()[-1].startswith("This code continues this conversation somewhere")
    moved = await world.on_sms(code)
    assert moved.id == started.id and moved.channel == "sms"


async def test_the_web_conversation_is_told_and_left_and_the_bot_keeps_its_conversation(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    started = await world.on_web("hello")
    await world.on_web("continue on another channel.")  # end marks do not matter
    moved = await world.on_sms(world.code())
    assert world.web.texts()[-1] == (
        "This conversation continues on sms. If you write here again, you start a new conversation."
    )
    assert world.sms.texts() == ["You're continuing your conversation from web."]
    web_leg, sms_leg = moved.legs
    assert web_leg.provider_conversation_id == sms_leg.provider_conversation_id
    assert world.providers["faq"].opened and len(world.providers["faq"].opened) == 1
    assert world.providers["faq"].closed == []  # not reopened, not closed
    await world.on_sms("my balance please")
    assert world.sms.texts()[-1] == "faq: my balance please"
    assert world.providers["faq"].delivered[-1][0] == sms_leg.provider_conversation_id
    again = await world.on_web("hello")
    assert again.id != started.id and again.channel == "web"


@pytest.mark.parametrize(
    "asked", ["  /CONTINUE ", "Continue   on another\tchannel?!", "/continue."]
)
async def test_a_command_is_recognised_however_it_is_cased_spaced_or_ended(
    tmp_path: Path, asked: str
) -> None:
    world = World(tmp_path)
    await world.on_web("hello")
    await world.on_web(asked)
    assert world.code()  # the answer holds a code
    await world.on_web("what about a continue?")  # a command inside other words is none
    assert not CODE.findall(world.web.texts()[-1])


async def test_an_identity_is_never_matched_on_unverified_claims(tmp_path: Path) -> None:
    world = World(tmp_path)
    # A page claims the phone number: a label, so nobody is offered its conversation.
    message = user_message("hello", conversation="w1")
    claimed = {**web_claims(), "identities": [PHONE]}
    await world.engine.receive("web", message, claims=claimed)
    await world.on_sms("hello")
    assert world.sms.texts() == ["faq: hello"]
    # A channel that does not vouch for the sender finds nothing either.
    sessions = await world.store.list_sessions()
    proved = next(s for s in sessions if s.channel == "sms")
    assert await world.store.by_identity(PHONE) == [proved]
    unverified = sms_claims("+16505550000", verified=False)
    await world.on_sms("hello", conversation="+16505550000", claims=unverified)
    assert world.sms.texts()[-1] == "faq: hello"


async def test_a_verified_identity_is_offered_and_moves_only_on_yes(tmp_path: Path) -> None:
    world = World(tmp_path)
    first = await world.on_sms("hello")
    offered = await world.on_sms("hello", conversation="+16505551234-b")
    assert world.sms.texts()[-1] == (
        "Continue your conversation from sms? Reply YES, or just tell me what you need."
    )
    assert offered.id != first.id and (await world.store.get(first.id)).channel_conversation_id == (  # type: ignore[union-attr]
        "+16505551234"
    )
    moved = await world.on_sms("YES!", conversation="+16505551234-b")
    assert moved.id == first.id and moved.channel_conversation_id == "+16505551234-b"
    closed = await world.store.get(offered.id)
    assert closed is not None and closed.status == "closed"


async def test_a_session_that_appears_on_the_destination_meanwhile_is_closed_too(
    tmp_path: Path,
) -> None:
    class Interleaving(MemoryStore):
        """A message arrives on SMS just after its conversation's session was closed."""

        arrived = False

        async def commit(self, changes: Changes) -> MidTierSession:
            saved = await super().commit(changes)
            session = changes.session
            if session.status == "closed" and session.channel == "sms" and not self.arrived:
                self.arrived = True
                await self.find_or_create("sms", session.channel_conversation_id, "+1")
            return saved

    world = World(tmp_path, Interleaving())
    started = await world.on_web("hello")
    await world.on_web("/continue")
    moved = await world.on_sms(world.code())
    assert moved.id == started.id and moved.channel == "sms"
    on_sms = [s for s in await world.store.list_sessions() if s.channel == "sms"]
    assert sorted(s.status for s in on_sms) == ["active", "closed", "closed"]


def test_a_route_on_other_channels_only_is_offered_as_a_move_once(tmp_path: Path) -> None:
    routes = {
        "faq": Route(intents=["greet"]),
        "disputes": Route(intents=["dispute_charge"], channels=["sms"]),
        "agents": Route(intents=["report_fraud"], sticky=True),
    }
    config = make_config(tmp_path, list(routes), routes)
    intent = IntentResult(name="dispute_charge", confidence=0.9)
    session = MidTierSession(user_id="u", channel="web", channel_conversation_id="w1")
    nowhere = Router(config.routing)
    assert nowhere.decide(session, intent).action == "fallback"  # nowhere to move to
    router = Router(config.routing, reachable=["web", "sms"])
    decision = router.decide(session, intent)
    assert (decision.action, decision.provider, decision.channels) == ("move", "disputes", ["sms"])
    assert decision.next_best == "agents"
    session.channel_state[MOVES_OFFERED] = ["disputes"]
    assert router.decide(session, intent).action == "fallback"
    on_sms = MidTierSession(user_id="u", channel="sms", channel_conversation_id="+1")
    assert router.decide(on_sms, intent).action == "open"


def test_continuation_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="only use the placeholder"):
        ContinuationSettings.model_validate({"channels": {"x": {"link": "https://a/{number}"}}})
    with pytest.raises(ValidationError, match="https://"):
        ContinuationSettings.model_validate({"channels": {"x": {"link": "javascript:alert(1)"}}})
    with pytest.raises(ValidationError, match="unknown placeholder"):
        ContinuationSettings.model_validate({"notices": {"offer": "{code} {secret}"}})
    with pytest.raises(ValidationError) as raised:
        MidtierConfig.model_validate({"continuation": {"channels": {"fax": {}}}})
    assert raised.value.errors()[0]["loc"] == ("continuation", "channels", "fax")
    assert ContinuationSettings(commands=["  Switch   Channel! "]).commands == ["switch channel"]
