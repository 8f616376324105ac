"""The FAQ bot on botbuilder's older ``BotFrameworkHttpAdapter`` (a ``BotFrameworkAdapter``).

``BotFrameworkAdapterSettings`` with an empty app id and password (authentication off),
POST /api/messages. Replies to an activity with ``deliveryMode: expectReplies`` come back in
the HTTP response; any other goes to the activity's ``serviceUrl``.

    python benchmarks/baselines/legacy_adapter.py --port 3983
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from bot import faq_bot, on_error, port_argument
from botbuilder.core import BotFrameworkAdapterSettings
from botbuilder.core.integration import aiohttp_error_middleware
from botbuilder.integration.aiohttp import BotFrameworkHttpAdapter


def main() -> None:
    """Serve POST /api/messages on 127.0.0.1."""
    port = port_argument(__doc__.split("\n\n")[0])
    adapter = BotFrameworkHttpAdapter(BotFrameworkAdapterSettings("", ""))
    adapter.on_turn_error = on_error
    bot = faq_bot()

    async def messages(request: web.Request) -> Any:
        return await adapter.process(request, None, bot)

    app = web.Application(middlewares=[aiohttp_error_middleware])
    app.router.add_post("/api/messages", messages)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
