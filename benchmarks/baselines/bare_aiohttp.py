"""The ceiling of one Python process: a bare aiohttp handler that parses the JSON activity
and answers JSON, with no bot and no framework.

    python benchmarks/baselines/bare_aiohttp.py --port 3981
"""

from __future__ import annotations

from aiohttp import web
from bot import port_argument


async def messages(request: web.Request) -> web.Response:
    """Parse the activity; answer one message activity in the shape of an expectReplies body."""
    try:
        activity = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the body is not JSON") from None
    if not isinstance(activity, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    reply = {
        "type": "message",
        "text": f"You said: {activity.get('text', '')}",
        "conversation": activity.get("conversation"),
        "replyToId": activity.get("id"),
    }
    return web.json_response({"activities": [reply]})


def main() -> None:
    """Serve POST /api/messages on 127.0.0.1."""
    port = port_argument(__doc__.split("\n\n")[0])
    app = web.Application()
    app.router.add_post("/api/messages", messages)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
