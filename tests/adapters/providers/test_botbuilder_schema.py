"""The botbuilder boundary's conversions: the objects a bot gets, what midtier gets back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botbuilder.core import ActivityHandler, Middleware, TurnContext
from botbuilder.schema import Activity as BfActivity
from botbuilder.schema import ChannelAccount as BfAccount
from botbuilder.schema import ConversationAccount as BfConversation
from botbuilder.schema import InputHints, ResourceResponse
from support.providers import build

from adapters.providers.botbuilder_inproc import BotbuilderProvider
from adapters.providers.botbuilder_schema import (
    account,
    resource_response,
    text_message,
    to_botbuilder,
)
from connector.activity import Activity, ChannelAccount, ConversationAccount
from connector.errors import ProviderError
from connector.sessions import Leg

WHEN = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


def user_message() -> Activity:
    """A web chat message as the core delivers it, every field the bot reads set."""
    return Activity.from_wire(
        {
            "type": "message",
            "id": "act-1",
            "timestamp": WHEN.isoformat(),
            "channelId": "webchat",
            "from": {"id": "u1", "name": "Dana", "role": "user"},
            "recipient": {"id": "midtier", "role": "bot"},
            "conversation": {"id": "c1", "name": "help", "isGroup": False},
            "text": "what are the fees?",
            "locale": "en-US",
            "serviceUrl": "https://example.test/",
            "replyToId": "act-0",
            "channelData": {"midtier": {"intent": "fees", "confidence": 0.91}},
            "value": {"k": "v"},
            "name": "some.name",
        }
    )


def test_the_activity_a_bot_gets_equals_the_one_botbuilders_constructors_build() -> None:
    theirs = to_botbuilder(user_message())
    expected = BfActivity(
        type="message",
        id="act-1",
        timestamp=WHEN,
        channel_id="webchat",
        from_property=BfAccount(id="u1", name="Dana", role="user"),
        recipient=BfAccount(id="midtier", role="bot"),
        conversation=BfConversation(id="c1", name="help", is_group=False),
        text="what are the fees?",
        locale="en-US",
        service_url="https://example.test/",
        reply_to_id="act-0",
        channel_data={"midtier": {"intent": "fees", "confidence": 0.91}},
        value={"k": "v"},
        name="some.name",
    )
    assert type(theirs) is BfActivity
    assert type(theirs.from_property) is BfAccount
    assert type(theirs.conversation) is BfConversation
    # msrest compares models by their instance dicts: every attribute, the accounts' too.
    assert theirs == expected
    assert sorted(vars(theirs)) == sorted(vars(expected))


def test_each_object_built_for_a_bot_is_its_own() -> None:
    ours = user_message()
    first, second = to_botbuilder(ours), to_botbuilder(ours)
    first.additional_properties["mine"] = 1
    first.from_property.additional_properties["mine"] = 1
    first.conversation.additional_properties["mine"] = 1
    first.from_property.name = "changed by the bot"
    assert second.additional_properties == {}
    assert second.from_property.additional_properties == {}
    assert second.conversation.additional_properties == {}
    assert second.from_property.name == "Dana"
    assert to_botbuilder(ours) == second
    assert BfActivity().additional_properties == {}


def test_the_objects_built_for_a_turn_equal_those_of_botbuilders_constructors() -> None:
    assert account("faq", "bot") == BfAccount(id="faq", role="bot")
    message = text_message("hi", InputHints.accepting_input, "hi there")
    assert message == BfActivity(text="hi", input_hint=InputHints.accepting_input, speak="hi there")
    assert resource_response("r1") == ResourceResponse(id="r1")
    assert type(account("faq", "bot")) is BfAccount
    assert type(message) is BfActivity
    assert type(resource_response("r1")) is ResourceResponse


class ReaddressingBot(ActivityHandler):
    """Says back what it got, through a handler that readdresses (or spoils) what goes out."""

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        async def readdress(context: TurnContext, activities: list[Any], send: Any) -> Any:
            for activity in activities:
                if activity.text == "as the helper":
                    activity.from_property = BfAccount(id="helper", name="Helper", role="bot")
                elif activity.text == "without ids":
                    activity.from_property = BfAccount(name="nobody")
                    activity.conversation = BfConversation(name="nowhere")
                elif activity.text == "unreadable":
                    activity.channel_data = ["not", "an", "object"]
            return await send()

        turn_context.on_send_activities(readdress)
        text = turn_context.activity.text
        if text == "say it":
            await turn_context.send_activity("said", speak="spoken", input_hint="expectingInput")
        elif text == "fail":
            raise RuntimeError("the bot broke")
        else:
            await turn_context.send_activity(text)


class Tagging(Middleware):  # type: ignore[misc]
    """Middleware that tags the turn's activity and records each reply id it saw go out."""

    def __init__(self) -> None:
        self.replies: list[str] = []

    async def on_turn(self, context: TurnContext, logic: Any) -> None:
        context.activity.text = f"{context.activity.text} (tagged)"
        await logic()
        self.replies += [r.id for r in context.turn_state["midtier.botbuilder_inproc.sent"]]


class UnusedHost:
    """The ProviderHost of turns that redeem nothing and send nothing proactively."""


async def started() -> tuple[BotbuilderProvider, Leg]:
    provider = build(BotbuilderProvider, "faq", UnusedHost(), bot=f"{__name__}:ReaddressingBot")
    await provider.start()
    leg = Leg(channel="webchat", channel_conversation_id="c1", provider="faq")
    leg.provider_conversation_id = "bb_conversation"
    return provider, leg


async def reply_to(
    text: str, channel: str = "webchat", **fields: Any
) -> tuple[list[Activity], Leg]:
    provider, leg = await started()
    leg.channel = channel
    return await provider.deliver(leg, Activity(text=text, channel_id=channel, **fields)), leg


async def test_a_text_the_bot_sends_keeps_what_it_says_aloud_and_its_input_hint() -> None:
    [reply], _ = await reply_to("say it")
    assert (reply.text, reply.speak, reply.input_hint) == ("said", "spoken", "expectingInput")


async def test_middleware_added_to_the_adapter_runs_on_every_turn() -> None:
    provider, leg = await started()
    tagging = Tagging()
    assert provider.adapter.use(tagging) is provider.adapter
    first = await provider.deliver(leg, Activity(text="one", channel_id="webchat"))
    second = await provider.deliver(leg, Activity(text="two", channel_id="webchat"))
    assert [r.text for r in first + second] == ["one (tagged)", "two (tagged)"]
    assert tagging.replies == [r.id for r in first + second]


async def test_a_turn_error_handler_on_the_adapter_gets_the_bots_exception() -> None:
    provider, leg = await started()
    errors: list[BaseException] = []

    async def on_error(context: TurnContext, error: Exception) -> None:
        errors.append(error)
        await context.send_activity("sorry, something went wrong")

    provider.adapter.on_turn_error = on_error
    [reply] = await provider.deliver(leg, Activity(text="fail", channel_id="webchat"))
    assert reply.text == "sorry, something went wrong"
    assert [repr(e) for e in errors] == [repr(RuntimeError("the bot broke"))]


async def test_a_reply_is_addressed_from_the_message_it_answers() -> None:
    user = ChannelAccount(id="u1", name="Dana", role="user")
    [reply], leg = await reply_to(
        "hello",
        "telegram",
        id="m-1",
        from_=user,
        locale="de-DE",
        service_url="https://example.test/",
    )
    assert (reply.channel_id, reply.reply_to_id) == ("telegram", "m-1")
    assert (reply.locale, reply.service_url) == ("de-DE", "https://example.test/")
    assert (reply.from_, reply.recipient) == (ChannelAccount(id="faq", role="bot"), user)
    assert reply.conversation == ConversationAccount(id=leg.provider_conversation_id)
    assert (reply.input_hint, reply.text) == ("acceptingInput", "hello")


async def test_a_web_chat_reply_names_no_message_it_replies_to() -> None:
    [reply], _ = await reply_to("hello", "webchat", id="m-1")
    assert reply.reply_to_id is None


async def test_a_reply_keeps_the_sender_the_bot_gave_it_in_the_provider_conversation() -> None:
    [reply], leg = await reply_to("as the helper")
    assert reply.from_ == ChannelAccount(id="helper", name="Helper", role="bot")
    assert reply.conversation is not None
    assert reply.conversation.id == leg.provider_conversation_id


async def test_a_reply_whose_accounts_lack_ids_is_from_the_bot_in_its_conversation() -> None:
    [reply], leg = await reply_to("without ids")
    assert reply.from_ == ChannelAccount(id="faq", role="bot")
    assert reply.conversation == ConversationAccount(id=leg.provider_conversation_id)


async def test_a_reply_midtier_cannot_read_is_an_error_of_the_provider() -> None:
    with pytest.raises(
        ProviderError, match="the bot sent an activity midtier cannot read"
    ) as caught:
        await reply_to("unreadable")
    assert caught.value.provider == "faq"
