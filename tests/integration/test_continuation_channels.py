"""Cross-channel continuation between two real platform adapters: a WhatsApp conversation
continues over SMS (Twilio) because both platforms proved the same phone number.

WhatsApp proves its sender's number; Twilio's SMS senders are trusted here
(``sms_identity: true``), as a deployment that trusts its SMS routes would configure it.
"""

from __future__ import annotations

from pathlib import Path

from support.channel_kits.twilio import TwilioKit
from support.channel_kits.whatsapp import Kit as WhatsAppKit
from support.channel_world import World, channel_config, environment
from support.fake_platform import fake_platform
from support.server import AGENT_TOKEN, serve

NUMBER = "+16505551234"


async def test_a_whatsapp_conversation_continues_over_sms_from_the_same_number(
    tmp_path: Path,
) -> None:
    whatsapp, twilio = WhatsAppKit(), TwilioKit()
    env = {"MIDTIER_AGENT_TOKEN": AGENT_TOKEN, **whatsapp.env, **twilio.env}
    with environment(env):
        async with fake_platform() as platform:
            whatsapp.prepare(platform)
            twilio.prepare(platform)
            channel_config(tmp_path, "whatsapp", whatsapp.settings(platform.base_url))
            sms_block = {**twilio.settings(platform.base_url), "sms_identity": True}
            config = channel_config(tmp_path, "twilio", sms_block)
            async with serve(config, data_dir=tmp_path / "data") as run:
                app = World(run, platform, whatsapp, "whatsapp").user(NUMBER.removeprefix("+"))
                sms = World(run, platform, twilio, "twilio").user(NUMBER)
                await app.say("what's my balance?")
                await app.expect(lambda t: "Home tab" in t)
                [started] = await run.engine.store.list_sessions()
                assert started.claims["identities"] == [f"phone:{NUMBER}"]

                await sms.say("hi")
                offer = (
                    await sms.expect(lambda t: t.startswith("Continue your conversation"))
                ).text
                assert "Reply YES" in offer
                unmoved = await run.engine.store.get(started.id)
                assert unmoved is not None and unmoved.channel == "whatsapp"

                await sms.say("YES")
                await sms.expect(lambda t: t.startswith("You're continuing your conversation"))
                await app.expect(lambda t: "continues on" in t)
                moved = await run.engine.store.get(started.id)
                assert moved is not None
                assert (moved.channel, moved.user_id) == ("twilio", NUMBER)
                assert [(leg.channel, leg.provider) for leg in moved.legs] == [
                    ("whatsapp", "faq"),
                    ("twilio", "faq"),
                ]
                # The same session answers over SMS now, with its history.
                await sms.say("how do I reset my password")
                await sms.expect(lambda t: "Forgot password" in t)
                transcript = await run.engine.store.transcript(moved.id)
                said = [e.text for e in transcript if e.speaker == "user"]
                assert said[0] == "what's my balance?" and said[-1] == "how do I reset my password"
