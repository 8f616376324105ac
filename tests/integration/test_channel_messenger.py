"""Messenger end to end: a real midtier with the default deployment, webhooks signed as Meta
signs them, replies read back from a fake Send API."""

from __future__ import annotations

from pathlib import Path

from support.channel_kits import WebhookCall
from support.channel_kits import messenger as kit
from support.channel_kits import meta as signing
from support.channel_restart import stop_while_working_then_restart
from support.channel_world import TYPING_AT_ONCE, channel_world
from support.journey import bot_agent_bot

PSID = "6783452093874651"
CONVERSATION = f"{kit.PAGE_ID}:{PSID}"


async def test_a_messenger_user_goes_from_the_bot_to_an_agent_and_back_in_one_session(
    tmp_path: Path,
) -> None:
    async with channel_world(tmp_path, kit.Kit(), midtier=TYPING_AT_ONCE) as world:
        session = await bot_agent_bot(world.run, world.name, world.user(PSID))
        assert session.channel_conversation_id == CONVERSATION
        replies = world.kit.replies(world.platform)
        assert {r.conversation for r in replies} == {CONVERSATION}
        typing = [c for c in world.platform.to(kit.SEND_PATH) if "sender_action" in c.json]
        assert typing and all(c.json["sender_action"] == "typing_on" for c in typing)


async def test_the_real_route_answers_the_handshake_and_refuses_a_malformed_signed_body(
    tmp_path: Path,
) -> None:
    async with channel_world(tmp_path, kit.Kit()) as world:
        query = f"?hub.mode=subscribe&hub.verify_token={kit.VERIFY_TOKEN}&hub.challenge=4711"
        get = WebhookCall(b"", method="GET", query=query)
        status, body, headers = await world.post(get)
        assert (status, body) == (200, b"4711")
        assert headers["Content-Type"].startswith("text/plain")
        status, _, _ = await world.post(
            WebhookCall(b"", method="GET", query=query.replace(kit.VERIFY_TOKEN, "no"))
        )
        assert status == 403
        event = b'{"sender": 7, "recipient": {"id": "1"}, "timestamp": 1, "message": {"mid": "m"}}'
        bad = b'{"object": "page", "entry": [{"id": "1", "messaging": [' + event + b"]}]}"
        status, body, _ = await world.post(signing.signed(bad, kit.APP_SECRET))
        assert status == 400 and b"sender" in body
        assert await world.sessions() == []


async def test_a_message_acknowledged_before_a_restart_is_answered_exactly_once(
    tmp_path: Path,
) -> None:
    seen = await stop_while_working_then_restart(
        tmp_path, kit.Kit(), kit.SEND_PATH, user=PSID, text="hi", expect="help assistant"
    )
    assert seen.held.json["sender_action"] == "typing_on"  # it stopped before the bot's turn
    assert seen.user_lines == ["hi"]
    assert len([r for r in seen.replies if "help assistant" in r.text]) == 1
