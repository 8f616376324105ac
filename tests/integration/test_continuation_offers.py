"""Cross-channel continuation: a route that serves another channel only is offered as a
move, and codes that are wrong, expired, used or guessed are refused; the link's page.

The same deployment as ``test_continuation`` (``support.continuation_world``).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import aiohttp
from support.continuation_world import CODE, code_on_web, deployment, system
from support.server import Chatter, chat

from connector.activity import now


async def test_a_provider_that_serves_another_channel_only_is_offered_as_a_move(
    tmp_path: Path,
) -> None:
    routes = {"disputes": {"channels": ["sms"]}}
    async with deployment(tmp_path, routes) as world, chat(world.run) as (web, welcome):
        me = Chatter(web)
        await me.say("I want to dispute a charge")
        offer = await web.expect("message", system("can help you with this on SMS"))
        assert offer["text"].startswith("The disputes assistant can help you with this on SMS.")
        [code] = CODE.findall(offer["text"])
        session = await world.on("webchat", welcome["conversation"])
        [decision] = await world.run.engine.store.decisions(session.id)
        assert (decision.action, decision.provider, decision.channels) == (
            "move",
            "disputes",
            ["sms"],
        )
        assert decision.next_best == "agents" and session.legs == []

        # On SMS with the code: the question that asked for it is answered there.
        sms = world.phone("sms")
        await sms.say(code)
        await sms.expect(lambda t: t.startswith("You're continuing"))
        await sms.expect(lambda t: "merchant" in t)
        moved = await world.session(session.id)
        assert moved.channel == "sms" and moved.current_provider == "disputes"

    async with deployment(tmp_path / "again", routes) as world, chat(world.run) as (web, _):
        me = Chatter(web)
        await me.say("I want to dispute a charge")
        await web.expect("message", system("can help you with this on SMS"))
        # Carrying on in the web chat: routing goes on as before, without the SMS-only bot.
        await me.say("I want to dispute a charge")
        await web.expect("message", system("passing you to a support agent"))


async def test_wrong_expired_and_guessed_codes_are_refused(tmp_path: Path) -> None:
    async with deployment(tmp_path) as world, chat(world.run) as (web, welcome):
        me = Chatter(web)
        sms = world.phone("sms")
        await sms.say("ABCD-EFG2")
        assert (await sms.expect(lambda _t: True)).startswith("That code is not valid")

        # An expired code.
        codes = world.run.engine.continuation.codes
        code, _ = await code_on_web(web, me)  # (that was one wrong code)
        later = now() + timedelta(minutes=11)
        codes.clock = lambda: later
        await sms.say(code)
        assert (await sms.expect(lambda _t: True)).startswith("That code is not valid")
        codes.clock = now

        # Guessing: after five wrong codes from one conversation (two so far), even the right
        # one is refused there, while another conversation can still use it.
        code, token = await code_on_web(web, me)
        for _ in range(3):
            await sms.say("ZZZZ-ZZZ2")
            assert (await sms.expect(lambda _t: True)).startswith("That code is not valid")
        await sms.say(code)
        assert (await sms.expect(lambda _t: True)).startswith("Too many wrong codes")
        assert (await world.on("webchat", welcome["conversation"])).channel == "webchat"

        async with aiohttp.ClientSession() as http:
            page = await http.get(f"{world.run.base}/continue")
            assert (
                page.status == 200
                and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
            )
            link = await http.post(f"{world.run.base}/continue", json={"token": token})
            shown = await link.json()
            assert link.status == 200 and shown["code"] == code
            by_name = {c["channel"]: c for c in shown["channels"]}
            # Every channel but the one the user is on (the deployment's own included).
            assert set(by_name) == set(world.run.engine.channels) - {"webchat"}
            assert {"sms", "chatapp"} <= set(by_name)
            assert by_name["chatapp"]["link"] == f"https://chatapp.example/open?text={code}"
            assert by_name["sms"] == {"channel": "sms", "title": "SMS", "link": None}
            unknown = await http.post(f"{world.run.base}/continue", json={"token": "x" * 43})
            assert unknown.status == 404

            app = world.phone("chatapp", "+16505550000")
            await app.say(code)
            await app.expect(lambda t: t.startswith("You're continuing"))
            used = await http.post(f"{world.run.base}/continue", json={"token": token})
            assert used.status == 404
