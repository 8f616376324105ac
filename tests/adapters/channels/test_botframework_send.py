"""The Bot Framework channel's replies, against a fake Bot Connector and token endpoint: what
is posted where, with which token, how Teams' limits are met, how the Connector's errors
reach the outbox, and that botframework-connector's own ``ConnectorClient`` posts the same
activity to the same place."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from botbuilder.schema import Activity as BotbuilderActivity
from botframework.connector import ConnectorClient
from msrest.authentication import BasicTokenAuthentication
from support.channel_kits.botframework import (
    APP_ID,
    APP_PASSWORD,
    BOT,
    REGION,
    BotFrameworkKit,
    adapter,
    payload,
    reply_to,
    request_of,
)
from support.fake_platform import FakePlatform, fake_platform

from adapters.channels.botframework import BotFrameworkChannel
from adapters.channels.botframework_wire import TEXT_LIMIT
from connector.activity import Activity, Attachment
from connector.errors import ChannelError, DeliveryRejected

HERO = "application/vnd.microsoft.card.hero"


@pytest.fixture
async def azure() -> AsyncIterator[tuple[FakePlatform, BotFrameworkKit]]:
    async with fake_platform() as platform:
        kit = BotFrameworkKit()
        kit.prepare(platform)
        yield platform, kit


@pytest.fixture
async def teams(
    azure: tuple[FakePlatform, BotFrameworkKit], tmp_path: Path
) -> AsyncIterator[BotFrameworkChannel]:
    async with adapter(azure[1], tmp_path) as channel:
        yield channel


async def _inbound(
    channel: BotFrameworkChannel, kit: BotFrameworkKit, name: str = "message_teams_personal"
) -> Activity:
    request = request_of(kit.signed(kit.activity(name)))
    await channel.verify(request)
    [activity] = await channel.parse(request)
    return activity


def _actions(n: int) -> dict[str, Any]:
    return {"actions": [{"type": "imBack", "title": f"Option {i}", "value": f"opt-{i}"}
                        for i in range(1, n + 1)]}  # fmt: skip


async def test_a_reply_answers_the_activity_with_the_bot_as_sender_and_a_connector_token(
    teams: BotFrameworkChannel, azure: tuple[FakePlatform, BotFrameworkKit]
) -> None:
    kit = azure[1]
    inbound = await _inbound(teams, kit)
    conversation = payload("message_teams_personal")["conversation"]["id"]
    assert await teams.send(reply_to(inbound, text="Hi Megan")) == "1:1"
    [call] = kit.delivered  # the fake Connector checked the token came from the token endpoint
    assert call.path == f"/amer/v3/conversations/{conversation}/activities/1485983408511"
    assert inbound.from_ is not None
    assert call.json == {
        "type": "message",
        "from": BOT,
        "recipient": {"id": inbound.from_.id},
        "conversation": {"id": conversation, "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47"},
        "replyToId": "1485983408511",
        "text": "Hi Megan",
    }
    [token] = kit.token_requests
    assert token.form == {
        "grant_type": "client_credentials",
        "client_id": APP_ID,
        "client_secret": APP_PASSWORD,
        "scope": "https://api.botframework.com/.default",
    }
    await teams.send(reply_to(inbound, text="again"))
    assert len(kit.token_requests) == 1  # cached until shortly before it expires


async def test_typing_goes_as_a_typing_activity(
    teams: BotFrameworkChannel, azure: tuple[FakePlatform, BotFrameworkKit]
) -> None:
    kit = azure[1]
    inbound = await _inbound(teams, kit, "message_webchat_image")
    await teams.send(reply_to(inbound, type="typing"))
    [call] = kit.delivered
    assert call.json == {
        "type": "typing",
        "from": {"id": BOT["id"], "name": BOT["name"]},
        "recipient": {"id": "dl_17157000000000.4xq2b7"},
        "conversation": {"id": "Kx3bV9c2ZQp4Ls8n1yRtA2-us"},
        "replyToId": "Kx3bV9c2ZQp4Ls8n1yRtA2-us|0000004",
    }


async def test_events_are_not_sent_to_the_user(
    teams: BotFrameworkChannel, azure: tuple[FakePlatform, BotFrameworkKit]
) -> None:
    inbound = await _inbound(teams, azure[1])
    assert await teams.send(reply_to(inbound, type="event", name="midtier.x")) == "out-1"
    assert azure[1].delivered == []


async def test_choices_images_and_cards_pass_through_natively(
    teams: BotFrameworkChannel, azure: tuple[FakePlatform, BotFrameworkKit]
) -> None:
    kit = azure[1]
    webchat = await _inbound(teams, kit, "message_webchat_image")
    image = Attachment(content_type="image/png", content_url="https://cdn.example.com/a.png")
    hero = Attachment(
        content_type=HERO, content={"title": "Cards", "buttons": _actions(2)["actions"]}
    )
    await teams.send(reply_to(webchat, text="Pick", suggested_actions=_actions(5)))
    await teams.send(reply_to(webchat, text="Here", attachments=[image, hero]))
    teams_user = await _inbound(teams, kit)
    await teams.send(reply_to(teams_user, text="Pick", suggested_actions=_actions(3)))
    first, second, third = (c.json for c in kit.delivered)
    assert first["suggestedActions"] == _actions(5) and first["text"] == "Pick"
    assert second["attachments"] == [
        {"contentType": "image/png", "contentUrl": "https://cdn.example.com/a.png"},
        {"contentType": HERO, "content": {"title": "Cards", "buttons": _actions(2)["actions"]}},
    ]
    assert third["suggestedActions"] == _actions(3)


async def test_teams_gets_choices_it_cannot_show_as_numbered_text(
    teams: BotFrameworkChannel, azure: tuple[FakePlatform, BotFrameworkKit]
) -> None:
    kit = azure[1]
    inbound = await _inbound(teams, kit)
    image = Attachment(content_type="image/png", content_url="https://cdn.example.com/a.png")
    await teams.send(reply_to(inbound, text="Which card?", suggested_actions=_actions(4)))
    await teams.send(reply_to(inbound, text="Is it this?", suggested_actions=_actions(2),
                              attachments=[image]))  # fmt: skip
    many, beside = (c.json for c in kit.delivered)
    assert "suggestedActions" not in many
    assert many["text"] == "Which card?\n1. Option 1\n2. Option 2\n3. Option 3\n4. Option 4"
    assert "suggestedActions" not in beside
    assert beside["text"] == "Is it this?\n1. Option 1\n2. Option 2"
    assert beside["attachments"] == [{"contentType": "image/png", "contentUrl": image.content_url}]


async def test_long_text_is_cut_and_a_bots_channel_data_passes_but_midtiers_does_not(
    teams: BotFrameworkChannel, azure: tuple[FakePlatform, BotFrameworkKit]
) -> None:
    kit = azure[1]
    inbound = await _inbound(teams, kit)
    alert = {"notification": {"alert": True}}
    await teams.send(reply_to(inbound, text="x" * (TEXT_LIMIT + 10), channel_data=alert))
    [call] = kit.delivered
    assert len(call.json["text"]) == TEXT_LIMIT and call.json["text"].endswith("…")
    assert call.json["channelData"] == alert


async def test_the_conversation_id_is_percent_encoded_as_connector_client_does(
    teams: BotFrameworkChannel, azure: tuple[FakePlatform, BotFrameworkKit]
) -> None:
    kit = azure[1]
    odd = "19:a/b?c=d#e;messageid=42"
    inbound = await _inbound(teams, kit)
    assert inbound.channel_data is not None
    inbound.channel_data["address"]["conversationId"] = odd
    kit.serve(odd, "1485983408511")
    ours = await teams.send(reply_to(inbound, text="Hi", suggested_actions=_actions(2)))
    mine = kit.delivered[-1]
    # botframework-connector's own client, posting what we posted (read by its own model)
    token = kit.issuer.client_credentials(APP_ID)["access_token"]
    client = ConnectorClient(BasicTokenAuthentication({"access_token": token}), kit.service_url)
    model = BotbuilderActivity().deserialize(mine.json)
    try:
        answer = await asyncio.to_thread(
            client.conversations.reply_to_activity, odd, "1485983408511", model
        )
        await asyncio.to_thread(client.conversations.send_to_conversation, odd, model)
    finally:
        client.close()
    theirs = kit.delivered[-2]
    assert theirs is not mine and theirs.path == mine.path
    # Their model writes back what we sent, but for conversation.tenantId: botbuilder-python
    # spells it "tenantID" (Teams, and the C# and JS SDKs, send "tenantId", as we do).
    sent = mine.json
    assert sent["conversation"].pop("tenantId")
    assert theirs.json == sent
    assert (answer.id, ours) == ("1:2", "1:1")  # our fake answers as their client expects
    assert kit.delivered[-1].path == mine.path.rsplit("/", 1)[0]  # send_to_conversation


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "retry_after"),
    [
        (429, None, {"Retry-After": "7"}, ChannelError, 7.0),
        (503, None, {}, ChannelError, None),
        (502, None, {}, ChannelError, None),
        (403, payload("connector_bot_not_in_roster"), {}, DeliveryRejected, None),
        (404, payload("connector_conversation_not_found"), {}, DeliveryRejected, None),
        (400, {"error": {"code": "BadArgument", "message": "Unknown"}}, {}, DeliveryRejected, None),
    ],
)
async def test_connector_errors_are_retried_or_rejected(
    teams: BotFrameworkChannel,
    azure: tuple[FakePlatform, BotFrameworkKit],
    status: int,
    body: Any,
    headers: dict[str, str],
    error: type[ChannelError],
    retry_after: float | None,
) -> None:
    platform, kit = azure
    inbound = await _inbound(teams, kit)
    await teams.send(reply_to(inbound, text="first"))  # the token is fetched and cached
    platform.fail_next(1, status=status, body=body, headers=headers)
    with pytest.raises(ChannelError) as caught:
        await teams.send(reply_to(inbound, text="second"))
    assert type(caught.value) is error
    assert caught.value.retry_after == retry_after
    if body is not None:
        assert body["error"]["code"] in str(caught.value)


async def test_a_token_the_connector_refuses_is_renewed_once(
    teams: BotFrameworkChannel, azure: tuple[FakePlatform, BotFrameworkKit]
) -> None:
    platform, kit = azure
    inbound = await _inbound(teams, kit)
    await teams.send(reply_to(inbound, text="first"))
    platform.fail_next(1, status=401)
    await teams.send(reply_to(inbound, text="second"))
    assert [c.json["text"] for c in kit.delivered] == ["first", "second"]
    assert len(kit.token_requests) == 2
    [path] = {c.path for c in kit.delivered}
    refused = {"error": {"code": "Unauthorized", "message": "token refused"}}
    platform.route("POST", path, lambda _call: web.json_response(refused, status=401))
    with pytest.raises(ChannelError) as caught:
        await teams.send(reply_to(inbound, text="third"))
    assert type(caught.value) is not DeliveryRejected  # the outbox tries again later
    assert len(kit.token_requests) == 3  # renewed once more, not again and again
    assert len(platform.to(path)) == 5


async def test_a_wrong_password_is_retried_later_and_never_shown(
    azure: tuple[FakePlatform, BotFrameworkKit], tmp_path: Path
) -> None:
    kit = azure[1]
    async with adapter(kit, tmp_path, app_password="not-the-password-42") as wrong:
        inbound = await _inbound(wrong, kit)
        with pytest.raises(ChannelError) as caught:
            await wrong.send(reply_to(inbound, text="hi"))
    assert type(caught.value) is ChannelError
    assert "invalid_client" in str(caught.value)
    assert "not-the-password-42" not in str(caught.value) and kit.delivered == []


async def test_without_a_reply_address_nothing_is_sent(
    teams: BotFrameworkChannel, azure: tuple[FakePlatform, BotFrameworkKit]
) -> None:
    inbound = await _inbound(teams, azure[1])
    lost = reply_to(inbound, text="hi")
    lost.channel_data = {"midtier": {"speaker": "bot"}}
    with pytest.raises(DeliveryRejected):
        await teams.send(lost)
    assert azure[1].token_requests == []


async def test_the_emulator_without_credentials_gets_replies_without_a_token(
    azure: tuple[FakePlatform, BotFrameworkKit], tmp_path: Path
) -> None:
    platform, kit = azure
    local = {"app_id": "", "app_password": None, "allow_unauthenticated": True}
    async with adapter(kit, tmp_path, **local) as emulator:
        data = kit.activity("message_webchat_image", channelId="emulator")
        [inbound] = await emulator.parse(request_of(kit.signed(data)))
        conversation = f"{REGION}v3/conversations/{data['conversation']['id']}"
        # The Emulator's own Connector takes replies without a token.
        platform.route("POST", f"{conversation}/activities/{data['id']}", lambda _: {"id": "7"})
        assert await emulator.send(reply_to(inbound, text="hi")) == "7"
    [call] = platform.to(f"{conversation}/activities/{data['id']}")
    assert "Authorization" not in call.headers
    assert kit.token_requests == []
