"""The access log: one line per request without its query, and no work when it is off."""

from __future__ import annotations

import logging

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from connector.app import AccessLogger


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def ok(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def served(level: int) -> list[str]:
    """What one GET /page?token=secret to a real server writes to its access log at
    ``level``."""
    logger = logging.getLogger(f"midtier.test-access-{level}")
    logger.setLevel(level)
    lines = Lines()
    logger.addHandler(lines)
    app = web.Application()
    app.router.add_get("/page", ok)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log=logger, access_log_class=AccessLogger)
    try:
        async with aiohttp.ClientSession() as http, http.get(server.make_url("/page?token=s")) as r:
            assert r.status == 200
    finally:
        await server.close()
        logger.removeHandler(lines)
    return lines.lines


async def test_each_request_is_logged_without_its_query() -> None:
    [line] = await served(logging.INFO)
    assert line.startswith("GET /page 200 ") and "token" not in line


async def test_an_access_log_above_info_is_off_and_writes_nothing() -> None:
    quiet = logging.getLogger("midtier.test-quiet")
    quiet.setLevel(logging.WARNING)
    assert AccessLogger(quiet, "").enabled is False  # aiohttp then skips it altogether
    assert await served(logging.WARNING) == []
