"""A botbuilder-python bot hosted exactly as botbuilder's aiohttp samples host one.

Run with ``.venv-bots/bin/python botbuilder_echo.py PORT``. Configuration comes only from the
environment, as in the samples' ``config.py``: ``MicrosoftAppId`` / ``MicrosoftAppPassword``
(empty = auth off), plus, for auth on, botbuilder's own settings that make it trust midtier
(``TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL``, ``TO_BOT_FROM_CHANNEL_TOKEN_ISSUER``,
``TO_CHANNEL_FROM_BOT_LOGIN_URL``, ``TO_CHANNEL_FROM_BOT_OAUTH_SCOPE``) and ``requests``'
``REQUESTS_CA_BUNDLE`` when midtier speaks HTTPS with a private CA.

What it does with a message: ``fail`` raises (the adapter answers 500); ``many`` sends
``one``, ``two``, ``three``; ``handoff to NAME`` sends ``handoff.initiate`` for provider NAME;
``members`` answers with the conversation's member ids (a Connector GET); ``say and delete``
sends ``soon gone``, deletes it (a Connector DELETE) and says ``deleted ID``; anything else is
echoed as ``echo: TEXT``. New members are greeted. Every activity it receives is appended as
one JSON line to ``$BOT_RECORD`` with the claims of the caller it authenticated.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from aiohttp import web
from botbuilder.core import ActivityHandler, TurnContext
from botbuilder.core.bot_adapter import BotAdapter
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import ChannelAccount

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repo: adapters.botside.handoff
from adapters.botside.handoff import create_handoff_initiation

_SETTINGS = (
    "TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL",
    "TO_BOT_FROM_CHANNEL_TOKEN_ISSUER",
    "TO_CHANNEL_FROM_BOT_LOGIN_URL",
    "TO_CHANNEL_FROM_BOT_OAUTH_SCOPE",
)


class DefaultConfig:
    """Bot configuration, as in the samples' config.py."""

    PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 3978
    APP_ID = os.environ.get("MicrosoftAppId", "")  # noqa: SIM112 (the samples spell it so)
    APP_PASSWORD = os.environ.get("MicrosoftAppPassword", "")  # noqa: SIM112


for _name in _SETTINGS:
    if os.environ.get(_name):
        setattr(DefaultConfig, _name, os.environ[_name])


def record(turn_context: TurnContext) -> None:
    identity = turn_context.turn_state.get(BotAdapter.BOT_IDENTITY_KEY)
    entry = {
        "activity": turn_context.activity.serialize(),
        "claims": dict(identity.claims) if identity is not None else None,
        "authenticated": bool(identity and identity.is_authenticated),
    }
    with open(os.environ["BOT_RECORD"], "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


class EchoBot(ActivityHandler):
    async def on_turn(self, turn_context: TurnContext) -> None:
        record(turn_context)
        await super().on_turn(turn_context)

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        for member in members_added:
            if member.id != turn_context.activity.recipient.id:
                await turn_context.send_activity("welcome from the remote bot")

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        text = (turn_context.activity.text or "").strip()
        if text == "fail":
            raise RuntimeError("the bot failed on purpose")
        if text == "many":
            for word in ("one", "two", "three"):
                await turn_context.send_activity(word)
            return
        if text.startswith("handoff to "):
            target = text.removeprefix("handoff to ").strip()
            context = {"provider": target, "reason": "the remote bot handed off"}
            await turn_context.send_activity(create_handoff_initiation(turn_context, context))
            return
        if text == "say and delete":
            # botbuilder's own calls: POST the reply, then DELETE it by the id midtier gave
            sent = await turn_context.send_activity("soon gone")
            await turn_context.delete_activity(sent.id)
            await turn_context.send_activity(f"deleted {sent.id}")
            return
        if text == "members":
            connector = turn_context.turn_state[CloudAdapter.BOT_CONNECTOR_CLIENT_KEY]
            members = await connector.conversations.get_conversation_members(
                turn_context.activity.conversation.id
            )
            await turn_context.send_activity("members: " + ",".join(m.id for m in members))
            return
        await turn_context.send_activity(f"echo: {text}")


CONFIG = DefaultConfig()
ADAPTER = CloudAdapter(ConfigurationBotFrameworkAuthentication(CONFIG))
BOT = EchoBot()


async def messages(req: web.Request) -> web.Response:
    return await ADAPTER.process(req, BOT)


APP = web.Application()
APP.router.add_post("/api/messages", messages)

if __name__ == "__main__":
    web.run_app(APP, host="127.0.0.1", port=CONFIG.PORT, print=None)
