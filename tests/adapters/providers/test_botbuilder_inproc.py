"""BotbuilderProvider and MidTierBotAdapter, driven with real botbuilder ActivityHandlers."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from botbuilder.core import ActivityHandler, CardFactory, MessageFactory, TurnContext
from botbuilder.schema import Activity as BfActivity
from botbuilder.schema import (
    CardAction,
    ConversationReference,
    HeroCard,
    InputHints,
    Mention,
    SuggestedActions,
)
from botbuilder.schema import ChannelAccount as BfAccount
from support.providers import build, pooled

from adapters.providers import REGISTRY
from adapters.providers.botbuilder_inproc import (
    BotbuilderProvider,
    from_botbuilder,
    load_bot,
    to_botbuilder,
)
from connector.activity import Activity, ChannelAccount, ConversationAccount
from connector.errors import (
    AuthCodeError,
    ConfigError,
    ConfigErrors,
    ProviderError,
    ProviderTimeout,
)
from connector.provider_protocol import HandoffContext
from connector.sessions import Leg, MidTierSession

BOT_CONFIGS = Path(__file__).resolve().parents[3] / "bot_configs"
GRANT = {"session_id": "mts_1", "user_id": "u1", "claims": {"name": "Dana"}, "transcript": []}


class RecordingHost:
    """A ProviderHost that records provider-side calls and redeems one known code."""

    def __init__(self) -> None:
        self.activities: list[tuple[str, str, Activity]] = []
        self.redeemed: list[tuple[str, str]] = []
        self.legs: dict[str, Leg] = {}  # provider conversation id -> its open leg

    async def proactive(
        self,
        provider: str,
        conversation_id: str,
        run: Callable[[Leg], Awaitable[list[Activity]]],
    ) -> None:
        for activity in await run(self.legs[conversation_id]):
            self.activities.append((provider, conversation_id, activity))

    async def provider_activity(
        self, provider: str, conversation_id: str, activity: Activity
    ) -> None:
        self.activities.append((provider, conversation_id, activity))

    async def hand_back(self, provider: str, conversation_id: str, reason: str) -> None:
        raise AssertionError("not expected in these tests")

    async def transfer(self, provider: str, conversation_id: str, target: str, reason: str) -> None:
        raise AssertionError("not expected in these tests")

    async def update_leg_data(
        self, provider: str, conversation_id: str, data: dict[str, Any]
    ) -> None:
        raise AssertionError("not expected in these tests")

    async def redeem(self, code: str, provider: str) -> dict[str, Any]:
        self.redeemed.append((code, provider))
        if code != "code-ok":
            raise AuthCodeError("unknown code")
        return dict(GRANT)


class EchoBot(ActivityHandler):
    """Echoes; 'edit', 'delete' and 'internals' exercise the rest of the adapter."""

    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.reference: ConversationReference | None = None

    async def on_turn(self, turn_context: TurnContext) -> None:
        self.seen.append(turn_context.activity)
        await super().on_turn(turn_context)

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        text = turn_context.activity.text
        self.reference = TurnContext.get_conversation_reference(turn_context.activity)
        if text == "edit":
            sent = await turn_context.send_activity("draft")
            update = MessageFactory.text("final")
            update.id = sent.id
            await turn_context.update_activity(update)
        elif text == "delete":
            sent = await turn_context.send_activity("oops")
            await turn_context.delete_activity(sent.id)
        elif text == "internals":
            await turn_context.send_trace_activity("debug", {"step": 1})
            await turn_context.send_activity("done")
        else:
            await turn_context.send_activity(f"echo: {text}")

    async def on_end_of_conversation_activity(self, turn_context: TurnContext) -> None:
        await turn_context.send_activity("bye")  # midtier drops replies to a close

    async def on_event(self, turn_context: TurnContext) -> None:
        redeem = turn_context.turn_state["midtier.redeem"]
        try:
            grant = await redeem(turn_context.activity.value["auth_code"])
        except AuthCodeError:
            await turn_context.send_activity("no grant")
            return
        await turn_context.send_activity(f"hello {grant['claims']['name']}")


class FailingBot(ActivityHandler):
    async def on_message_activity(self, turn_context: TurnContext) -> None:
        raise RuntimeError("boom")


class TimingOutBot(ActivityHandler):
    """A bot whose own call to some service timed out."""

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        raise TimeoutError("the weather service did not answer")


class StuckBot(ActivityHandler):
    """Never answers a message; records that its turn was cancelled."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        try:
            await asyncio.Event().wait()  # never set: the turn ends only when cancelled
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


class SharesItsActivityBot(ActivityHandler):
    """Sends one activity object twice, through a handler that changes what goes out."""

    def __init__(self) -> None:
        self.mine = BfActivity(type="message", text="hi")
        self.handled: list[tuple[str, str, str, str]] = []

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        async def shout(context: TurnContext, activities: list[Any], send: Any) -> Any:
            for a in activities:
                self.handled.append((a.from_property.id, a.recipient.id, a.input_hint, a.text))
                a.text += "!"
            return await send()

        turn_context.on_send_activities(shout)
        await turn_context.send_activity(self.mine)
        await turn_context.send_activities([self.mine])


def message(text: str, intent: str | None = None, **extra: Any) -> Activity:
    """A user message as a channel adapter hands it to the core."""
    return Activity.from_wire(
        {
            "type": "message",
            "id": f"m-{text[:8]}",
            "channelId": "webchat",
            "from": {"id": "u1", "name": "Dana", "role": "user"},
            "conversation": {"id": "chan-conv-1"},
            "text": text,
            "channelData": {"midtier": {"intent": intent, "confidence": 0.9}},
            **extra,
        }
    )


async def started(
    bot: str, *, name: str = "faq", timeout_s: float = 5.0
) -> tuple[BotbuilderProvider, Leg, RecordingHost]:
    """A started provider and a leg opened on it."""
    host = RecordingHost()
    provider = build(BotbuilderProvider, name, host, timeout_s=timeout_s, bot=bot)
    await provider.start()
    session = MidTierSession(user_id="u1", channel="webchat", channel_conversation_id="chan-conv-1")
    leg = Leg(channel="webchat", channel_conversation_id="chan-conv-1", provider=name)
    context = HandoffContext(session_id=session.id, user_id="u1", channel="webchat", reason="t")
    leg.provider_conversation_id = await provider.open(session, leg, context)
    host.legs[leg.provider_conversation_id] = leg
    return provider, leg, host


@pytest.fixture
def bot_configs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BOT_CONFIGS))


async def test_echo_reply_comes_back_inline_from_the_bot_in_the_provider_conversation() -> None:
    provider, leg, host = await started(f"{__name__}:EchoBot")
    replies = await provider.deliver(leg, message("hello"))
    assert [r.text for r in replies] == ["echo: hello"]
    reply = replies[0]
    assert reply.conversation is not None
    assert reply.conversation.id == leg.provider_conversation_id
    assert reply.from_ is not None and (reply.from_.id, reply.from_.role) == ("faq", "bot")
    assert reply.recipient is not None and reply.recipient.id == "u1"
    assert reply.id and reply.timestamp is not None
    incoming = provider.bot.seen[0]
    assert incoming.conversation.id == leg.provider_conversation_id
    assert (incoming.recipient.id, incoming.from_property.id) == ("faq", "u1")
    assert host.activities == []


async def test_what_a_bot_sends_is_addressed_on_a_copy_that_its_handlers_see() -> None:
    provider, leg, _ = await started(f"{__name__}:SharesItsActivityBot")
    replies = await provider.deliver(leg, message("hello"))
    assert [r.text for r in replies] == ["hi!", "hi!"]
    assert len({r.id for r in replies}) == 2
    assert all(
        r.conversation and r.conversation.id == leg.provider_conversation_id for r in replies
    )
    bot = provider.bot
    assert bot.handled == [("faq", "u1", "acceptingInput", "hi")] * 2
    mine = bot.mine  # the bot's own object, sent twice, is as it made it
    assert (mine.text, mine.recipient, mine.conversation, mine.input_hint) == (
        "hi",
        None,
        None,
        None,
    )


async def test_open_returns_a_new_unguessable_conversation_id_each_time() -> None:
    provider, leg, _ = await started(f"{__name__}:EchoBot")
    session = MidTierSession(user_id="u1", channel="webchat", channel_conversation_id="c")
    context = HandoffContext(session_id=session.id, user_id="u1", channel="webchat", reason="t")
    again = await provider.open(session, leg, context)
    assert again != leg.provider_conversation_id
    assert leg.data["user_id"] == "u1"
    assert len(again) >= 22 and re.fullmatch(r"bb_[A-Za-z0-9_-]+", again)


async def test_bot_exception_becomes_provider_error_from_it() -> None:
    provider, leg, _ = await started(f"{__name__}:FailingBot")
    with pytest.raises(ProviderError) as caught:
        await provider.deliver(leg, message("hi"))
    assert caught.value.provider == "faq"
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert not isinstance(caught.value, ProviderTimeout)


async def test_a_stuck_bot_is_cut_off_by_the_pool_at_its_deadline() -> None:
    provider, leg, _ = await started(f"{__name__}:StuckBot", timeout_s=0.3)
    pool = pooled(provider)
    with pytest.raises(ProviderTimeout, match=r"no answer to message within 0\.3s") as caught:
        await pool.deliver(leg, message("hi"))
    assert caught.value.provider == "faq"
    assert provider.bot.cancelled.is_set()  # the turn does not run on behind the user's back


async def test_a_stuck_bot_alone_runs_past_its_deadline_until_cancelled() -> None:
    """The provider sets no deadline of its own: the pool's is the only one."""
    provider, leg, _ = await started(f"{__name__}:StuckBot", timeout_s=0.3)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(2 * provider.config.timeout_s) as outer:
            await provider.deliver(leg, message("hi"))
    assert outer.expired()  # ended by this deadline, not by anything the provider raised
    assert provider.bot.cancelled.is_set()


async def test_a_bots_own_timeout_error_is_a_failure_not_the_deadline() -> None:
    provider, leg, _ = await started(f"{__name__}:TimingOutBot")
    with pytest.raises(ProviderError, match="the bot failed: TimeoutError") as caught:
        await pooled(provider).deliver(leg, message("hi"))
    assert not isinstance(caught.value, ProviderTimeout)
    assert isinstance(caught.value.__cause__, TimeoutError)


async def test_proactive_reply_reaches_the_host_after_the_turn() -> None:
    provider, leg, host = await started(f"{__name__}:EchoBot")
    await provider.deliver(leg, message("remind me"))
    calls_during_turn: list[int] = []

    async def remind(turn_context: TurnContext) -> None:
        await turn_context.send_activity("your reminder")
        calls_during_turn.append(len(host.activities))

    await provider.adapter.continue_conversation(provider.bot.reference, remind, "faq")
    assert calls_during_turn == [0]
    [(name, conversation_id, activity)] = host.activities
    assert (name, conversation_id) == ("faq", leg.provider_conversation_id)
    assert activity.text == "your reminder"
    assert activity.from_ is not None and activity.from_.id == "faq"
    assert activity.recipient is not None and activity.recipient.id == "u1"


async def test_bot_redeems_auth_code_through_turn_state() -> None:
    provider, leg, host = await started(f"{__name__}:EchoBot")
    event = Activity(type="event", name="midtier.handoff", value={"auth_code": "code-ok"})
    assert [r.text for r in await provider.deliver(leg, event)] == ["hello Dana"]
    event = Activity(type="event", name="midtier.handoff", value={"auth_code": "stolen"})
    assert [r.text for r in await provider.deliver(leg, event)] == ["no grant"]
    assert host.redeemed == [("code-ok", "faq"), ("stolen", "faq")]


async def test_update_and_delete_are_forwarded_as_activities() -> None:
    provider, leg, _ = await started(f"{__name__}:EchoBot")
    draft, update = await provider.deliver(leg, message("edit"))
    assert (update.type, update.id, update.text) == ("messageUpdate", draft.id, "final")
    sent, delete = await provider.deliver(leg, message("delete"))
    assert (delete.type, delete.id) == ("messageDelete", sent.id)
    assert delete.conversation is not None
    assert delete.conversation.id == leg.provider_conversation_id


async def test_trace_activities_are_not_forwarded_outside_the_emulator() -> None:
    provider, leg, _ = await started(f"{__name__}:EchoBot")
    replies = await provider.deliver(leg, message("internals"))
    assert [(r.type, r.text) for r in replies] == [("message", "done")]


async def test_close_sends_end_of_conversation_and_drops_replies() -> None:
    provider, leg, host = await started(f"{__name__}:EchoBot")
    assert await provider.close(leg, "switched to agents") is None
    end = provider.bot.seen[-1]
    assert (end.type, end.code, end.text) == (
        "endOfConversation",
        "completedSuccessfully",
        "switched to agents",
    )
    assert end.conversation.id == leg.provider_conversation_id
    assert end.from_property.id == "u1"  # open() kept the user in leg.data for this
    assert host.activities == []


async def test_health_is_true_once_started() -> None:
    provider = build(BotbuilderProvider, "faq", RecordingHost(), bot=f"{__name__}.EchoBot")
    assert await provider.health() is False
    await provider.start()
    assert await provider.health() is True
    assert isinstance(provider.bot, EchoBot)  # the dotted form works too


@pytest.mark.parametrize(
    "path",
    ["no_such_pkg.bots:Bot", "bots.faq:NoSuchBot", "bots.faq", "not a path", "bots.faq:ANSWERS"],
)
async def test_bad_bot_path_is_a_config_error_naming_the_key(bot_configs: None, path: str) -> None:
    provider = build(BotbuilderProvider, "faq", RecordingHost(), bot=path)
    with pytest.raises(ConfigError) as caught:
        await provider.start()
    assert (caught.value.file, caught.value.key) == ("providers.yaml", "providers.faq.bot")


@pytest.mark.parametrize(
    ("block", "key", "why"),
    [
        ({}, "bot", "Field required"),
        ({"bot": "  "}, "bot", "at least 1 character"),
        ({"bot": ["bots.faq:FaqBot"]}, "bot", "valid string"),
        ({"bot": "bots.faq:FaqBot", "bots": "bots.faq:FaqBot"}, "bots", "unknown key"),
    ],
)
def test_bad_bot_settings_are_config_errors_naming_file_and_key(
    block: dict[str, Any], key: str, why: str
) -> None:
    with pytest.raises(ConfigErrors) as caught:
        build(BotbuilderProvider, "faq", RecordingHost(), **block)
    [error] = caught.value.errors
    assert (error.file, error.key) == ("providers.yaml", f"providers.faq.{key}")
    assert why in error.message


def test_loading_a_bot_without_a_path_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_bot("faq", None)
    assert caught.value.key == "providers.faq.bot"


def test_registry_names_both_provider_kinds() -> None:
    assert REGISTRY["botbuilder"] == "adapters.providers.botbuilder_inproc:BotbuilderProvider"
    assert REGISTRY["agent_desk"] == "adapters.providers.agent_desk:AgentDeskProvider"


FULL = {
    "type": "message",
    "id": "act-1",
    "timestamp": "2024-05-01T10:00:00Z",
    "localTimestamp": "2024-05-01T12:00:00+02:00",
    "localTimezone": "Europe/Berlin",
    "channelId": "webchat",
    "from": {"id": "u1", "name": "Dana", "role": "user", "aadObjectId": "aad-1"},
    "recipient": {"id": "faq", "role": "bot"},
    "conversation": {
        "id": "c1",
        "isGroup": False,
        "conversationType": "personal",
        "tenantId": "t1",
    },
    "text": "hi **there**",
    "textFormat": "markdown",
    "locale": "en-US",
    "attachments": [
        {
            "contentType": "image/png",
            "contentUrl": "https://x.test/a.png",
            "name": "a.png",
            "thumbnailUrl": "https://x.test/t.png",
        },
        {
            "contentType": "application/vnd.microsoft.card.hero",
            "content": {
                "title": "T",
                "buttons": [{"type": "imBack", "title": "Yes", "value": "yes"}],
            },
        },
    ],
    "entities": [
        {"type": "mention", "mentioned": {"id": "faq", "name": "FAQ"}, "text": "<at>FAQ</at>"}
    ],
    "suggestedActions": {
        "to": ["u1"],
        "actions": [{"type": "imBack", "title": "Fees", "value": "fees"}],
    },
    "serviceUrl": "https://example.test/",
    "replyToId": "act-0",
    "channelData": {
        "midtier": {"intent": "fees", "confidence": 0.91},
        "vendor": {"deep": [1, {"x": 2}]},
    },
    "value": {"k": "v"},
    "name": "some.name",
    "relatesTo": {
        "activityId": "a0",
        "user": {"id": "u1"},
        "bot": {"id": "faq"},
        "conversation": {"id": "c0"},
        "channelId": "webchat",
    },
    "inputHint": "expectingInput",
    "speak": "hi there",
    "vendorField": {"a": 1},
}


def test_conversion_round_trip_keeps_every_field() -> None:
    ours = Activity.from_wire(FULL)
    theirs = to_botbuilder(ours)
    assert theirs.from_property.aad_object_id == "aad-1"
    assert (theirs.conversation.tenant_id, theirs.conversation.is_group) == ("t1", False)
    assert (theirs.text_format, theirs.input_hint, theirs.speak) == (
        "markdown",
        "expectingInput",
        "hi there",
    )
    assert isinstance(theirs.local_timestamp, datetime)
    assert isinstance(theirs.relates_to, ConversationReference)
    assert theirs.relates_to.conversation.id == "c0"
    assert theirs.entities[0].type == "mention"
    assert theirs.attachments[0].thumbnail_url == "https://x.test/t.png"
    assert theirs.channel_data["vendor"] == {"deep": [1, {"x": 2}]}
    assert from_botbuilder(theirs).to_wire() == Activity.from_wire(FULL).to_wire() == FULL


def test_fields_set_in_python_after_creation_reach_the_bot_too() -> None:
    ours = Activity(
        text="hi",
        from_=ChannelAccount(id="u1", name="Dana", role="user"),
        conversation=ConversationAccount(id="c1", name="chat", is_group=True),
    )
    ours.speak = "hi there"  # set later, not validated in
    ours.input_hint = "expectingInput"
    theirs = to_botbuilder(ours)
    assert (theirs.speak, theirs.input_hint) == ("hi there", "expectingInput")
    assert (theirs.from_property.id, theirs.from_property.name) == ("u1", "Dana")
    assert theirs.from_property.role == "user"
    assert (theirs.conversation.name, theirs.conversation.is_group) == ("chat", True)
    assert theirs.recipient is None
    assert from_botbuilder(theirs).to_wire() == ours.to_wire()


def test_library_objects_a_bot_sends_become_plain_camel_case_data() -> None:
    card = HeroCard(title="Fees", buttons=[CardAction(type="imBack", title="More", value="more")])
    reply = MessageFactory.attachment(CardFactory.hero_card(card))
    reply.suggested_actions = SuggestedActions(
        actions=[CardAction(type="imBack", title="Yes", value="yes")]
    )
    reply.input_hint = InputHints.expecting_input
    reply.entities = [Mention(mentioned=BfAccount(id="u1"), text="<at>Dana</at>", type="mention")]
    wire = from_botbuilder(reply).to_wire()
    assert wire["attachments"] == [
        {
            "contentType": "application/vnd.microsoft.card.hero",
            "content": {
                "title": "Fees",
                "buttons": [{"type": "imBack", "title": "More", "value": "more"}],
            },
        }
    ]
    assert wire["suggestedActions"] == {
        "actions": [{"type": "imBack", "title": "Yes", "value": "yes"}]
    }
    assert wire["entities"] == [
        {"type": "mention", "mentioned": {"id": "u1"}, "text": "<at>Dana</at>"}
    ]
    assert wire["inputHint"] == "expectingInput"
    assert type(wire["inputHint"]) is str  # library enums become their values
