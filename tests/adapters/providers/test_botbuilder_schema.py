"""The botbuilder boundary's conversions: the objects a bot gets, what midtier gets back."""

from __future__ import annotations

from datetime import UTC, datetime

from botbuilder.schema import Activity as BfActivity
from botbuilder.schema import ChannelAccount as BfAccount
from botbuilder.schema import ConversationAccount as BfConversation

from adapters.providers.botbuilder_schema import to_botbuilder
from connector.activity import Activity

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
