"""Fuzzing midtier from the outside: a deployment with every route mounted, raw HTTP and
WebSocket clients, and hypothesis strategies for what strangers send.

The deployment is ``bot_configs/`` plus three providers whose other ends are small real
servers in the test (``Fakes``): ``remote`` (a Bot Framework bot, auth on, so the Connector
API and the token issuer are mounted), ``partner`` (a webhook service) and ``orders`` (a Rasa
bot on the callback channel). Every secret comes from an environment variable (``ENV``).

Requests are written byte by byte on raw sockets (``asyncio.open_connection``): aiohttp's
client refuses to send most of what matters here (non-ASCII header bytes, broken chunked
encoding, a ``Content-Length`` that lies, invalid UTF-8 in a text frame).

``MIDTIER_FUZZ_EXAMPLES`` sets how many requests each route gets (default 40).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import yaml
from aiohttp import web
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from adapters.webhook_signing import sign
from support.rasa_config import TRACK_ORDER
from support.server import DEFAULT_CONFIG, Chatter, Frames, free_port

EXAMPLES = int(os.environ.get("MIDTIER_FUZZ_EXAMPLES", "40"))
APP_ID = "0d9e5c1a-7b2f-4e8a-9c3d-5f6a7b8c9d0e"

# Distinctive values, so that finding one in a log can only mean it leaked.
ENV = {
    "MIDTIER_AGENT_TOKEN": "desk-token-Zq81LmXv20sPw",
    "MIDTIER_FAQ_CREDENTIAL": "faq-cred-Ht55KoBn37qYe",
    "MIDTIER_DISPUTES_CREDENTIAL": "disputes-cred-Wm02RcTs98uJf",
    "MIDTIER_AGENTS_CREDENTIAL": "agents-cred-Pd46XhGa11vNk",
    "FUZZ_REMOTE_PASSWORD": "bot-password-Ly73QeDw05mKr",
    "FUZZ_REMOTE_CREDENTIAL": "remote-cred-Bs29NuVc64tHz",
    "FUZZ_PARTNER_SECRET": "webhook-secret-Jx18GfRk77pAo",
    "FUZZ_PARTNER_PREVIOUS_SECRET": "webhook-old-secret-Ck40TzMy92wEb",
    "FUZZ_PARTNER_CREDENTIAL": "partner-cred-Fv63SaLp28nXq",
    "FUZZ_RASA_TOKEN": "rasa-token-Ew57DjHq13bUs",
    "FUZZ_RASA_SECRET": "rasa-callback-secret-Gn84VbKt36cWl",
    "FUZZ_ORDERS_CREDENTIAL": "orders-cred-Ru12YmPe49dZi",
}
SECRETS = sorted(ENV.values())
PARTNER_BEARER = b"Bearer " + ENV["FUZZ_PARTNER_CREDENTIAL"].encode()

T = TypeVar("T")


# ---------------------------------------------------------------------- the other ends


@dataclass
class Fakes:
    """The bot, the webhook service and the Rasa server, on one port; they record and say 200."""

    base: str = ""
    bot: list[dict[str, Any]] = field(default_factory=list)
    hook: list[dict[str, Any]] = field(default_factory=list)
    rasa: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def _record(self, into: list[dict[str, Any]], request: web.Request) -> None:
        body = await request.read()
        async with self.arrived:
            into.append(json.loads(body) if body else {})
            self.arrived.notify_all()

    async def _bot(self, request: web.Request) -> web.Response:
        await self._record(self.bot, request)
        return web.json_response({})

    async def _hook(self, request: web.Request) -> web.Response:
        await self._record(self.hook, request)
        return web.json_response({"activities": []})

    async def _rasa(self, request: web.Request) -> web.Response:
        await self._record(self.rasa, request)
        return web.Response(text="success")

    async def _rasa_any(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def wait_for(self, find: Callable[[], T | None], within: float = 20) -> T:
        """What ``find`` returns once it returns something; waits for new requests."""
        async with asyncio.timeout(within), self.arrived:
            while (found := find()) is None:
                await self.arrived.wait()
            return found


@asynccontextmanager
async def fakes() -> AsyncIterator[Fakes]:
    fake = Fakes()
    app = web.Application()
    app.router.add_post("/bot/api/messages", fake._bot)
    app.router.add_post("/hook", fake._hook)
    app.router.add_post("/rasa/webhooks/callback/webhook", fake._rasa)
    app.router.add_route("*", "/rasa/{tail:.*}", fake._rasa_any)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    fake.base = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


def write_config(tmp: Path, fakes_base: str) -> Path:
    """bot_configs/ plus ``remote``, ``partner`` and ``orders``, each serving one intent."""
    config = tmp / "config"
    shutil.copytree(DEFAULT_CONFIG, config, ignore=shutil.ignore_patterns("__pycache__"))
    (config / "nlu" / "orders.yml").write_text(TRACK_ORDER, encoding="utf-8")
    providers = yaml.safe_load((config / "providers.yaml").read_text(encoding="utf-8"))
    providers["providers"].update(
        {
            "remote": {
                "kind": "botframework",
                "title": "the remote bot",
                "timeout_s": 5,
                "endpoint": f"{fakes_base}/bot/api/messages",
                "app_id": APP_ID,
                "app_password": "${FUZZ_REMOTE_PASSWORD}",
                "credential": "${FUZZ_REMOTE_CREDENTIAL}",
            },
            "partner": {
                "kind": "webhook",
                "title": "the partner desk",
                "timeout_s": 5,
                "url": f"{fakes_base}/hook",
                "secret": "${FUZZ_PARTNER_SECRET}",
                "previous_secret": "${FUZZ_PARTNER_PREVIOUS_SECRET}",
                "credential": "${FUZZ_PARTNER_CREDENTIAL}",
            },
            "orders": {
                "kind": "rasa",
                "title": "the orders assistant",
                "timeout_s": 5,
                "url": f"{fakes_base}/rasa",
                "channel": "callback",
                "token": "${FUZZ_RASA_TOKEN}",
                "callback_secret": "${FUZZ_RASA_SECRET}",
                "credential": "${FUZZ_ORDERS_CREDENTIAL}",
            },
        }
    )
    (config / "providers.yaml").write_text(yaml.safe_dump(providers), encoding="utf-8")
    routing = yaml.safe_load((config / "routing.yaml").read_text(encoding="utf-8"))
    routes = routing["routes"]
    routes["faq"]["intents"].remove("check_balance")
    routes["disputes"]["intents"] = ["dispute_status"]
    routing["routes"] = {
        "remote": {"intents": ["check_balance"]},
        "partner": {"intents": ["dispute_charge", "duplicate_charge"]},
        "orders": {"intents": ["track_order"]},
        **routes,
    }
    (config / "routing.yaml").write_text(yaml.safe_dump(routing), encoding="utf-8")
    return config


@dataclass(frozen=True)
class Keys:
    """What an authenticated caller has: open conversations of each provider, a token."""

    remote: str  # Connector conversation id of an open leg of the remote bot
    partner: str  # webhook conversation id
    orders: str  # Rasa sender id
    bearer: str  # a valid Connector token of the remote bot


async def say_once(ws_base: str, text: str) -> None:
    """One web chat conversation that says ``text`` (and is acknowledged)."""
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{ws_base}/webchat/ws") as ws:
        client = Frames(ws)
        await client.send(type="hello", conversation=None, user=None)
        await client.expect("welcome")
        await Chatter(client).say(text)


async def open_conversations(base: str, fake: Fakes) -> Keys:
    """Open one conversation to each remote provider through the web chat; get a token."""
    ws_base = base.replace("http://", "ws://")
    await say_once(ws_base, "what's my balance?")
    await say_once(ws_base, "I want to dispute a charge")
    await say_once(ws_base, "where is my order")

    def bot_conversation() -> str | None:
        found = [a["conversation"]["id"] for a in fake.bot if a.get("type") == "message"]
        return found[0] if found else None

    def hook_conversation() -> str | None:
        found = [e["conversation"] for e in fake.hook if e.get("type") == "message"]
        return found[0] if found else None

    def rasa_sender() -> str | None:
        return fake.rasa[0]["sender"] if fake.rasa else None

    remote = await fake.wait_for(bot_conversation)
    partner = await fake.wait_for(hook_conversation)
    orders = await fake.wait_for(rasa_sender)
    form = {
        "grant_type": "client_credentials",
        "client_id": APP_ID,
        "client_secret": ENV["FUZZ_REMOTE_PASSWORD"],
        "scope": "https://api.botframework.com/.default",
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base}/adfs/oauth2/token", data=form) as r,
    ):
        assert r.status == 200, await r.text()
        bearer = (await r.json())["access_token"]
    return Keys(remote, partner, orders, bearer)


async def normal_chat_works(ws_base: str) -> None:
    """A new web chat conversation gets a bot's answer (the server still serves)."""
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{ws_base}/webchat/ws") as ws:
        client = Frames(ws)
        await client.send(type="hello", conversation=None, user=None)
        await client.expect("welcome")
        await Chatter(client).say("how do I reset my password?")
        await client.expect("message", lambda f: f["speaker"] == "bot")


# ---------------------------------------------------------------------- raw HTTP


FRAMINGS = ("length", "length", "chunked", "none", "short", "long", "badchunk")
# For authenticated requests: mostly framed right, so that the body reaches the parser.
GOOD_FRAMINGS = ("length",) * 4 + ("chunked",) * 2 + FRAMINGS


@dataclass(frozen=True)
class RawRequest:
    """One HTTP/1.1 request, exactly as written on the socket."""

    method: bytes
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    framing: str = "length"  # see FRAMINGS; "short"/"long": Content-Length lies

    def encode(self) -> bytes:
        head = [self.method + b" " + self.target + b" HTTP/1.1", b"Host: 127.0.0.1"]
        head += [name + b": " + value for name, value in self.headers]
        body = self.body
        if self.framing == "length":
            head.append(b"Content-Length: %d" % len(body))
        elif self.framing == "short":
            head.append(b"Content-Length: %d" % max(0, len(body) // 2))
        elif self.framing == "long":
            head.append(b"Content-Length: %d" % (len(body) + 17))
        elif self.framing in ("chunked", "badchunk"):
            head.append(b"Transfer-Encoding: chunked")
            body = _chunked(body, broken=self.framing == "badchunk")
        # "none": no length at all; what follows the headers is read as the next request
        head.append(b"Connection: close")
        return b"\r\n".join(head) + b"\r\n\r\n" + body


def _chunked(body: bytes, *, broken: bool) -> bytes:
    parts = [body[i : i + 1000] for i in range(0, len(body), 1000)]
    out = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
    if broken:  # a chunk size that is no hex number, then the rest of the body as is
        return b"zz\r\n" + body + b"\r\n0\r\n\r\n"
    return out + b"0\r\n\r\n"


@dataclass(frozen=True)
class Reply:
    status: int | None  # None: the server closed without answering
    body: bytes
    sent_all: bool  # False: the server closed before it had read all we sent


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    data = bytearray()
    try:
        while chunk := await reader.read(65536):
            data += chunk
    except ConnectionError:
        pass  # keep what came before the reset
    return bytes(data)


async def send(port: int, request: RawRequest, within: float = 15) -> Reply:
    """Write ``request`` on a fresh connection and read the answer until the server closes.

    Reading runs while writing: a server may answer (413, 405) and close before a big body
    is all sent, and an answer left unread when its reset arrives would be lost.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = asyncio.ensure_future(_read_all(reader))
    raw, sent_all = request.encode(), True
    try:
        for start in range(0, len(raw), 65536):
            writer.write(raw[start : start + 65536])
            await writer.drain()
        if request.framing == "long":
            writer.write_eof()  # the promised bytes never come
    except ConnectionError:
        sent_all = False
    try:
        async with asyncio.timeout(within):
            data = await answer
    finally:
        answer.cancel()
        writer.close()
        with suppress(ConnectionError):
            await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return Reply(None, data, sent_all)
    return Reply(int(parts[1]), body, sent_all)


def describe(request: RawRequest) -> str:
    """A short account of a request for a failure message."""
    headers = ", ".join(f"{n!r}: {v[:60]!r}" for n, v in request.headers)
    return (
        f"{request.method!r} {request.target[:100]!r} [{headers}] {request.framing}, "
        f"{len(request.body)} bytes: {request.body[:120]!r}"
    )


# ---------------------------------------------------------------------- generating input


def draw(strategy: st.SearchStrategy[T], count: int = EXAMPLES) -> list[T]:
    """``count`` examples of ``strategy``, generated by hypothesis (no shrinking: the test
    sends them all to one running server and reports every failing one)."""
    out: list[T] = []

    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: T) -> None:
        out.append(example)

    collect()
    return out


_text = st.text(max_size=30)
_scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)
json_values = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=20,
)
# A field of the wrong type: each JSON type once, then anything.
wrong_types = st.one_of(
    st.sampled_from([1, -1.5, True, None, "", "x", [], {}, [1], {"a": []}, [[{}]]]),
    json_values,
)
LONE_SURROGATES = ["\\ud800", "\\udbff", "\\udc00", "\\udfff", "\\ud83d"]


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


@st.composite
def lone_surrogate_json(draw_: st.DrawFn, base: Any = None) -> bytes:
    """A JSON document with a lone surrogate escape in one of its strings."""
    doc = draw_(json_values) if base is None else base
    text = json.dumps({"x": doc, "k": "marker"})
    lone = draw_(st.sampled_from(LONE_SURROGATES))
    return text.replace('"marker"', f'"a{lone}b"').encode()


@st.composite
def deep_json(draw_: st.DrawFn) -> bytes:
    depth = draw_(st.integers(min_value=65, max_value=30_000))
    opener = draw_(st.sampled_from(["[", '{"a":', '{"type": "message", "value": [']))
    closed = draw_(st.booleans())
    if not closed:
        return (opener * depth).encode()
    closer = {"[": "]", '{"a":': "}", '{"type": "message", "value": [': "]}"}[opener]
    return (opener * depth + "1" + closer * depth).encode()


invalid_utf8 = st.sampled_from(
    [
        b"\xff\xfe",
        b'{"type": "message", "text": "\xff"}',
        b'{"type": "message", "text": "\xed\xa0\x80"}',  # a surrogate as UTF-8
        b'{"text": "caf\xc3"}',  # truncated
        b"\xc0\xaf",  # overlong
        b"grant_type=\xff&code=\xfe",
    ]
) | st.binary(max_size=60).map(lambda b: b'{"text": "' + b + b'\xff"}')
huge_values = st.sampled_from(
    [
        _dumps({"type": "message", "text": "a" * 60_000}),
        _dumps({"type": "message", "text": "a" * 70_000}),  # over the limit
        b'{"type": "message", "value": ' + b"9" * 5000 + b"}",
        b'{"type": "message", "value": 1e999}',
        b'{"type": "message", "value": NaN}',
        _dumps([{"type": "message"}] * 5000),
        _dumps({"type": "message", "entities": [{}] * 8000}),
        b"x" * 200_000,
    ]
)
garbage_bodies: st.SearchStrategy[bytes] = st.one_of(
    st.binary(max_size=400),
    invalid_utf8,
    lone_surrogate_json(),
    deep_json(),
    json_values.map(_dumps),
    huge_values,
    st.just(b""),
)

CONTENT_TYPES: list[bytes | None] = [
    None,
    b"application/json",
    b"application/json; charset=utf-8",
    b"application/json; charset=klingon",
    b"application/json; charset=rot13",
    b"application/json; charset=utf-16",
    b"application/json; charset=\xff",
    b"text/plain; charset=latin-1",
    b"multipart/form-data",
    b"multipart/form-data; boundary=xyz",
    b"application/x-www-form-urlencoded",
    b"application/x-www-form-urlencoded; charset=nope",
    b"\xff\xfe/\xfd",
    b"garbage",
    b"a/b; c",
]
content_types = st.sampled_from(CONTENT_TYPES)
AUTH_JUNK: list[bytes] = [
    b"Bearer \xff",
    b"Bearer \xc3\xa9t\xc3\xa9",
    b"Basic \xff\xfe",
    b"Basic !!!notbase64",
    b"Basic " + base64.b64encode(b"\xff\xfe:\xff"),
    b"Bearer",
    b"Bearer    ",
    b"Bearer a.b.c",
    b"Bearer " + base64.urlsafe_b64encode(b"[" * 6000).rstrip(b"="),
    b"Bearer " + base64.urlsafe_b64encode(b'{"kid": ' + b"[" * 3000).rstrip(b"=") + b".e30.x",
    b"Digest username=x",
]
junk_authorization = st.one_of(
    st.none(),
    st.sampled_from(AUTH_JUNK),
    st.binary(max_size=80).filter(lambda b: b"\r" not in b and b"\n" not in b),
)


def _header(name: bytes, value: bytes | None) -> tuple[tuple[bytes, bytes], ...]:
    return () if value is None else ((name, value),)


@st.composite
def junk_headers(draw_: st.DrawFn) -> tuple[tuple[bytes, bytes], ...]:
    """A Content-Type, maybe an Authorization, maybe an odd header (non-ASCII, empty)."""
    headers = _header(b"Content-Type", draw_(content_types))
    headers += _header(b"Authorization", draw_(junk_authorization))
    odd = draw_(
        st.sampled_from(
            [
                None,
                (b"X-Odd", b"\xff\xfe\x80"),
                (b"X-Midtier-Timestamp", b"\xd9\xa3"),
                (b"X-Midtier-Signature", b"v1=\xff"),
                (b"Content-Encoding", b"gzip"),
                (b"Origin", b"http://\xff"),
                (b"Cookie", b"a=\xff"),
            ]
        )
    )
    return headers + ((odd,) if odd else ())


def path_segments() -> st.SearchStrategy[bytes]:
    """A path segment as sent: percent-encoded random bytes, or raw odd bytes."""
    return st.one_of(
        st.binary(min_size=1, max_size=40).map(lambda b: quote(b, safe="").encode()),
        st.sampled_from([b"%ff", b"%ED%A0%80", b"..", b"%00", b"\xff", b"a b", b"x" * 3000]),
        _text.filter(bool).map(lambda t: quote(t, safe="").encode()),
    )


@st.composite
def requests(
    draw_: st.DrawFn,
    methods: Iterable[bytes],
    targets: st.SearchStrategy[bytes],
    bodies: st.SearchStrategy[bytes] = garbage_bodies,
    headers: st.SearchStrategy[tuple[tuple[bytes, bytes], ...]] | None = None,
    signer: Callable[[bytes], tuple[tuple[bytes, bytes], ...]] | None = None,
) -> RawRequest:
    """A request to one route: junk headers, or ``headers`` (the authenticated ones)."""
    body = draw_(bodies)
    drawn = draw_(junk_headers() if headers is None else headers)
    if signer is not None:
        drawn += signer(body)
    return RawRequest(
        method=draw_(st.sampled_from(list(methods))),
        target=draw_(targets),
        headers=drawn,
        body=body,
        framing=draw_(st.sampled_from(FRAMINGS if headers is None else GOOD_FRAMINGS)),
    )


def fixed(target: str) -> st.SearchStrategy[bytes]:
    """The path, sometimes with a query string of junk."""
    query = st.one_of(
        st.just(b""),
        st.binary(max_size=30).map(lambda b: b"?q=" + quote(b, safe="").encode()),
        st.just(b"?secret=%ff&secret=%ED%A0%80"),
    )
    return query.map(lambda q: target.encode() + q)


@st.composite
def some_fields(
    draw_: st.DrawFn,
    required: dict[str, st.SearchStrategy[Any]],
    optional: dict[str, st.SearchStrategy[Any]],
) -> dict[str, Any]:
    """``required`` and at least one of ``optional`` (fixed_dictionaries often has none)."""
    names = draw_(st.lists(st.sampled_from(sorted(optional)), min_size=1, unique=True))
    out = {name: draw_(strategy) for name, strategy in required.items()}
    out.update({name: draw_(optional[name]) for name in names})
    return out


# Bodies shaped like what each route expects, with wrong types and bad bytes inside.
activity_like = some_fields(
    {},
    {
        "type": st.sampled_from(["message", "typing", "messageReaction", ""]) | wrong_types,
        "text": wrong_types,
        "id": wrong_types,
        "from": wrong_types,
        "conversation": wrong_types,
        "timestamp": st.sampled_from(["2026-13-45T99:99:99Z", "yesterday", 10**20]) | wrong_types,
        "attachments": wrong_types,
        "channelData": wrong_types,
        "entities": wrong_types,
        "suggestedActions": wrong_types,
    },
)
# (one_of picks its branches evenly: the shaped ones are listed more than once)
activity_bodies = st.one_of(
    garbage_bodies,
    activity_like.map(_dumps),
    activity_like.map(_dumps),
    activity_like.flatmap(lambda a: lone_surrogate_json(a)),
)


def webhook_bodies(conversation: str) -> st.SearchStrategy[bytes]:
    envelope = some_fields(
        {"conversation": st.just(conversation) | wrong_types},
        {
            "activities": st.lists(activity_like, max_size=3) | wrong_types,
            "action": st.sampled_from(["dance", ""]) | wrong_types,
            "target": wrong_types,
            "reason": wrong_types,
        },
    )
    return st.one_of(
        garbage_bodies,
        envelope.map(_dumps),
        envelope.map(_dumps),
        envelope.flatmap(lambda e: lone_surrogate_json(e)),
    )


def rasa_bodies(sender: str) -> st.SearchStrategy[bytes]:
    message = some_fields(
        {"recipient_id": st.just(sender) | wrong_types},
        {
            "text": wrong_types,
            "buttons": wrong_types | st.lists(wrong_types, max_size=3),
            "image": wrong_types,
            "attachment": wrong_types,
            "elements": wrong_types,
        },
    )
    return st.one_of(
        garbage_bodies,
        message.map(_dumps),
        message.map(_dumps),
        message.flatmap(lambda m: lone_surrogate_json(m)),
    )


def form_bodies(
    fields: dict[str, st.SearchStrategy[str]],
    required: dict[str, st.SearchStrategy[str]] | None = None,
) -> st.SearchStrategy[bytes]:
    """Forms (also as JSON, for the routes that take both), and junk."""
    optional = {k: v for k, v in fields.items() if k not in (required or {})}
    fixed = st.fixed_dictionaries(required or {}, optional=optional)
    form = fixed.map(lambda f: urlencode(f).encode()) | fixed.map(_dumps)
    raw_junk = st.sampled_from(
        [
            b"grant_type=%ff",
            b"code=%ED%A0%80&client_id=partner",
            b"client_id=a&client_id=b",
            b"&".join(b"f%d=1" % i for i in range(200)),
            b"%%%%=%%",
            b"=",
            b"a=1;b=2",
        ]
    )
    return st.one_of(form, raw_junk, garbage_bodies)


@st.composite
def token_requests(
    draw_: st.DrawFn,
    target: str,
    fields: dict[str, st.SearchStrategy[str]],
    required: dict[str, st.SearchStrategy[str]],
    extra: tuple[tuple[bytes, bytes], ...] = (),
    json_too: bool = True,
) -> RawRequest:
    """Token requests with the right client, mostly well formed: the rest of the fields junk."""
    optional = {k: v for k, v in fields.items() if k not in required}
    form = draw_(st.fixed_dictionaries(required, optional=optional))
    kind = draw_(st.sampled_from(["form", "json", "junk"] if json_too else ["form", "junk"]))
    if kind == "form":
        ctype, body = b"application/x-www-form-urlencoded", urlencode(form).encode()
    elif kind == "json":
        ctype, body = b"application/json", _dumps(form)
    else:
        ctype, body = draw_(content_types), draw_(form_bodies(fields))
    return RawRequest(
        b"POST",
        draw_(fixed(target)),
        (*_header(b"Content-Type", ctype), *extra),
        body,
        draw_(st.sampled_from(GOOD_FRAMINGS)),
    )


def signed(secret: str) -> Callable[[bytes], tuple[tuple[bytes, bytes], ...]]:
    """Webhook signature headers over the exact body bytes."""

    def headers(body: bytes) -> tuple[tuple[bytes, bytes], ...]:
        return tuple((k.encode(), v.encode()) for k, v in sign(secret, body).items())

    return headers


def stale_signature(secret: str) -> Callable[[bytes], tuple[tuple[bytes, bytes], ...]]:
    def headers(body: bytes) -> tuple[tuple[bytes, bytes], ...]:
        return tuple(
            (k.encode(), v.encode()) for k, v in sign(secret, body, int(time.time()) - 999).items()
        )

    return headers


def with_content_type(
    value: bytes | None, *more: tuple[bytes, bytes]
) -> st.SearchStrategy[tuple[tuple[bytes, bytes], ...]]:
    """Mostly the right Content-Type, sometimes any of the odd ones."""
    right = st.just(_header(b"Content-Type", value))
    odd = content_types.map(lambda c: _header(b"Content-Type", c))
    return st.one_of(right, right, odd).map(lambda h: h + more)


CONNECTOR_METHODS: list[tuple[bytes, str]] = [
    (b"POST", "/activities"),
    (b"POST", "/activities/history"),
    (b"POST", "/activities/{aid}"),
    (b"PUT", "/activities/{aid}"),
    (b"DELETE", "/activities/{aid}"),
    (b"GET", "/activities/{aid}/members"),
    (b"GET", "/members"),
    (b"GET", "/members/{aid}"),
    (b"POST", "/attachments"),
]


@st.composite
def connector_calls(
    draw_: st.DrawFn,
    conversation: st.SearchStrategy[bytes],
    headers: st.SearchStrategy[tuple[tuple[bytes, bytes], ...]] | None,
) -> RawRequest:
    method, tail = draw_(st.sampled_from(CONNECTOR_METHODS))
    aid = draw_(path_segments())
    target = b"/v3/conversations/" + draw_(conversation) + tail.replace("{aid}", "").encode()
    if "{aid}" in tail:
        target += aid
    base = draw_(requests([method], st.just(target), activity_bodies, headers))
    return base


def routes(keys: Keys | None) -> dict[str, st.SearchStrategy[RawRequest]]:
    """Every HTTP route midtier mounts, with junk; with ``keys`` also authenticated junk."""
    any_method = [b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS", b"\xff"]
    token_fields = {
        "grant_type": st.sampled_from(["authorization_code", "client_credentials", ""]) | _text,
        "client_id": st.sampled_from(["partner", "remote", "faq", APP_ID]) | _text,
        "code": _text,
        "client_secret": _text,
        "scope": st.sampled_from(["https://api.botframework.com/.default", ""]) | _text,
    }
    out: dict[str, st.SearchStrategy[RawRequest]] = {
        "healthz": requests(any_method, fixed("/healthz")),
        "pages": requests(any_method, st.sampled_from([b"/", b"/agent", b"/?x=%ff"])),
        "ws over plain http": requests(
            [b"GET", b"POST"],
            st.sampled_from([b"/webchat/ws", b"/agent/ws"]),
            headers=st.sampled_from(
                [
                    ((b"Upgrade", b"websocket"), (b"Sec-WebSocket-Version", b"13")),
                    ((b"Upgrade", b"websocket"), (b"Sec-WebSocket-Key", b"\xff\xfe")),
                    ((b"Upgrade", b"\xff"), (b"Sec-WebSocket-Key", b"abc")),
                    (),
                ]
            ),
        ),
        "auth/token": requests([b"POST", b"GET"], fixed("/auth/token"), form_bodies(token_fields)),
        "v3/conversations": requests(
            [b"GET", b"POST", b"PUT"], fixed("/v3/conversations"), activity_bodies
        ),
        "v3 connector, anonymous": connector_calls(path_segments(), None),
        "well-known": requests(
            [b"GET", b"POST"],
            st.sampled_from(
                [
                    b"/v1/.well-known/openidconfiguration",
                    b"/v1/.well-known/keys",
                    b"/.well-known/openid-configuration",
                    b"/adfs/.well-known/openid-configuration",
                ]
            ),
        ),
        "adfs/oauth2/token": requests(
            [b"POST"], fixed("/adfs/oauth2/token"), form_bodies(token_fields)
        ),
        "webhook, unsigned": requests(
            [b"POST", b"GET"], fixed("/webhooks/providers/partner"), webhook_bodies("wh_x")
        ),
        "webhook, stale signature": requests(
            [b"POST"],
            fixed("/webhooks/providers/partner"),
            webhook_bodies("wh_x"),
            with_content_type(b"application/json"),
            stale_signature(ENV["FUZZ_PARTNER_SECRET"]),
        ),
        "rasa callback, no secret": requests(
            [b"POST", b"GET"], fixed("/rasa/orders/callback"), rasa_bodies("u:x")
        ),
        "unknown paths": requests(
            any_method, path_segments().map(lambda s: b"/" + s), garbage_bodies
        ),
    }
    if keys is None:
        return out
    bearer = (b"Authorization", b"Bearer " + keys.bearer.encode())
    json_type = b"application/json"
    out.update(
        {
            "auth/token, right credential": token_requests(
                "/auth/token",
                token_fields,
                {"client_id": st.just("partner"), "code": st.text(min_size=1, max_size=60)},
                ((b"Authorization", PARTNER_BEARER),),
            ),
            "adfs/oauth2/token, right client": token_requests(
                "/adfs/oauth2/token",
                token_fields,
                {
                    "client_id": st.just(APP_ID),
                    "client_secret": st.just(ENV["FUZZ_REMOTE_PASSWORD"]),
                    "grant_type": st.just("client_credentials"),
                },
                json_too=False,
            ),
            "v3 connector, bot's token": connector_calls(
                st.just(quote(keys.remote, safe="").encode()),
                with_content_type(json_type, bearer),
            ),
            "webhook, signed": requests(
                [b"POST"],
                fixed("/webhooks/providers/partner"),
                webhook_bodies(keys.partner),
                with_content_type(json_type),
                signed(ENV["FUZZ_PARTNER_SECRET"]),
            ),
            "webhook, signed with the previous secret": requests(
                [b"POST"],
                fixed("/webhooks/providers/partner"),
                webhook_bodies(keys.partner),
                with_content_type(json_type),
                signed(ENV["FUZZ_PARTNER_PREVIOUS_SECRET"]),
            ),
            "rasa callback, right secret": requests(
                [b"POST"],
                st.sampled_from(
                    [
                        b"/rasa/orders/callback",
                        b"/rasa/orders/callback?secret=" + ENV["FUZZ_RASA_SECRET"].encode(),
                    ]
                ),
                rasa_bodies(keys.orders),
                with_content_type(
                    json_type, (b"Authorization", b"Bearer " + ENV["FUZZ_RASA_SECRET"].encode())
                ),
            ),
        }
    )
    return out


# ---------------------------------------------------------------------- raw WebSocket


@dataclass
class RawSocket:
    """A WebSocket client that writes frames byte by byte (masked, as clients must)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @classmethod
    async def connect(cls, port: int, path: str) -> RawSocket:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16))
        writer.write(
            b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (path.encode(), key)
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        accept = base64.b64encode(
            hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
        )
        assert b"Sec-WebSocket-Accept: " + accept in head
        return cls(reader, writer)

    def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0) -> None:
        first = (0x80 if fin else 0) | (rsv << 4) | opcode
        length = len(payload)
        if length < 126:
            head = bytes([first, 0x80 | length])
        elif length < 1 << 16:
            head = bytes([first, 0x80 | 126]) + length.to_bytes(2, "big")
        else:
            head = bytes([first, 0x80 | 127]) + length.to_bytes(8, "big")
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(head + mask + masked)

    def send_text(self, text: str | bytes) -> None:
        self.send_frame(
            0x1, text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        )

    async def receive(self) -> tuple[int, bytes] | None:
        """The next frame (opcode, payload), or None when the connection ended without one."""
        try:
            head = await self.reader.readexactly(2)
            length = head[1] & 0x7F
            if length == 126:
                length = int.from_bytes(await self.reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await self.reader.readexactly(8), "big")
            return head[0] & 0x0F, await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError):
            await self.writer.wait_closed()


@dataclass
class Outcome:
    """How the server answered a fuzzed frame: the text frames it sent, and how it closed."""

    frames: list[Any]
    close_code: int | None  # None: still open when we were done; 1006: ended without a close

    @property
    def abnormal(self) -> bool:
        return self.close_code in (1006, 1011)


# Codes a server may close with in answer to bad input: unsupported data, invalid payload
# (e.g. invalid UTF-8 in a text frame), policy violation, too big, ours (4xxx), and protocol
# error for frames that break RFC 6455 itself (reserved opcodes and bits).
PROPER_CLOSE_CODES = frozenset({1002, 1003, 1007, 1008, 1009})


def proper(outcome: Outcome) -> bool:
    code = outcome.close_code
    if code is None:
        return any(isinstance(f, dict) and f.get("type") for f in outcome.frames)
    return code in PROPER_CLOSE_CODES or 4000 <= code < 5000


async def exchange(sock: RawSocket, until: Callable[[Any], bool], within: float = 15) -> Outcome:
    """Read frames until one satisfies ``until`` or the server closes; answer its close."""
    frames: list[Any] = []
    async with asyncio.timeout(within):
        while True:
            got = await sock.receive()
            if got is None:
                return Outcome(frames, 1006)
            opcode, payload = got
            if opcode == 0x8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                sock.send_frame(0x8, payload[:2])
                return Outcome(frames, code)
            if opcode == 0x1:
                frame = json.loads(payload)
                frames.append(frame)
                if until(frame):
                    return Outcome(frames, None)


# ---------------------------------------------------------------------- secrets in input

_ROUTE_PATHS = [
    b"/auth/token",
    b"/adfs/oauth2/token",
    b"/webhooks/providers/partner",
    b"/rasa/orders/callback",
    b"/v3/conversations/x/activities",
    b"/healthz",
    b"/",
]


@st.composite
def secret_requests(draw_: st.DrawFn) -> RawRequest:
    """Requests that carry a registered secret where a log line could quote it: in a body
    (also one that arrives without Content-Length and is read as the next request, or inside
    a broken chunk), in a header with a bad byte, in the request line, in a query string."""
    secret = draw_(st.sampled_from(SECRETS)).encode()
    where = draw_(st.sampled_from(["body", "form", "json", "header", "line", "query"]))
    target = draw_(st.sampled_from(_ROUTE_PATHS))
    headers: tuple[tuple[bytes, bytes], ...] = draw_(junk_headers())
    body = draw_(st.sampled_from([b"", b"\xff", b"{"]))
    if where == "body":
        body = draw_(st.sampled_from([b"", b"\xff", b"GET /"])) + secret + b"\xff\r\n"
    elif where == "form":
        body = b"client_id=partner&code=%ff&client_secret=" + secret
        headers = ((b"Content-Type", b"application/x-www-form-urlencoded"),)
    elif where == "json":
        body = b'{"type": "message", "text": "' + secret + b'", "value": [[[[' + b"[" * 70
    elif where == "header":
        name = draw_(st.sampled_from([b"Authorization", b"X-Midtier-Signature", b"Cookie"]))
        value = draw_(st.sampled_from([b"Bearer ", b"v1=", b""])) + secret + b"\xff\x00"
        headers = (*headers, (name, value))
    elif where == "line":
        target = b"/" + secret + draw_(st.sampled_from([b"\xff", b" x", b"\x00", b"%"]))
    else:
        target += b"?secret=" + secret + b"&token=" + secret
    return RawRequest(
        method=draw_(st.sampled_from([b"POST", b"GET", b"PUT"])),
        target=target,
        headers=headers,
        body=body,
        framing=draw_(st.sampled_from(FRAMINGS)),
    )


def secret_frames() -> st.SearchStrategy[tuple[str, bytes]]:
    """(socket path, text frame payload) carrying a secret, often malformed."""
    secret = st.sampled_from(SECRETS)
    return st.tuples(
        st.sampled_from(["/webchat/ws", "/agent/ws"]),
        st.one_of(
            secret.map(lambda s: json.dumps({"type": "auth", "token": s + "x"}).encode()),
            secret.map(lambda s: b'{"type": "auth", "token": "' + s.encode() + b'\xff"}'),
            secret.map(
                lambda s: b'{"type": "hello", "conversation": "' + s.encode() + b'\\ud800"}'
            ),
            secret.map(lambda s: ("[" * 100 + s).encode()),
        ),
    )
