"""WhatsApp end to end: a real midtier with the default deployment, webhooks signed as Meta
signs them, replies read back from a fake Cloud API."""

from __future__ import annotations

from pathlib import Path

from support.channel_kits import WebhookCall
from support.channel_kits import meta as signing
from support.channel_kits import whatsapp as kit
from support.channel_restart import stop_while_working_then_restart
from support.channel_world import TYPING_AT_ONCE, channel_world
from support.journey import bot_agent_bot

WA_ID = "16505551234"
CONVERSATION = f"{kit.PHONE_NUMBER_ID}:{WA_ID}"


async def test_a_whatsapp_user_goes_from_the_bot_to_an_agent_and_back_in_one_session(
    tmp_path: Path,
) -> None:
    async with channel_world(tmp_path, kit.Kit(), midtier=TYPING_AT_ONCE) as world:
        session = await bot_agent_bot(world.run, world.name, world.user(WA_ID))
        assert session.channel_conversation_id == CONVERSATION
        assert {r.conversation for r in world.kit.replies(world.platform)} == {CONVERSATION}
        # Typing indicators name a message the user sent: the newest one at the time.
        sent_ids = {f"mid-{n}" for n in range(1, 5)}
        typing = [c.json for c in world.platform.to(kit.SEND_PATH) if c.json.get("status")]
        assert typing and all(t["message_id"] in sent_ids for t in typing)
        assert all(t["typing_indicator"] == {"type": "text"} for t in typing)


async def test_the_real_route_answers_the_handshake_and_refuses_a_malformed_signed_body(
    tmp_path: Path,
) -> None:
    async with channel_world(tmp_path, kit.Kit()) as world:
        query = f"?hub.mode=subscribe&hub.verify_token={kit.VERIFY_TOKEN}&hub.challenge=4711"
        status, body, headers = await world.post(WebhookCall(b"", method="GET", query=query))
        assert (status, body) == (200, b"4711")
        assert headers["Content-Type"].startswith("text/plain")
        bad = (
            b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": '
            b'"messages", "value": {"metadata": {"phone_number_id": "1"}, "messages": '
            b'[{"from": "1", "id": "wamid.1", "timestamp": "1", "type": "text", "text": 5}]}}]}]}'
        )
        status, body, _ = await world.post(signing.signed(bad, kit.APP_SECRET))
        assert status == 400 and b"text" in body
        assert await world.sessions() == []


async def test_a_message_acknowledged_before_a_restart_is_answered_exactly_once(
    tmp_path: Path,
) -> None:
    seen = await stop_while_working_then_restart(
        tmp_path, kit.Kit(), kit.SEND_PATH, user=WA_ID, text="hi", expect="help assistant"
    )
    assert "typing_indicator" in seen.held.json  # it stopped before the bot's turn
    assert seen.user_lines == ["hi"]
    assert len([r for r in seen.replies if "help assistant" in r.text]) == 1
