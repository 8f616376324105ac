"""An agent on the Microsoft 365 Agents SDK, hosted as the SDK's aiohttp quickstart does.

Run with ``.venv-bots/bin/python agents_echo.py PORT``. Configuration comes only from the
environment through ``load_configuration_from_env`` (``CONNECTIONS__SERVICE_CONNECTION__
SETTINGS__...``). Same behaviour as ``botbuilder_echo.py``: ``fail``, ``many``,
``handoff to NAME``, else ``echo: TEXT``; every activity is recorded to ``$BOT_RECORD``.
"""

from __future__ import annotations

import json
import os
import sys
from os import environ

from aiohttp.web import Application, Request, Response, run_app
from microsoft_agents.activity import Activity, load_configuration_from_env
from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.aiohttp import (
    CloudAdapter,
    jwt_authorization_middleware,
    start_agent_process,
)
from microsoft_agents.hosting.core import (
    AgentApplication,
    Authorization,
    MemoryStorage,
    TurnContext,
    TurnState,
)

agents_sdk_config = load_configuration_from_env(environ)
STORAGE = MemoryStorage()
CONNECTION_MANAGER = MsalConnectionManager(**agents_sdk_config)
ADAPTER = CloudAdapter(connection_manager=CONNECTION_MANAGER)
AUTHORIZATION = Authorization(STORAGE, CONNECTION_MANAGER, **agents_sdk_config)
AGENT_APP = AgentApplication[TurnState](
    storage=STORAGE, adapter=ADAPTER, authorization=AUTHORIZATION, **agents_sdk_config
)


def record(context: TurnContext) -> None:
    entry = {"activity": context.activity.model_dump(mode="json", by_alias=True, exclude_none=True)}
    with open(os.environ["BOT_RECORD"], "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


@AGENT_APP.activity("event")
async def on_event(context: TurnContext, _state: TurnState) -> None:
    record(context)


@AGENT_APP.conversation_update("membersAdded")
async def on_members_added(context: TurnContext, _state: TurnState) -> None:
    record(context)
    await context.send_activity("welcome from the agent")


@AGENT_APP.activity("message")
async def on_message(context: TurnContext, _state: TurnState) -> None:
    record(context)
    text = (context.activity.text or "").strip()
    if text == "fail":
        raise RuntimeError("the agent failed on purpose")
    if text == "many":
        for word in ("one", "two", "three"):
            await context.send_activity(word)
        return
    if text.startswith("handoff to "):
        target = text.removeprefix("handoff to ").strip()
        await context.send_activity(
            Activity(
                type="event",
                name="handoff.initiate",
                value={"provider": target, "reason": "the agent handed off"},
            )
        )
        return
    await context.send_activity(f"echo: {text}")


async def entry_point(req: Request) -> Response:
    return await start_agent_process(req, req.app["agent_app"], req.app["adapter"])


APP = Application(middlewares=[jwt_authorization_middleware])
APP.router.add_post("/api/messages", entry_point)
APP["agent_configuration"] = CONNECTION_MANAGER.get_default_connection_configuration()
APP["agent_app"] = AGENT_APP
APP["adapter"] = AGENT_APP.adapter

if __name__ == "__main__":
    run_app(APP, host="127.0.0.1", port=int(sys.argv[1]), print=None)
