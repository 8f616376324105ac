"""The seamless switch, provider failures and provider-requested handoffs, in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.doubles import make_engine, user_message

from connector import expiry
from connector.activity import Activity, HandoffEventNames
from connector.errors import AuthCodeError, NotFound, SessionClosed
from connector.interfaces import SessionStore
from connector.relay import MAX_HOPS
from connector.sessions import Leg
from connector.store import MemoryStore, SqliteStore


async def test_first_message_opens_a_leg_with_the_routed_provider(tmp_path: Path) -> None:
    engine, providers, channel = make_engine(tmp_path)
    session = await engine.receive("test", user_message("hello there"))
    assert session is not None and session.current_provider == "faq"
    assert [leg.provider for leg in session.legs] == ["faq"]
    assert providers["faq"].messages() == ["hello there"]
    assert channel.texts() == ["faq: hello there"]  # no switch notice for the first leg
    assert channel.sent[0].from_ is not None and channel.sent[0].from_.name == "the faq desk"


async def test_switch_carries_transcript_intent_and_code(tmp_path: Path) -> None:
    engine, providers, channel = make_engine(tmp_path)
    await engine.receive("test", user_message("hello"))
    await engine.receive("test", user_message("my balance please"))
    session = await engine.receive("test", user_message("I want to dispute a charge"))
    assert session is not None and session.current_provider == "disputes"

    faq_leg, disputes_leg = session.legs
    assert faq_leg.closed_at is not None and "disputes serves dispute_charge" in (
        faq_leg.close_reason or ""
    )
    assert disputes_leg.is_open and disputes_leg.open_reason == faq_leg.close_reason
    assert providers["faq"].closed == [(faq_leg.provider_conversation_id, faq_leg.close_reason)]

    context = providers["disputes"].opened[0]
    assert context.intent == "dispute_charge" and context.from_provider == "faq"
    said = [e.text for e in context.transcript if e.speaker == "user"]
    assert all(e.activity == {} for e in context.transcript)  # no channel conversation ids
    assert said == ["hello", "my balance please", "I want to dispute a charge"]
    assert context.auth_code and context.token_url == "http://127.0.0.1:1/auth/token"
    assert [i["name"] for i in context.intents] == ["greet", "check_balance", "dispute_charge"]
    # The target got the context event, then the user's message.
    delivered = providers["disputes"].delivered
    assert delivered[0][1].is_event(HandoffEventNames.CONTEXT)
    assert delivered[0][1].value["intent"] == "dispute_charge"
    assert providers["disputes"].messages() == ["I want to dispute a charge"]
    # The user saw a short notice, then the new provider's answer.
    assert channel.texts()[-2:] == [
        "One moment, I'm passing you to the disputes desk. You can keep typing.",
        "disputes: I want to dispute a charge",
    ]
    # The code lets the target, and only the target, fetch the auth context once.
    with pytest.raises(AuthCodeError, match="another provider"):
        await engine.host.redeem(context.auth_code, "faq")
    # (a wrong provider burns the code: a second, correct attempt fails too)
    with pytest.raises(AuthCodeError, match="already used"):
        await engine.host.redeem(context.auth_code, "disputes")


async def test_redeem_returns_claims_and_transcript_once(tmp_path: Path) -> None:
    engine, providers, _ = make_engine(tmp_path)
    await engine.receive("test", user_message("hello"), claims={"sub": "user-1", "verified": True})
    await engine.receive("test", user_message("dispute this"))
    code = providers["disputes"].opened[0].auth_code
    assert code is not None
    grant = await engine.host.redeem(code, "disputes")
    assert grant["claims"] == {"sub": "user-1", "verified": True}
    assert [e["text"] for e in grant["transcript"] if e["speaker"] == "user"] == [
        "hello",
        "dispute this",
    ]
    with pytest.raises(AuthCodeError, match="already used"):
        await engine.host.redeem(code, "disputes")


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    """Each store backend (as in the store contract suites, tests/connector/store/)."""
    backend: SessionStore = (
        MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "midtier.db")
    )
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()


async def test_messages_typed_during_a_switch_arrive_in_order(
    tmp_path: Path, store: SessionStore
) -> None:
    engine, providers, channel = make_engine(tmp_path, store)
    await engine.receive("test", user_message("hello"))
    gate = providers["disputes"].gate = asyncio.Event()
    switching = asyncio.create_task(engine.receive("test", user_message("dispute please")))
    async with asyncio.timeout(10):
        await providers["disputes"].opening.wait()  # the switch is under way
    typed = [
        asyncio.create_task(engine.receive("test", user_message(f"more detail {n}")))
        for n in range(5)
    ]
    # Another session is served from start to end meanwhile: sessions do not wait for each
    # other, and the typed messages, which went into the same store first, have had every
    # chance to overtake the switch by the time it is answered.
    async with asyncio.timeout(10):
        other = await engine.receive("test", user_message("hello", conversation="c2"))
    assert other is not None and other.current_provider == "faq"
    assert providers["disputes"].messages() == []  # held while the switch is under way
    assert providers["faq"].messages() == ["hello", "hello"]  # this session's, and c2's
    gate.set()
    await asyncio.gather(switching, *typed)
    assert providers["disputes"].messages() == [
        "dispute please",
        *[f"more detail {n}" for n in range(5)],
    ]
    assert providers["faq"].messages() == ["hello", "hello"]
    answers = [t for t in channel.texts() if t.startswith("disputes:")]
    assert answers == [f"disputes: {m}" for m in providers["disputes"].messages()]


async def test_failing_provider_hands_over_to_the_next_candidate(tmp_path: Path) -> None:
    engine, providers, channel = make_engine(tmp_path)
    await engine.receive("test", user_message("hello"))
    providers["faq"].fail_deliver = True
    session = await engine.receive("test", user_message("my balance"))
    assert session is not None and session.current_provider == "agents"
    assert session.legs[0].close_reason == "faq failed to answer"
    assert providers["agents"].messages() == ["my balance"]
    assert "Sorry, something went wrong on our side" in channel.texts()[-2]


async def test_nobody_available_keeps_the_leg_and_says_so(tmp_path: Path) -> None:
    engine, providers, channel = make_engine(tmp_path)
    await engine.receive("test", user_message("hello"))
    providers["disputes"].fail_open = True
    providers["agents"].fail_open = True
    session = await engine.receive("test", user_message("dispute it"))
    assert session is not None and session.current_provider == "faq"
    assert len(session.legs) == 1 and session.legs[0].is_open
    notice, answer = channel.texts()[-2:]
    assert notice.startswith("Sorry, nobody can take this conversation")
    # the message was not lost: the current provider still got it, and answered
    assert providers["faq"].messages() == ["hello", "dispute it"]
    assert answer == "faq: dispute it"


async def test_bot_requested_handoff_and_status(tmp_path: Path) -> None:
    engine, providers, _ = make_engine(tmp_path)

    def escalate(activity: Activity) -> list[Activity]:
        return [
            Activity(type="message", text="Let me get a specialist."),
            Activity(
                type="event",
                name=HandoffEventNames.INITIATE,
                value={"provider": "disputes", "reason": "needs a specialist"},
            ),
        ]

    providers["faq"].answer = escalate
    session = await engine.receive("test", user_message("hello"))
    assert session is not None and session.current_provider == "disputes"
    assert session.legs[0].close_reason == "needs a specialist"
    assert providers["faq"].statuses() == ["accepted"]


async def test_agent_hand_back_returns_to_the_bot_with_completed(tmp_path: Path) -> None:
    engine, providers, channel = make_engine(tmp_path)
    await engine.receive("test", user_message("hello"))
    session = await engine.receive("test", user_message("fraud on my card"))
    assert session is not None and session.current_provider == "agents"
    desk_conv = session.legs[-1].provider_conversation_id
    # sticky: the router keeps the conversation with the agent
    await engine.receive("test", user_message("my balance?"))
    assert providers["agents"].messages() == ["fraud on my card", "my balance?"]
    await engine.host.provider_activity(
        "agents", desk_conv, Activity(type="message", text="I've blocked the card.")
    )
    await engine.outbox.settled("test", "c1")  # replies go out in a task of their own
    assert channel.texts()[-1] == "I've blocked the card."
    await engine.host.hand_back("agents", desk_conv, "resolved by agent Dana")
    await engine.outbox.settled("test", "c1")
    session = await engine.store.get(session.id)
    assert session is not None
    assert [leg.provider for leg in session.legs] == ["faq", "agents", "faq"]
    assert session.legs[1].close_reason == "resolved by agent Dana"
    assert providers["faq"].statuses() == ["completed"]
    assert channel.texts()[-1] == "You're back with the faq desk. Anything else I can help with?"


async def test_duplicate_platform_message_is_processed_once(tmp_path: Path) -> None:
    engine, providers, _ = make_engine(tmp_path)
    assert await engine.receive("test", user_message("hello", msg_id="m1")) is not None
    assert await engine.receive("test", user_message("hello", msg_id="m1")) is None
    assert providers["faq"].messages() == ["hello"]


async def test_replies_wait_in_the_outbox_while_the_channel_is_down(tmp_path: Path) -> None:
    engine, _, channel = make_engine(tmp_path)
    channel.down = True
    await engine.receive("test", user_message("hello"))
    await engine.receive("test", user_message("my balance"))
    assert channel.sent == []
    pending = await engine.store.outbox_pending("test", "c1")
    assert [e.activity["text"] for e in pending] == ["faq: hello", "faq: my balance"]
    channel.down = False
    assert await engine.outbox.flush("test", "c1") == 2
    assert channel.texts() == ["faq: hello", "faq: my balance"]
    assert await engine.store.outbox_pending("test", "c1") == []


async def test_idle_sessions_expire_and_close_their_leg(tmp_path: Path) -> None:
    engine, providers, _ = make_engine(tmp_path)
    session = await engine.receive("test", user_message("hello"))
    assert session is not None
    engine.config.midtier.session.idle_timeout_s = 1e-9  # everything is idle now
    assert await engine.expire_idle() == 1
    closed = await engine.store.get(session.id)
    assert closed is not None and closed.status == "closed"
    assert closed.legs[0].close_reason == "expired"
    assert providers["faq"].closed == [(closed.legs[0].provider_conversation_id, "expired")]
    # the next message of that conversation starts a new session
    fresh = await engine.receive("test", user_message("hello again"))
    assert fresh is not None and fresh.id != session.id


async def test_expiry_closes_idle_sessions_beyond_one_page_in_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expiry, "IDLE_PAGE", 2)
    engine, providers, _ = make_engine(tmp_path)
    for n in range(5):
        await engine.receive("test", user_message("hello", conversation=f"c{n}"))
    engine.config.midtier.session.idle_timeout_s = 1e-9  # everything is idle now
    assert await engine.expire_idle() == 5
    assert await engine.store.list_sessions(status="active") == []
    assert len(providers["faq"].closed) == 5
    assert engine.pool.open_legs["faq"] == 0


async def test_expecting_input_hint_is_remembered_on_the_leg(tmp_path: Path) -> None:
    engine, providers, _ = make_engine(tmp_path)
    providers["faq"].answer = lambda a: [
        Activity(type="message", text="Which account?", input_hint="expectingInput")
    ]
    session = await engine.receive("test", user_message("hello"))
    assert session is not None and session.legs[-1].data["expecting_input"] is True
    # a so-so "dispute" guess does not pull the user out of the question
    engine.understanding.classifier.keywords["coffee"] = "dispute_charge"  # type: ignore[attr-defined]
    providers["faq"].answer = None
    session = await engine.receive("test", user_message("savings"))
    assert session is not None and session.legs[-1].data["expecting_input"] is False


async def test_a_provider_that_times_out_hands_over_to_the_fallback(tmp_path: Path) -> None:
    engine, providers, channel = make_engine(tmp_path)
    await engine.receive("test", user_message("hello"))
    providers["faq"].hang = asyncio.Event()  # never set: faq stops answering
    session = await engine.receive("test", user_message("my balance"))
    assert session is not None and session.current_provider == "agents"
    assert providers["agents"].messages() == ["my balance"]
    assert (
        channel.texts()[-2] == "Sorry, something went wrong on our side. Let me get you some help."
    )


async def test_failed_handoff_request_tells_the_bot_and_the_user(tmp_path: Path) -> None:
    engine, providers, channel = make_engine(tmp_path)
    providers["faq"].answer = lambda a: [
        Activity(type="event", name=HandoffEventNames.INITIATE, value={"provider": "disputes"})
    ]
    providers["disputes"].fail_open = True
    providers["agents"].fail_open = True
    session = await engine.receive("test", user_message("hello"))
    assert session is not None and session.current_provider == "faq"
    assert providers["faq"].statuses() == ["failed"]
    assert channel.texts()[-1].startswith("Sorry, nobody can take this conversation")


async def test_agent_acceptance_reaches_the_bot_that_handed_over(tmp_path: Path) -> None:
    engine, providers, _ = make_engine(tmp_path)
    providers["faq"].answer = lambda a: [
        Activity(type="event", name=HandoffEventNames.INITIATE, value={"provider": "agents"})
    ]
    session = await engine.receive("test", user_message("hello"))
    assert session is not None and session.current_provider == "agents"
    assert providers["faq"].statuses() == []  # a person has not taken it yet
    desk = session.legs[-1].provider_conversation_id
    await engine.host.provider_activity(
        "agents",
        desk,
        Activity(type="event", name=HandoffEventNames.STATUS, value={"state": "accepted"}),
    )
    assert providers["faq"].statuses() == ["accepted"]


async def test_transfer_moves_the_conversation_to_the_named_provider(tmp_path: Path) -> None:
    engine, providers, channel = make_engine(tmp_path)
    await engine.receive("test", user_message("fraud!"))
    session = (await engine.store.list_sessions())[0]
    desk = session.legs[-1].provider_conversation_id
    await engine.host.transfer("agents", desk, "disputes", "transferred by agent Dana")
    await engine.outbox.settled("test", "c1")  # replies go out in a task of their own
    session = await engine.store.get(session.id)
    assert session is not None and [leg.provider for leg in session.legs] == ["agents", "disputes"]
    assert session.legs[0].close_reason == "transferred by agent Dana"
    assert providers["disputes"].opened[0].reason == "transferred by agent Dana"
    assert (
        channel.texts()[-1]
        == "One moment, I'm passing you to the disputes desk. You can keep typing."
    )


async def test_replies_for_unknown_or_closed_provider_conversations_are_refused(
    tmp_path: Path,
) -> None:
    engine, _, channel = make_engine(tmp_path)
    await engine.receive("test", user_message("hello"))
    await engine.receive("test", user_message("dispute"))
    session = (await engine.store.list_sessions())[0]
    old = session.legs[0].provider_conversation_id
    sent = len(channel.sent)
    with pytest.raises(SessionClosed):
        await engine.host.provider_activity("faq", old, Activity(type="message", text="late"))
    with pytest.raises(NotFound):
        await engine.host.provider_activity("faq", "nope", Activity(type="message", text="who?"))
    await engine.outbox.idle()
    assert len(channel.sent) == sent  # nothing reached the user


async def test_a_new_reply_never_overtakes_waiting_ones(tmp_path: Path) -> None:
    engine, _, channel = make_engine(tmp_path)
    channel.down = True
    await engine.receive("test", user_message("hello"))
    channel.down = False  # back, but nobody has flushed yet
    await engine.receive("test", user_message("my balance"))
    assert channel.texts() == ["faq: hello", "faq: my balance"]
    assert await engine.store.outbox_pending("test", "c1") == []
    await engine.receive("test", user_message("hello again"))  # straight through now
    assert channel.texts()[-1] == "faq: hello again"


async def test_resolve_returns_to_the_bot_that_asked_for_the_handoff(tmp_path: Path) -> None:
    engine, providers, _ = make_engine(tmp_path)
    await engine.receive("test", user_message("hello"))  # faq, the default
    await engine.receive("test", user_message("dispute"))  # disputes
    providers["disputes"].answer = lambda a: [
        Activity(type="event", name=HandoffEventNames.INITIATE, value={"provider": "agents"})
    ]
    session = await engine.receive("test", user_message("escalate please"))
    assert session is not None and session.current_provider == "agents"
    await engine.host.hand_back("agents", session.legs[-1].provider_conversation_id, "resolved")
    session = await engine.store.get(session.id)
    assert session is not None
    assert [leg.provider for leg in session.legs] == ["faq", "disputes", "agents", "disputes"]
    assert providers["disputes"].statuses() == ["completed"]
    assert providers["faq"].statuses() == []


async def test_resolve_of_a_routed_conversation_goes_to_the_home_bot(tmp_path: Path) -> None:
    engine, providers, _ = make_engine(tmp_path)
    await engine.receive("test", user_message("dispute"))  # disputes first
    session = await engine.receive("test", user_message("fraud!"))  # routed to the desk
    assert session is not None and session.current_provider == "agents"
    await engine.host.hand_back("agents", session.legs[-1].provider_conversation_id, "resolved")
    session = await engine.store.get(session.id)
    assert session is not None
    assert [leg.provider for leg in session.legs] == ["disputes", "agents", "faq"]
    assert providers["faq"].statuses() == ["completed"]
    assert providers["disputes"].statuses() == ["completed"]  # it had handed over, too


async def test_bots_handing_a_conversation_back_and_forth_are_stopped(tmp_path: Path) -> None:
    engine, providers, _ = make_engine(tmp_path)
    await engine.receive("test", user_message("hello"))

    def bounce(to: str) -> object:
        async def deliver(leg: Leg, activity: Activity) -> list[Activity]:
            providers[leg.provider].delivered.append((leg.provider_conversation_id, activity))
            return [Activity(type="event", name=HandoffEventNames.INITIATE, value={"provider": to})]

        return deliver

    providers["faq"].deliver = bounce("disputes")  # type: ignore[method-assign]
    providers["disputes"].deliver = bounce("faq")  # type: ignore[method-assign]
    session = await engine.receive("test", user_message("ping"))
    assert session is not None
    # the first request plus MAX_HOPS - 1 nested ones were followed, then no more
    assert len(session.legs) == 1 + MAX_HOPS


async def test_a_provider_cannot_speak_as_the_user_or_another_provider(tmp_path: Path) -> None:
    engine, providers, channel = make_engine(tmp_path)
    providers["faq"].answer = lambda activity: [
        Activity(type="message", text="as the user", from_={"id": "user-1", "name": "Alice"}),
        Activity(type="message", text="as disputes", from_={"id": "disputes", "name": "D"}),
        Activity(type="message", text="one of mine", from_={"id": "faq:kim", "name": "Kim"}),
    ]
    await engine.receive("test", user_message("hello"))
    shown = [(a.text, a.from_.id, a.from_.name, a.from_.role) for a in channel.sent if a.from_]
    assert shown == [
        ("as the user", "faq", "the faq desk", "bot"),
        ("as disputes", "faq", "the faq desk", "bot"),
        ("one of mine", "faq:kim", "Kim", "bot"),  # a provider's own people keep their names
    ]
