"""The FAQ bot hosted as botbuilder's samples do (``02.echo-bot``'s ``app.py``).

An aiohttp app, ``CloudAdapter(ConfigurationBotFrameworkAuthentication(config))`` with an
empty app id and password (authentication off, as in the Emulator), POST /api/messages.
Replies to an activity with ``deliveryMode: expectReplies`` come back in the HTTP response;
any other goes to the activity's ``serviceUrl`` through botbuilder's ``ConnectorClient``.

The handler is ``CloudAdapter.process`` for a POST, less one call: botbuilder 4.17.1 hands
the ``ExpectedReplies`` body, already serialized to a dict, to ``serializer_helper``, which
raises on a dict (every expectReplies request is a 500). Everything else is the adapter's.

    python benchmarks/baselines/cloudadapter.py --port 3982
"""

from __future__ import annotations

from aiohttp import web
from bot import faq_bot, on_error, port_argument
from botbuilder.core.integration import aiohttp_error_middleware
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import Activity


class DefaultConfig:
    """The samples' ``config.py``: credentials from the environment, empty here."""

    PORT = 3978
    APP_ID = ""
    APP_PASSWORD = ""
    APP_TYPE = "MultiTenant"
    APP_TENANTID = ""


def main() -> None:
    """Serve POST /api/messages on 127.0.0.1."""
    port = port_argument(__doc__.split("\n\n")[0])
    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(DefaultConfig()))
    adapter.on_turn_error = on_error
    bot = faq_bot()

    async def messages(request: web.Request) -> web.Response:
        if "application/json" not in request.headers.get("Content-Type", ""):
            raise web.HTTPUnsupportedMediaType()
        activity = Activity().deserialize(await request.json())
        if not activity.type:
            raise web.HTTPBadRequest()
        auth_header = request.headers.get("Authorization", "")
        invoke_response = await adapter.process_activity(auth_header, activity, bot.on_turn)
        if invoke_response:
            return web.json_response(data=invoke_response.body, status=invoke_response.status)
        return web.Response(status=201)

    app = web.Application(middlewares=[aiohttp_error_middleware])
    app.router.add_post("/api/messages", messages)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
