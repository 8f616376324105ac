"""adapters.botside.handoff against PROTOCOLS.md section 7, and the example bots that use it.

The example bots (bot_configs/bots) run through the real BotbuilderProvider.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botbuilder.core import TurnContext
from botbuilder.schema import (
    Activity,
    ChannelAccount,
    ConversationAccount,
    ConversationReference,
    Transcript,
)
from support.providers import build

from adapters.botside.handoff import (
    HandoffEventNames,
    HandoffStates,
    create_handoff_initiation,
    create_handoff_status,
)
from adapters.providers.botbuilder_adapter import MidTierBotAdapter
from adapters.providers.botbuilder_inproc import BotbuilderProvider
from connector import activity as midtier
from connector.errors import AuthCodeError
from connector.provider_protocol import HandoffContext
from connector.sessions import Leg, MidTierSession

BOT_CONFIGS = Path(__file__).resolve().parents[3] / "bot_configs"


class Host:
    """A ProviderHost that records what providers send and knows one authorization code."""

    def __init__(self) -> None:
        self.sent: list[midtier.Activity] = []
        self.redeemed: list[tuple[str, str]] = []

    async def provider_activity(self, provider: str, conversation_id: str, activity: Any) -> None:
        self.sent.append(activity)

    async def hand_back(self, provider: str, conversation_id: str, reason: str) -> None:
        raise AssertionError("not expected")

    async def transfer(self, provider: str, conversation_id: str, target: str, reason: str) -> None:
        raise AssertionError("not expected")

    async def update_leg_data(self, provider: str, conversation_id: str, data: Any) -> None:
        raise AssertionError("not expected")

    async def redeem(self, code: str, provider: str) -> dict[str, Any]:
        self.redeemed.append((code, provider))
        if code != "code-ok":
            raise AuthCodeError("unknown code")
        return {
            "session_id": "mts_1",
            "user_id": "u1",
            "claims": {"name": "Dana"},
            "transcript": [],
        }


def incoming() -> Activity:
    return Activity(
        type="message",
        id="in-7",
        channel_id="webchat",
        service_url="https://chat.example.test/",
        from_property=ChannelAccount(id="u1", name="Dana", role="user"),
        recipient=ChannelAccount(id="faq", role="bot"),
        conversation=ConversationAccount(id="bb_conv"),
        locale="en-GB",
        text="I want a person",
    )


def turn(activity: Activity) -> TurnContext:
    return TurnContext(MidTierBotAdapter(Host(), "faq"), activity)


def test_initiation_matches_every_row_of_the_protocol_table() -> None:
    context = turn(incoming())
    handoff_context = {"provider": "agents", "reason": "user asked for a person"}
    before = datetime.now(UTC)
    event = create_handoff_initiation(context, handoff_context)
    source = context.activity
    assert (event.type, event.name) == ("event", "handoff.initiate")
    assert event.value is handoff_context
    assert uuid.UUID(event.id).version == 4
    assert before <= event.timestamp <= datetime.now(UTC)
    assert event.timestamp.utcoffset() == timedelta(0)
    assert event.local_timezone
    assert event.conversation is source.conversation
    assert event.from_property is source.from_property  # the user, not the bot
    assert isinstance(event.relates_to, ConversationReference)
    ref = event.relates_to
    assert (ref.activity_id, ref.channel_id, ref.service_url) == (
        "in-7",
        "webchat",
        source.service_url,
    )
    assert (ref.user.id, ref.bot.id, ref.conversation.id) == ("u1", "faq", "bb_conv")
    assert event.reply_to_id == "in-7"
    assert (event.service_url, event.channel_id) == (source.service_url, "webchat")
    assert event.attachments == []
    assert event.entities == []


def test_transcript_is_attached_as_json_activities() -> None:
    context = turn(incoming())
    earlier = Activity(type="message", text="hello", from_property=ChannelAccount(id="u1"))
    ours = midtier.message("hi from midtier", sender=midtier.ChannelAccount(id="u1"))
    for transcript in ([earlier, ours], Transcript(activities=[earlier, ours])):
        event = create_handoff_initiation(context, {"intent": "talk_to_human"}, transcript)
        [attachment] = event.attachments
        assert (attachment.content_type, attachment.name) == ("application/json", "Transcript")
        first, second = attachment.content["activities"]
        assert first == {"type": "message", "text": "hello", "from": {"id": "u1"}}
        assert second == ours.to_wire()


def test_status_event_carries_state_and_message() -> None:
    conversation = ConversationAccount(id="bb_conv")
    failed = create_handoff_status(conversation, HandoffStates.FAILED, "no agents online")
    assert (failed.type, failed.name) == ("event", "handoff.status")
    assert failed.value == {"state": "failed", "message": "no agents online"}
    assert failed.conversation is conversation
    assert uuid.UUID(failed.id).version == 4
    assert (failed.attachments, failed.entities) == ([], [])
    completed = create_handoff_status(conversation, HandoffStates.COMPLETED)
    assert completed.value == {"state": "completed"}
    with pytest.raises(ValueError):
        create_handoff_status(conversation, "")


def test_names_and_states_are_the_protocol_strings() -> None:
    assert (HandoffEventNames.INITIATE, HandoffEventNames.STATUS) == (
        "handoff.initiate",
        "handoff.status",
    )
    # Spelt out twice, once for each side of the process boundary: the two must agree.
    assert (HandoffEventNames.INITIATE, HandoffEventNames.STATUS) == (
        midtier.HandoffEventNames.INITIATE,
        midtier.HandoffEventNames.STATUS,
    )
    assert (HandoffStates.ACCEPTED, HandoffStates.FAILED, HandoffStates.COMPLETED) == (
        "accepted",
        "failed",
        "completed",
    )


# --------------------------------------------------------------------------- the example bots


@pytest.fixture
def bot_configs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BOT_CONFIGS))


async def started(bot: str, name: str) -> tuple[BotbuilderProvider, Leg, Host]:
    host = Host()
    provider = build(BotbuilderProvider, name, host, bot=bot)
    await provider.start()
    session = MidTierSession(user_id="u1", channel="webchat", channel_conversation_id="cc1")
    leg = Leg(channel="webchat", channel_conversation_id="cc1", provider=name)
    context = HandoffContext(session_id=session.id, user_id="u1", channel="webchat", reason="t")
    leg.provider_conversation_id = await provider.open(session, leg, context)
    return provider, leg, host


def says(text: str, intent: str | None = None) -> midtier.Activity:
    return midtier.Activity.from_wire(
        {
            "type": "message",
            "id": uuid.uuid4().hex,
            "from": {"id": "u1", "role": "user"},
            "text": text,
            "channelData": {"midtier": {"intent": intent, "confidence": 0.9}},
        }
    )


async def test_faq_bot_answers_check_balance(bot_configs: None) -> None:
    from bots.faq import ANSWERS

    provider, leg, _ = await started("bots.faq:FaqBot", "faq")
    replies = await provider.deliver(leg, says("what's my balance?", "check_balance"))
    assert [r.text for r in replies] == [ANSWERS["check_balance"]]
    [unknown] = await provider.deliver(leg, says("blorp"))
    assert unknown.text is not None and unknown.text.startswith("Sorry, I didn't get that.")


async def test_faq_bot_asks_for_agents_when_the_user_wants_a_human(bot_configs: None) -> None:
    provider, leg, _ = await started("bots.faq:FaqBot", "faq")
    [event] = await provider.deliver(leg, says("can I talk to a human please", "fees"))
    assert event.is_event("handoff.initiate")
    assert event.value == {"provider": "agents", "reason": "user asked for a person"}
    for state in ("accepted", "failed", "completed"):
        status = midtier.Activity(type="event", name="handoff.status", value={"state": state})
        assert await provider.deliver(leg, status) == []


def handoff_event(**fields: Any) -> midtier.Activity:
    """The ``midtier.handoff`` event of a routed switch to the disputes bot, code included."""
    context = HandoffContext(
        session_id="mts_1",
        user_id="u1",
        channel="webchat",
        reason="route",
        intent="dispute_charge",
        auth_code="code-ok",
        **fields,
    )
    return midtier.Activity(
        type="event", name="midtier.handoff", value=context.model_dump(mode="json")
    )


async def test_disputes_bot_greets_with_context_and_keeps_the_code_to_itself(
    bot_configs: None,
) -> None:
    provider, leg, host = await started("bots.disputes:DisputesBot", "disputes")
    [greeting] = await provider.deliver(leg, handoff_event(from_provider="faq"))
    assert greeting.text == (
        "Hi Dana, I'm the disputes assistant. I see you asked about a charge you don't recognise."
    )
    assert host.redeemed == [("code-ok", "disputes")]
    assert "code-ok" not in repr(greeting.to_wire())
    [state] = leg.data["botbuilder_state"].values()  # the claims, for the leg's later turns
    assert state["acme"]["claims"] == {"name": "Dana"}


async def test_a_handoff_without_claims_leaves_the_leg_without_state(bot_configs: None) -> None:
    provider, leg, host = await started("bots.faq:FaqBot", "faq")
    event = handoff_event()
    event.value["auth_code"] = "code-used"  # redeemed already: no claims come of it
    assert await provider.deliver(leg, event) == []
    assert host.redeemed == [("code-used", "faq")]
    assert leg.data.get("botbuilder_state", {}) == {}


async def test_first_bot_of_a_conversation_redeems_but_does_not_greet(bot_configs: None) -> None:
    provider, leg, host = await started("bots.disputes:DisputesBot", "disputes")
    assert await provider.deliver(leg, handoff_event()) == []
    assert host.redeemed == [("code-ok", "disputes")]


async def test_disputes_bot_files_a_dispute_with_a_reference(bot_configs: None) -> None:
    provider, leg, _ = await started("bots.disputes:DisputesBot", "disputes")
    [ask_merchant] = await provider.deliver(leg, says("I don't know this charge", "dispute_charge"))
    [ask_amount] = await provider.deliver(leg, says("Coffee Corp"))
    [filed] = await provider.deliver(leg, says("$42.50"))
    assert "merchant" in (ask_merchant.text or "")
    assert ask_merchant.input_hint == "expectingInput"
    assert "How much" in (ask_amount.text or "")
    reference = re.search(r"\bDSP-\d{6}\b", filed.text or "")
    assert reference is not None
    assert "$42.50 at Coffee Corp" in (filed.text or "")
    [status] = await provider.deliver(leg, says("any news on my dispute?", "dispute_status"))
    assert reference.group() in (status.text or "")


async def test_disputes_bot_escalates_high_value_disputes(bot_configs: None) -> None:
    provider, leg, _ = await started("bots.disputes:DisputesBot", "disputes")
    await provider.deliver(leg, says("I don't recognise a charge", "dispute_charge"))
    await provider.deliver(leg, says("Big Electronics"))
    filed, event = await provider.deliver(leg, says("2500"))
    assert re.search(r"\bDSP-\d{6}\b", filed.text or "")
    assert event.is_event("handoff.initiate")
    assert isinstance(event.value, dict)
    assert (event.value["provider"], event.value["reason"]) == ("agents", "high-value dispute")
    assert event.value["dispute"]["amount"] == "2500"
    [transcript] = event.attachments or []
    assert (transcript.content_type, transcript.name) == ("application/json", "Transcript")
    assert [a["text"] for a in transcript.content["activities"]] == ["2500"]


async def test_closing_the_leg_makes_the_disputes_bot_forget_the_flow(bot_configs: None) -> None:
    from bots.disputes import MENU

    provider, leg, _ = await started("bots.disputes:DisputesBot", "disputes")
    await provider.deliver(leg, says("I don't recognise a charge", "dispute_charge"))
    await provider.close(leg, "switched to agents")
    [reply] = await provider.deliver(leg, says("Coffee Corp"))
    assert reply.text == MENU  # not "How much was the charge?"
