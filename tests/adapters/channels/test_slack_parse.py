"""What the Slack channel reads of Slack's documented payloads (``tests/payloads/slack``):
people's messages become activities, everything else is left out, and a signed payload of
the wrong shape is a 400 (``MalformedPayload``), never another exception."""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from support.channel_kits.slack import NOW, adapter, event, interaction, payload, request, sign

from connector.activity import Activity
from connector.errors import MalformedPayload


async def parsed(data: dict[str, Any], *, form: bool = False, **settings: Any) -> list[Activity]:
    slack = adapter(**settings)
    incoming = interaction(data) if form else event(data)
    await slack.verify(incoming)
    return await slack.parse(incoming)


async def test_a_channel_message_is_one_activity_in_its_channels_conversation() -> None:
    [activity] = await parsed(payload("message_channels"))
    assert activity.type == "message" and activity.text == "Live long and prospect."
    assert activity.id == "C123ABC456:1355517523.000005"
    assert activity.conversation is not None
    assert activity.conversation.id == "T123ABC456:C123ABC456"
    assert activity.conversation.is_group is True
    assert activity.from_ is not None and activity.from_.id == "U123ABC456"
    assert activity.recipient is not None and activity.recipient.id == "U0LAN0Z89"
    assert activity.channel_id == "slack"
    assert activity.timestamp == datetime(2012, 12, 14, 20, 38, 43, 5, tzinfo=UTC)


async def test_a_direct_message_is_a_one_to_one_conversation() -> None:
    [activity] = await parsed(payload("message_im"))
    assert activity.conversation is not None
    assert activity.conversation.id == "T061EG9R6:D024BE91L"
    assert activity.conversation.is_group is False
    assert activity.recipient is not None and activity.recipient.id == "A0PNCHHK2"
    assert activity.text == "Hello hello can you hear me?"


async def test_a_reply_in_a_thread_is_the_threads_conversation() -> None:
    [activity] = await parsed(payload("message_thread_reply"))
    assert activity.conversation is not None
    assert activity.conversation.id == "T123ABC456:C123ABC456:1355517523.000005"
    assert activity.id == "C123ABC456:1355517600.000008"


async def test_with_reply_in_thread_each_channel_message_starts_a_thread_but_dms_do_not() -> None:
    [top] = await parsed(payload("message_channels"), reply_in_thread=True)
    [reply] = await parsed(payload("message_thread_reply"), reply_in_thread=True)
    [direct] = await parsed(payload("message_im"), reply_in_thread=True)
    assert top.conversation is not None and reply.conversation is not None
    # The reply is in the thread of the first message, so both are one conversation.
    assert top.conversation.id == reply.conversation.id == "T123ABC456:C123ABC456:1355517523.000005"
    assert direct.conversation is not None and direct.conversation.id == "T061EG9R6:D024BE91L"


async def test_a_mention_reads_without_the_bots_own_mention() -> None:
    [activity] = await parsed(payload("app_mention"))
    assert activity.text == "is it everything a river should be?"
    unauthorized = payload("app_mention")
    del unauthorized["authorizations"]  # who the bot is is not said: its mention leads
    [activity] = await parsed(unauthorized)
    assert activity.text == "is it everything a river should be?"


async def test_a_mention_and_its_message_event_are_one_message_for_dedupe() -> None:
    [mention] = await parsed(payload("app_mention"))
    [message] = await parsed(payload("message_with_mention"))
    assert payload("app_mention")["event_id"] != payload("message_with_mention")["event_id"]
    assert mention.id == message.id == "C123ABC456:1515449522.000016"
    assert mention.conversation == message.conversation


async def test_slacks_escaping_is_undone() -> None:
    data = payload("message_im")
    data["event"]["text"] = "Fees &amp; refunds &lt;today&gt;"
    [activity] = await parsed(data)
    assert activity.text == "Fees & refunds <today>"


async def test_shared_files_are_attachments_with_their_private_urls() -> None:
    [activity] = await parsed(payload("file_share"))
    assert activity.text == "Here is the receipt"
    assert [a.model_dump(by_alias=True, exclude_none=True) for a in activity.attachments or []] == [
        {
            "contentType": "image/png",
            "contentUrl": "https://files.slack.com/files-pri/T123ABC456-F123ABC456/receipt.png",
            "name": "receipt.png",
        },
        {
            "contentType": "application/pdf",
            "contentUrl": "https://files.slack.com/files-pri/T123ABC456-F123ABC789/statement.pdf",
            "name": "statement.pdf",
        },
    ]  # the file hidden by the workspace's plan has no URL: left out


@pytest.mark.parametrize(
    "name",
    ["own_reply_echo", "bot_message", "message_changed", "message_deleted", "channel_join"],
)
async def test_echoes_other_bots_edits_deletions_and_joins_are_dropped(name: str) -> None:
    assert await parsed(payload(name)) == []


async def test_a_message_from_the_bots_own_user_is_dropped_even_without_bot_id() -> None:
    data = payload("own_reply_echo")
    del data["event"]["bot_id"]
    assert await parsed(data) == []


async def test_unsupported_events_are_ignored_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slack = adapter()
    with caplog.at_level(logging.INFO, logger="midtier.channels"):
        for _ in range(3):
            assert await slack.parse(event(payload("reaction_added"))) == []
    assert [r.getMessage() for r in caplog.records] == [
        "channel slack ignores reaction_added events"
    ]


async def test_being_rate_limited_by_slack_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="midtier.slack"):
        assert await parsed(payload("app_rate_limited")) == []
    assert "dropping events" in caplog.text


async def test_a_button_click_is_a_message_with_the_buttons_value() -> None:
    [activity] = await parsed(payload("block_actions"), form=True)
    assert activity.text == "card_credit"
    assert activity.value == {
        "action_id": "midtier-choice-2",
        "block_id": "b1",
        "value": "card_credit",
    }
    assert activity.id == "12345.98765.abcd2358fdea:1548426719.709410"
    # The thread of the message the buttons were on: the conversation that offered them.
    assert activity.conversation is not None
    assert activity.conversation.id == "T123ABC456:C123ABC456:1548426400.000100"
    assert activity.from_ is not None and activity.from_.id == "U123ABC456"
    assert activity.from_.name == "dana.w"
    # response_url lets anyone post to the channel for a while: it stays in midtier.
    assert "hooks.slack.com" not in json.dumps(activity.to_wire())


async def test_a_retry_reads_as_the_same_activity() -> None:
    slack = adapter()
    body = json.dumps(payload("message_channels")).encode()
    # Slack signs a retry anew, a few seconds (or minutes) later.
    retry = {
        **sign(body, ts=NOW + 60),
        "X-Slack-Retry-Num": "1",
        "X-Slack-Retry-Reason": "http_timeout",
    }
    first = await slack.parse(request(body))
    again = request(body, retry)
    await slack.verify(again)
    assert await slack.parse(again) == first


async def test_every_answer_is_a_plain_empty_200() -> None:
    slack = adapter()
    incoming = event(payload("message_channels"))
    answer = await slack.acknowledge(incoming, await slack.parse(incoming))
    assert (answer.status, answer.body) == (200, b"")


def _changed(name: str, path: str, value: Any) -> dict[str, Any]:
    """Payload ``name`` with the field at ``path`` ("event.files.0.name") set or deleted."""
    data = copy.deepcopy(payload(name))
    *parents, last = path.split(".")
    where: Any = data
    for key in parents:
        where = where[int(key)] if key.isdigit() else where[key]
    index: int | str = int(last) if last.isdigit() else last
    if value is _DELETE:
        del where[index]
    else:
        where[index] = value
    return data


_DELETE = object()
BROKEN_EVENTS = [
    ("message_im", "event", "not an object"),
    ("message_im", "event", _DELETE),
    ("message_im", "event.type", 7),
    ("message_im", "event.subtype", {"a": 1}),
    ("message_im", "event.channel", _DELETE),
    ("message_im", "event.channel", "C1:evil"),
    ("message_im", "event.user", 12345),
    ("message_im", "event.text", ["hi"]),
    ("message_im", "event.ts", "yesterday"),
    ("message_im", "event.ts", "99999999999999999999.1"),
    ("message_im", "event.ts", "\u0661\u0663\u0665\u0665.000005"),  # Arabic-Indic digits
    ("message_im", "event.thread_ts", 1.5),
    ("message_im", "team_id", _DELETE),
    ("message_channels", "authorizations", "all"),
    ("file_share", "event.files", "receipt.png"),
    ("file_share", "event.files.0", 1),
    ("file_share", "event.files.0.url_private", 404),
]


@pytest.mark.parametrize(("name", "path", "value"), BROKEN_EVENTS)
async def test_a_signed_event_of_the_wrong_shape_is_malformed(
    name: str, path: str, value: Any
) -> None:
    with pytest.raises(MalformedPayload):
        await parsed(_changed(name, path, value))


BROKEN_CLICKS = [
    ("block_actions", "user", _DELETE),
    ("block_actions", "user.id", 42),
    ("block_actions", "actions", {"value": "x"}),
    ("block_actions", "actions.0.value", ["x"]),
    ("block_actions", "actions.0.type", None),
    ("block_actions", "channel.id", "C1:evil"),
    ("block_actions", "container.thread_ts", "soon"),
    ("block_actions", "message", "gone"),
]


@pytest.mark.parametrize(("name", "path", "value"), BROKEN_CLICKS)
async def test_a_signed_click_of_the_wrong_shape_is_malformed(
    name: str, path: str, value: Any
) -> None:
    with pytest.raises(MalformedPayload):
        await parsed(_changed(name, path, value), form=True)


async def test_a_click_with_no_key_to_dedupe_it_by_is_malformed() -> None:
    data = _changed("block_actions", "trigger_id", _DELETE)
    del data["actions"][0]["action_ts"]
    with pytest.raises(MalformedPayload):
        await parsed(data, form=True)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"not json", "application/json"),
        (b"[]", "application/json"),
        (b'{"type": 1}', "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"text=hi", "application/x-www-form-urlencoded"),
        (b"payload=not+json", "application/x-www-form-urlencoded"),
        (b"payload=%5B%5D", "application/x-www-form-urlencoded"),
        (b"payload=1&payload=2", "application/x-www-form-urlencoded"),
    ],
)
async def test_a_signed_body_that_is_not_slacks_protocol_is_malformed(
    body: bytes, content_type: str
) -> None:
    slack = adapter()
    incoming = request(body, content_type=content_type)
    await slack.verify(incoming)
    with pytest.raises(MalformedPayload):
        await slack.parse(incoming)


async def test_clicks_on_other_surfaces_and_other_interactions_are_ignored() -> None:
    home = payload("block_actions")
    del home["channel"], home["container"]["channel_id"]  # a button in the App Home tab
    assert await parsed(home, form=True) == []
    assert await parsed({"type": "shortcut", "callback_id": "x"}, form=True) == []
