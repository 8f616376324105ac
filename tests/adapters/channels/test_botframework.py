"""The Bot Framework channel's inbound side, against the adapter directly: the documented
activities parse to what the core records, each kind is acknowledged as Azure expects, and
malformed activities behind a valid token are a 400, never a 500."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support.channel_kits.botframework import (
    APP_ID,
    BOT,
    BotFrameworkKit,
    adapter,
    request_of,
)
from support.fake_platform import fake_platform

from adapters.channels.botframework import BotFrameworkChannel
from connector.errors import MalformedPayload

TEAMS_USER = (
    "29:1XJKJMvc5GBtc2JwZq0oj8tHZmzrQgFmB39ATiQWA85gQtHieVkKilBZ9XHoq9j7Zaqt7CZ-NJWi7me2kHTL3Bw"
)
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


@pytest.fixture
async def kit() -> AsyncIterator[BotFrameworkKit]:
    async with fake_platform() as platform:
        kit = BotFrameworkKit()
        kit.prepare(platform)
        yield kit


@pytest.fixture
async def teams(kit: BotFrameworkKit, tmp_path: Path) -> AsyncIterator[BotFrameworkChannel]:
    async with adapter(kit, tmp_path) as channel:
        yield channel


async def _through(channel: BotFrameworkChannel, kit: BotFrameworkKit, data: dict[str, Any]) -> Any:
    """What the core does with a POST: verify, parse, acknowledge."""
    request = request_of(kit.signed(data))
    await channel.verify(request)
    activities = await channel.parse(request)
    return activities, await channel.acknowledge(request, activities)


async def test_a_teams_message_passes_through_with_its_tenant_and_reply_address(
    teams: BotFrameworkChannel, kit: BotFrameworkKit
) -> None:
    data = kit.activity("message_teams_personal")
    [activity], answer = await _through(teams, kit, data)
    assert (answer.status, answer.body) == (201, b"")
    assert activity.id == "1485983408511"  # the dedupe key
    assert activity.type == "message" and activity.text == "Hello Teams TestBot"
    assert activity.channel_id == "teams"
    assert activity.conversation.id == f"msteams:{data['conversation']['id']}"
    assert activity.conversation.model_extra == {"conversationType": "personal", "tenantId": TENANT}
    assert activity.from_.id == TEAMS_USER and activity.from_.name == "Megan Bowen"
    assert activity.from_.model_extra == {"aadObjectId": "7faf8ab2-3d56-4244-b585-20c8a42ed2b8"}
    assert activity.recipient.id == BOT["id"]
    assert activity.timestamp.isoformat() == "2017-02-01T21:10:07.437000+00:00"
    assert activity.locale == "en-US" and activity.text_format == "plain"
    assert activity.entities == data["entities"]
    assert activity.service_url is None  # kept in the address only
    assert activity.channel_data == {
        "tenant": {"id": TENANT},
        "address": {
            "serviceUrl": kit.service_url,
            "channelId": "msteams",
            "conversationId": data["conversation"]["id"],
            "bot": {"id": f"28:{APP_ID}", "name": "Acme Pay"},
            "replyToId": "1485983408511",
            "tenantId": TENANT,
        },
    }


async def test_a_teams_channel_message_keeps_its_thread_and_mentions(
    teams: BotFrameworkChannel, kit: BotFrameworkKit
) -> None:
    data = kit.activity("message_teams_channel")
    [activity], _ = await _through(teams, kit, data)
    assert activity.conversation.id == (
        "msteams:19:efa9296d959346209fea44151c742e73@thread.skype;messageid=1572555447214"
    )
    assert activity.conversation.is_group is True
    assert activity.entities[0]["type"] == "mention"
    assert activity.channel_data["team"] == {
        "id": "19:efa9296d959346209fea44151c742e73@thread.skype"
    }
    # The tenant is read from channelData too (conversation.tenantId is not always there).
    assert activity.channel_data["address"]["tenantId"] == TENANT
    # 7 digits of fractional seconds, as Teams sends them
    assert activity.timestamp.isoformat() == "2019-10-31T20:57:27.234728+00:00"


async def test_a_card_submit_reaches_the_bot_with_its_value(
    teams: BotFrameworkChannel, kit: BotFrameworkKit
) -> None:
    [activity], _ = await _through(teams, kit, kit.activity("message_teams_card_submit"))
    assert activity.text is None
    assert activity.value == {"action": "freeze_card", "cardId": "card-4242"}
    assert activity.reply_to_id == "1:1PBLZSk6PfvQ0KyV2Lu4zUgB9Nq9ZyCSDpgH2Hq5gzwM"


async def test_a_webchat_image_arrives_as_a_bot_framework_attachment(
    teams: BotFrameworkChannel, kit: BotFrameworkKit
) -> None:
    data = kit.activity("message_webchat_image")
    [activity], _ = await _through(teams, kit, data)
    assert activity.conversation.id == "webchat:Kx3bV9c2ZQp4Ls8n1yRtA2-us"
    [attachment] = activity.attachments
    assert attachment.content_type == "image/png"
    assert attachment.content_url == data["attachments"][0]["contentUrl"]
    assert attachment.name == "receipt.png"
    assert activity.text == "this is the receipt"


async def test_typing_passes_as_typing(teams: BotFrameworkChannel, kit: BotFrameworkKit) -> None:
    [activity], answer = await _through(teams, kit, kit.activity("typing_webchat"))
    assert activity.type == "typing" and activity.id == "Kx3bV9c2ZQp4Ls8n1yRtA2-us|0000005"
    assert answer.status == 201


async def test_conversation_updates_and_reactions_are_acknowledged_and_left_out_logged_once(
    teams: BotFrameworkChannel, kit: BotFrameworkKit, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "midtier.channels")
    for name in (
        "conversation_update_teams",
        "conversation_update_teams",
        "message_reaction_teams",
    ):
        activities, answer = await _through(teams, kit, kit.activity(name))
        assert activities == [] and answer.status == 201
    ignored = [r.getMessage() for r in caplog.records if "ignores" in r.getMessage()]
    assert ignored == [
        "channel teams ignores conversationUpdate events",
        "channel teams ignores messageReaction events",
    ]


async def test_an_invoke_is_answered_501_as_a_bot_without_a_handler_answers(
    teams: BotFrameworkChannel, kit: BotFrameworkKit
) -> None:
    activities, answer = await _through(teams, kit, kit.activity("invoke_teams_card_action"))
    assert activities == []
    assert (answer.status, answer.body) == (501, b"")


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        data = data[key]
    if value is ...:
        del data[last]
    else:
        data[last] = value


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("type", ...),
        ("type", 7),
        ("id", ...),
        ("id", ["x"]),
        ("channelId", ...),
        ("channelId", {"id": "msteams"}),
        ("serviceUrl", ...),
        ("serviceUrl", 5),
        ("serviceUrl", "ftp://smba.example.com/"),
        ("conversation", ...),
        ("conversation", "a:1"),
        ("conversation.id", None),
        ("conversation.isGroup", "maybe"),
        ("from", ...),
        ("from.id", 29),
        ("from.name", {"first": "Megan"}),
        ("recipient", ...),
        ("text", 5),
        ("attachments", "receipt.png"),
        ("attachments", [{"contentUrl": "https://x"}]),
        ("entities", {"type": "clientInfo"}),
        ("channelData", ["tenant"]),
        ("timestamp", "yesterday"),
    ],
)
async def test_a_signed_activity_of_the_wrong_shape_is_a_400_not_a_500(
    teams: BotFrameworkChannel, kit: BotFrameworkKit, path: str, value: Any
) -> None:
    data = kit.activity("message_teams_personal")
    _set(data, path, value)
    with pytest.raises(MalformedPayload):
        await _through(teams, kit, data)


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"null", b'"message"', b"\xff\xfe{}"])
async def test_a_body_that_is_not_an_activity_is_a_400(
    teams: BotFrameworkChannel, kit: BotFrameworkKit, body: bytes
) -> None:
    call = kit.signed(kit.activity("message_teams_personal"), body=body)
    with pytest.raises(MalformedPayload):
        await teams.verify(request_of(call))
