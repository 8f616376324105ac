"""A fake platform API in its own process, so that its CPU is neither midtier's nor the
benchmark's: Telegram's Bot API (``/bot<token>/<method>``) and the Bot Framework Connector
service (``/v3/conversations/<id>/activities[/<id>]``). It records when each reply arrived.

    python benchmarks/fake_platform.py --port 3990

``GET /stats`` answers ``{"replies": n, "last": t, "text": the last reply's text, "arrivals":
{conversation: [t, ...]}}`` (``t`` in ``time.monotonic()`` seconds, the clock that
``wrk_requests.lua`` stamps requests with; ``?arrivals=0`` leaves them out); ``POST /reset``
forgets them. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections import defaultdict

from aiohttp import web


class Replies:
    """When each reply arrived, by conversation (a Telegram chat or a Connector conversation)."""

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.reset()

    def reset(self) -> None:
        """Forget every arrival."""
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.count = 0
        self.last = 0.0
        self.text = ""

    def add(self, conversation: str, text: object) -> int:
        """Note one reply now; its platform message id."""
        self.text = str(text)
        self.last = time.monotonic()
        self.arrivals[conversation].append(self.last)
        self.count += 1
        return next(self.ids)


REPLIES = web.AppKey("replies", Replies)


async def _body(request: web.Request) -> dict[str, object]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the body is not JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    return body


async def telegram(request: web.Request) -> web.Response:
    """Bot API methods: ``sendMessage`` is a reply; the rest (chat actions) are only answered."""
    message_id = 0
    if request.match_info["method"] == "sendMessage":
        body = await _body(request)
        message_id = request.app[REPLIES].add(str(body.get("chat_id")), body.get("text"))
    return web.json_response({"ok": True, "result": {"message_id": message_id, "date": 0}})


async def connector(request: web.Request) -> web.Response:
    """The Connector's send-to-conversation and reply-to-activity: each is a reply."""
    activity = await _body(request)
    reply_id = request.app[REPLIES].add(request.match_info["conversation"], activity.get("text"))
    return web.json_response({"id": f"reply-{reply_id}"})


async def stats(request: web.Request) -> web.Response:
    """What arrived since the last reset."""
    replies = request.app[REPLIES]
    answer: dict[str, object] = {
        "replies": replies.count,
        "last": replies.last,
        "text": replies.text,
    }
    if request.query.get("arrivals") != "0":
        answer["arrivals"] = replies.arrivals
    return web.json_response(answer)


async def reset(request: web.Request) -> web.Response:
    """Forget what arrived."""
    request.app[REPLIES].reset()
    return web.json_response({"ok": True})


def main() -> None:
    """Serve the fake APIs on 127.0.0.1."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    port = int(parser.parse_args().port)
    app = web.Application(client_max_size=1 << 20)
    app[REPLIES] = Replies()
    app.router.add_post("/bot{token}/{method}", telegram)
    app.router.add_post("/v3/conversations/{conversation}/activities", connector)
    app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", connector)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
