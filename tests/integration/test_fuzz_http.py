"""Whatever arrives on any HTTP route, midtier answers with a status under 500.

One real server (``support.fuzz_world``: bot_configs/ plus a remote Bot Framework bot, a
webhook service and a Rasa bot, so that every route is mounted) gets hypothesis-generated
requests on raw sockets: random bytes, invalid UTF-8, lone surrogates, deep nesting, wrong
JSON types, huge values, odd and non-ASCII headers, broken chunked encoding, a lying
Content-Length. The
authenticated cases carry a valid Connector token for an open conversation of the remote
bot, a correctly signed webhook callback, the right Rasa callback secret. After each route
the server must still serve a normal chat, and no handler may have crashed.

``MIDTIER_FUZZ_EXAMPLES`` (default 40) is the number of requests per route.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.http_exceptions import HttpProcessingError
from support.fuzz import (
    EXAMPLES,
    draw,
    routes,
)
from support.fuzz_world import (
    ENV,
    Keys,
    Records,
    fakes,
    fuzzed_deployment,
    normal_chat_works,
    open_conversations,
    write_config,
)
from support.raw import (
    RawRequest,
    Reply,
    describe,
    send,
)
from support.server import Running, serve

ROUTES = list(routes(Keys("c", "w", "r", "t")))


@dataclass
class World:
    run: Running
    keys: Keys
    port: int
    log: Records


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with fuzzed_deployment(tmp_path_factory.mktemp("fuzz-http")) as (run, fake, records):
        keys = await open_conversations(run.base, fake)
        yield World(run, keys, int(run.base.rsplit(":", 1)[1]), records)


def _crashes(records: list[logging.LogRecord]) -> list[str]:
    """Errors logged while serving: handler exceptions, failed background work.

    aiohttp also logs at error level when it refuses a request it cannot parse (and answers
    400 itself), or when a body nobody read does not decode as it drains it after the
    answer; those are the client's fault, not a crash.
    """
    out = []
    for record in records:
        if record.levelno < logging.ERROR:
            continue
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) or isinstance(
            getattr(exc, "__cause__", None), HttpProcessingError
        ):
            continue
        out.append(f"{record.name}: {record.getMessage()} {exc!r}")
    return out


def _not_supported(request: RawRequest, reply: Reply) -> bool:
    """The README's 501 for the Connector calls midtier deliberately lacks (a bot asking to
    create or list conversations, history, attachments): no failure, and never for input."""
    path = request.target.split(b"?", 1)[0]
    lacking = path == b"/v3/conversations" or (
        path.startswith(b"/v3/conversations/")
        and (path.endswith(b"/activities/history") or path.endswith(b"/attachments"))
    )
    return reply.status == 501 and lacking and b'"code": "NotSupported"' in reply.body


def _bad(request: RawRequest, reply: Reply) -> bool:
    if reply.status is None:
        # Unanswered is fine only when the request never fully arrived: its promised body
        # never came, or the server had stopped reading (and a reset can eat an answer).
        return request.framing != "long" and reply.sent_all
    return reply.status >= 500 and not _not_supported(request, reply)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("route", ROUTES)
async def test_bad_input_gets_a_client_error_never_a_server_error(world: World, route: str) -> None:
    first_record = len(world.log.records)
    statuses: Counter[int | None] = Counter()
    failures = []
    for request in draw(routes(world.keys)[route], EXAMPLES):
        reply = await send(world.port, request)
        statuses[reply.status] += 1
        if _bad(request, reply):
            failures.append(f"{reply.status} {reply.body[:200]!r} <- {describe(request)}")
    assert not failures, f"{len(failures)} of {EXAMPLES}:\n" + "\n".join(failures[:5])
    assert not _crashes(world.log.records[first_record:])
    assert sum(n for status, n in statuses.items() if status is not None) > EXAMPLES // 2
    await normal_chat_works(world.run.ws_base)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("route", "past_the_door"),
    [
        # 401/403/404/409 are the answers of the checks before the body is parsed
        ("v3 connector, bot's token", b'"MalformedPayload"'),
        ("webhook, signed", b'"MalformedPayload"'),
        ("webhook, signed with the previous secret", b'"MalformedPayload"'),
        ("rasa callback, right secret", b'"MalformedPayload"'),
        ("routing/explain, agent token", b'"MalformedPayload"'),
        # invalid_grant comes after the credential was checked
        ("auth/token, right credential", b'"invalid_grant"'),
        ("adfs/oauth2/token, right client", b'"access_token"'),
    ],
)
async def test_authenticated_junk_reaches_the_parsers(
    world: World, route: str, past_the_door: bytes
) -> None:
    """The authenticated cases are not all refused at the door: the parsers see them."""
    replies = [await send(world.port, r) for r in draw(routes(world.keys)[route], EXAMPLES)]
    assert any(past_the_door in reply.body for reply in replies), Counter(r.status for r in replies)


async def test_the_inputs_of_the_issue_get_4xx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The requests issue 6 saw answered with 500, one by one, with the reason they get."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    async with fakes() as fake:
        config = write_config(tmp_path, fake.base)
        async with serve(config, data_dir=tmp_path / "data") as run:
            keys = await open_conversations(run.base, fake)
            port = int(run.base.rsplit(":", 1)[1])
            deep = b"[" * 5000 + b"]" * 5000
            json_type = ((b"Content-Type", b"application/json"),)
            bearer = ((b"Authorization", b"Bearer " + keys.bearer.encode()),)
            bad_bearer = ((b"Authorization", b"Bearer \xff"),)
            connector = f"/v3/conversations/{keys.remote}/activities".encode()
            cases: list[tuple[RawRequest, int, bytes]] = [
                (RawRequest(b"POST", b"/auth/token", json_type, deep), 400, b"nested deeper"),
                (
                    RawRequest(
                        b"POST",
                        b"/auth/token",
                        ((b"Content-Type", b"application/json; charset=klingon"),),
                        b"{}",
                    ),
                    415,
                    b"unknown charset 'klingon'",
                ),
                (
                    RawRequest(
                        b"POST", b"/auth/token", ((b"Content-Type", b"multipart/form-data"),), b"x"
                    ),
                    415,
                    b"not multipart/form-data",
                ),
                (
                    RawRequest(
                        b"POST",
                        b"/auth/token",
                        ((b"Content-Type", b"application/x-www-form-urlencoded"),),
                        b"code=%ff",
                    ),
                    400,
                    b"not valid utf-8",
                ),
                (RawRequest(b"POST", b"/auth/token", bad_bearer, b""), 401, b"must be ASCII"),
                (RawRequest(b"GET", connector[:-11] + b"/members", bad_bearer), 401, b"ASCII"),
                (RawRequest(b"POST", b"/rasa/orders/callback", bad_bearer, b"{}"), 401, b"ASCII"),
                (RawRequest(b"POST", b"/adfs/oauth2/token", bad_bearer, b""), 401, b"ASCII"),
                (RawRequest(b"POST", b"/adfs/oauth2/token", (), b"\xff"), 415, b"expected"),
                (RawRequest(b"POST", connector, json_type + bearer, deep), 400, b"nested deeper"),
                (
                    RawRequest(
                        b"POST",
                        connector,
                        json_type + bearer,
                        b'{"type": "message", "text": "\\ud800"}',
                    ),
                    400,
                    b"lone UTF-16 surrogate",
                ),
                (
                    RawRequest(
                        b"POST",
                        b"/rasa/orders/callback?secret=" + ENV["FUZZ_RASA_SECRET"].encode(),
                        json_type,
                        f'{{"recipient_id": "{keys.orders}", "buttons": 1}}'.encode(),
                    ),
                    400,
                    b"'buttons' must be a list of objects",
                ),
                (
                    RawRequest(b"POST", connector, json_type + bearer, b"x" * 100_000, "chunked"),
                    413,
                    b"over the limit",
                ),
            ]
            got = [(await send(port, request)) for request, _, _ in cases]
            assert [
                (r.status, reason in r.body) for r, (_, _, reason) in zip(got, cases, strict=True)
            ] == [(status, True) for _, status, _ in cases], [r.body[:200] for r in got]
