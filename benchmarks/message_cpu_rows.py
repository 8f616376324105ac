"""The rows of ``message_cpu.py``: each starts its server(s), warms up, measures, stops.

The server's CPU time is read just before the timed load and again once the last reply of
it arrived, so start-up and warm-up are never counted.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import message_cpu_loads as loads
import message_cpu_servers as servers


@dataclass
class Options:
    """What the command line asked for."""

    conversations: int
    messages: int
    warmup: int
    duration: int  # seconds, as wrk takes them
    warmup_duration: int
    connector_replies: bool  # botbuilder rows: replies to serviceUrl instead of expectReplies
    pause_ms: int = 0  # wrk rows: each connection's pause between an answer and its next request


@dataclass
class Row:
    """One measured row of the table."""

    name: str
    bot: str
    measured: str
    messages: int
    seconds: float
    cpu_seconds: float
    reply_ms: tuple[float, float, float] | None = None  # until the bot's reply arrived
    http_ms: tuple[float, float, float] | None = None  # until the HTTP answer (wrk)
    note: str = ""

    @property
    def cpu_us(self) -> float:
        """Server CPU per message, microseconds."""
        return self.cpu_seconds / self.messages * 1e6 if self.messages else float("nan")

    @property
    def rate(self) -> float:
        """Messages per second."""
        return self.messages / self.seconds if self.seconds else float("nan")


FAQ = "FAQ bot"  # bot_configs/bots/faq.py


def _on_loop(row: str, loop: str) -> tuple[str, str]:
    """A midtier row's name and its bot column's tail for ``loop`` (asyncio: none)."""
    if loop == "asyncio":
        return row, ""
    return f"{row}-{loop}", f", {loop}'s event loop"


def _check(row: str, answer: str) -> None:
    if not answer.startswith(loads.FIRST_ANSWER):
        raise SystemExit(f"{row}: the bot answered {answer[:80]!r}, not the FAQ answer")


async def midtier_webchat(options: Options, loop: str = "asyncio") -> Row:
    """midtier on the embedded default, N web chat WebSockets sending M messages each; on
    uvloop's event loop instead of asyncio's own (``midtier run``'s) when ``loop`` is
    "uvloop"."""
    name, on_loop = _on_loop("midtier-webchat", loop)
    with tempfile.TemporaryDirectory(prefix="bench-midtier-") as tmp:
        config = servers.midtier_config(Path(tmp), None)
        port = servers.free_port()
        command = servers.midtier(port, config, Path(tmp) / "data", loop=loop)
        async with servers.serve("midtier", command, port, ready_path="/healthz") as server:
            warm = await loads.webchat(server.base, options.conversations, options.warmup)
            for answer in warm.answers:
                _check(name, answer)
            cpu0, wall0 = server.cpu(), time.perf_counter()
            run = await loads.webchat(server.base, options.conversations, options.messages)
            wall, cpu = time.perf_counter() - wall0, server.cpu() - cpu0
    # Each timed conversation is a new one: its first message opens a session and a leg, and
    # all of them start at once. Those are 1% of the messages at 100 each: the p99 region.
    p50, p95, p99 = loads.percentiles(run.later)
    note = (
        f"without each conversation's first message (it opens the session; all "
        f"{options.conversations} start at once): reply p50 / p95 / p99 "
        f"{p50:.1f} / {p95:.1f} / {p99:.1f} ms"
    )
    return Row(
        name,
        f"{FAQ} in process, intent from midtier's classifier{on_loop}",
        "send -> bot's reply and ack frames, on open WebSockets",
        len(run.latencies),
        wall,
        cpu,
        reply_ms=loads.percentiles(run.latencies),
        note=note,
    )


@dataclass
class Measured:
    """What the timed wrk run gave."""

    messages: int
    seconds: float
    cpu_seconds: float
    run: loads.WrkRun
    reply_latencies: list[float]
    note: str


async def _wrk_measure(
    name: str,
    server: servers.Server,
    url: str,
    bodies: list[str],
    headers: dict[str, str],
    options: Options,
    fake: str | None,
    key: Callable[[str], str] = str,
) -> Measured:
    """Warm up, then the timed wrk run. With ``fake``, the replies go out to it over HTTP, a
    message counts once its reply arrived there and ``key`` maps a conversation of wrk's to
    the fake platform's name for it."""
    n = options.conversations
    warm = await loads.run_wrk(
        url,
        bodies,
        headers,
        seconds=options.warmup_duration,
        first_id=10**9,
        connections=n,
        record=False,
        pause_ms=options.pause_ms,
    )
    if fake is not None:
        await loads.drain(fake, warm.requests, settle_s=0.5)
    print(f"running {name}: wrk, {n} connections, {options.duration:g} s ...", file=sys.stderr)
    cpu0, wall0 = server.cpu(), time.monotonic()
    run = await loads.run_wrk(
        url,
        bodies,
        headers,
        seconds=options.duration,
        first_id=2 * 10**9,
        connections=n,
        record=fake is not None,
        pause_ms=options.pause_ms,
    )
    notes = [_errors(run)] if run.errors or run.status_errors else []
    if fake is None:
        return Measured(run.requests, run.seconds, server.cpu() - cpu0, run, [], "; ".join(notes))
    sent = sum(len(times) for times in run.sent.values())
    stats = await loads.drain(fake, sent)
    cpu = server.cpu() - cpu0
    if stats["replies"] < run.requests:
        notes.append(f"{run.requests:,} answered by the server, only {stats['replies']:,} replied")
    latencies = loads.reply_latencies(run.sent, stats["arrivals"], key)
    return Measured(stats["replies"], stats["last"] - wall0, cpu, run, latencies, "; ".join(notes))


async def midtier_telegram(options: Options, loop: str = "asyncio") -> Row:
    """midtier with a Telegram channel, the webhook driven by wrk, replies to a fake Bot API
    (on uvloop's event loop when ``loop`` is "uvloop")."""
    name, on_loop = _on_loop("midtier-telegram", loop)
    fake_port = servers.free_port()
    fake_cmd = servers.fake_platform(fake_port)
    async with servers.serve("fake platform", fake_cmd, fake_port, ready_path="/stats") as fake:
        with tempfile.TemporaryDirectory(prefix="bench-midtier-") as tmp:
            config = servers.midtier_config(Path(tmp), fake.base)
            port = servers.free_port()
            command = servers.midtier(port, config, Path(tmp) / "data", loop=loop)
            env = servers.MIDTIER_ENV
            async with servers.serve("midtier", command, port, ready_path="/healthz", env=env) as s:
                url = f"{s.base}/channels/telegram"
                bodies, headers = loads.telegram_bodies(), loads.TELEGRAM_HEADERS
                status, text = await loads.post_one(url, bodies[0], headers)
                if status != 200:
                    raise SystemExit(f"{name}: webhook answered {status}: {text[:200]}")
                _check(name, (await loads.drain(fake.base, 1))["text"])
                got = await _wrk_measure(name, s, url, bodies, headers, options, fake.base)
    return Row(
        name,
        f"{FAQ} in process, intent from midtier's classifier{on_loop}",
        _paced("webhook -> sendMessage at a fake Bot API; HTTP: the webhook's 200", options),
        got.messages,
        got.seconds,
        got.cpu_seconds,
        reply_ms=loads.percentiles(got.reply_latencies),
        http_ms=got.run.p50_p95_p99_ms,
        note=got.note,
    )


def _paced(measured: str, options: Options) -> str:
    if not options.pause_ms:
        return measured
    return f"{measured}; each connection pauses {options.pause_ms} ms after an answer"


def _errors(run: loads.WrkRun) -> str:
    return f"wrk: {run.errors:,} socket errors, {run.status_errors:,} error statuses"


async def botbuilder(name: str, options: Options) -> Row:
    """The FAQ bot on a botbuilder hosting (``cloudadapter``, ``legacy_adapter``)."""
    module = "cloudadapter" if name == "cloudadapter" else "legacy_adapter"
    connector = options.connector_replies
    fake_port = servers.free_port()
    fake_cmd = servers.fake_platform(fake_port)
    async with servers.serve("fake platform", fake_cmd, fake_port, ready_path="/stats") as fake:
        port = servers.free_port()
        command = servers.baseline(module, port)
        async with servers.serve(name, command, port, ready_path="/api/messages") as server:
            url = f"{server.base}/api/messages"
            bodies = loads.activity_bodies(fake.base, expect_replies=not connector)
            status, text = await loads.post_one(url, bodies[0], {})
            answer = (
                (await loads.drain(fake.base, 1))["text"] if connector else loads.first_reply(text)
            )
            if status not in (200, 201):
                raise SystemExit(f"{name}: answered {status}: {text[:200]}")
            _check(name, answer)
            got = await _wrk_measure(
                name,
                server,
                url,
                bodies,
                {},
                options,
                fake.base if connector else None,
                key=lambda conversation: f"conv-{conversation}",
            )
    cloud = name == "cloudadapter"
    hosting = "CloudAdapter (as botbuilder's samples)" if cloud else "BotFrameworkHttpAdapter"
    measured = (
        "POST /api/messages -> replies POSTed to a fake Connector (serviceUrl)"
        if connector
        else "POST /api/messages, expectReplies: the replies in the HTTP answer (the bot alone)"
    )
    return Row(
        name,
        f"{FAQ} on {hosting}, intent given",
        _paced(measured, options),
        got.messages,
        got.seconds,
        got.cpu_seconds,
        reply_ms=loads.percentiles(got.reply_latencies) if connector else got.run.p50_p95_p99_ms,
        http_ms=got.run.p50_p95_p99_ms,
        note=got.note,
    )


async def bare(options: Options) -> Row:
    """A bare aiohttp handler: parse the JSON activity, answer JSON."""
    port = servers.free_port()
    command = servers.baseline("bare_aiohttp", port)
    async with servers.serve("bare-aiohttp", command, port, ready_path="/api/messages") as server:
        url = f"{server.base}/api/messages"
        bodies = loads.activity_bodies("http://127.0.0.1:9", expect_replies=True)
        status, text = await loads.post_one(url, bodies[0], {})
        if status != 200:
            raise SystemExit(f"bare-aiohttp: answered {status}: {text[:200]}")
        got = await _wrk_measure("bare-aiohttp", server, url, bodies, {}, options, None)
    return Row(
        "bare-aiohttp",
        "none (parse the activity, answer JSON)",
        _paced("POST /api/messages -> JSON answer", options),
        got.messages,
        got.seconds,
        got.cpu_seconds,
        reply_ms=got.run.p50_p95_p99_ms,
        http_ms=got.run.p50_p95_p99_ms,
        note=got.note,
    )
