"""The loads of ``message_cpu.py``: web chat WebSockets driven from Python, and ``wrk``.

The questions, and the intents the FAQ bot answers them by, are the same for every row: a
baseline gets the intent in ``channelData.midtier.intent`` (where midtier puts what its
classifier read), midtier reads it itself.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from message_cpu_servers import REPO, TG_SECRET

QUESTIONS = [
    ("what's my balance?", "check_balance"),
    ("how do I reset my password", "reset_password"),
    ("what are your fees", "fees"),
    ("when will my refund arrive", "refund_status"),
    ("how do I activate my new card", "activate_card"),
    ("where can I download my statement", "account_statement"),
]
FIRST_ANSWER = "Your balance is on the Home tab"  # how the FAQ bot answers QUESTIONS[0]
WRK_SCRIPT = REPO / "benchmarks" / "wrk_requests.lua"
WRK_MISSING = "wrk is not installed (Debian/Ubuntu: apt-get install -y wrk)"


def percentiles(seconds: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99 in milliseconds."""
    if len(seconds) < 2:
        only = seconds[0] * 1000 if seconds else float("nan")
        return only, only, only
    q = statistics.quantiles([s * 1000 for s in seconds], n=100)
    return q[49], q[94], q[98]


# ---------------------------------------------------------------------------- web chat


async def _conversation(
    base: str, n: int, latencies: list[float], answers: list[str], later: list[float]
) -> None:
    """One web chat conversation of ``n`` messages, each sent once the last was answered and
    acknowledged; every latency goes to ``latencies``, those after the first (which opens
    the conversation's session and its first leg) to ``later`` too."""
    url = base.replace("http://", "ws://") + "/webchat/ws"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_json({"type": "hello", "resume": None, "user": None})
        await ws.receive_json()
        for i in range(n):
            started = time.perf_counter()
            text = QUESTIONS[i % len(QUESTIONS)][0]
            await ws.send_json({"type": "message", "id": f"m{i}", "text": text})
            reply = None
            got_ack = False
            while reply is None or not got_ack:
                frame = json.loads((await ws.receive(timeout=30)).data)
                if frame["type"] == "message" and frame["speaker"] == "bot":
                    reply = frame["text"]
                got_ack |= frame["type"] == "ack"
            latencies.append(time.perf_counter() - started)
            if i == 0:
                answers.append(reply)
            else:
                later.append(latencies[-1])


@dataclass
class WebChatRun:
    """What a web chat load gave: every message's latency, those of the messages after each
    conversation's first, and each conversation's first answer."""

    latencies: list[float]
    later: list[float]
    answers: list[str]


async def webchat(base: str, conversations: int, messages: int) -> WebChatRun:
    """``conversations`` web chat sockets at once, each sending ``messages`` one after another
    (the next once the bot's reply and the ack arrived)."""
    run = WebChatRun([], [], [])
    await asyncio.gather(
        *(
            _conversation(base, messages, run.latencies, run.answers, run.later)
            for _ in range(conversations)
        )
    )
    return run


# ---------------------------------------------------------------------------- bodies


def activity_bodies(service_url: str, expect_replies: bool) -> list[str]:
    """Bot Framework message activities (about 600 bytes), as Web Chat sends them."""
    bodies = []
    for text, intent in QUESTIONS:
        activity = {
            "type": "message",
            "id": "bench-{ID}",
            "timestamp": "2026-12-01T10:00:00.000Z",
            "localTimestamp": "2026-12-01T11:00:00.000+01:00",
            "localTimezone": "Europe/Berlin",
            "serviceUrl": service_url,
            "channelId": "webchat",
            "from": {"id": "user-{CONV}", "name": "Bench User", "role": "user"},
            "conversation": {"id": "conv-{CONV}"},
            "recipient": {"id": "acme-pay-bot", "name": "Acme Pay", "role": "bot"},
            "textFormat": "plain",
            "locale": "en-US",
            "text": text,
            "channelData": {"clientActivityID": "c-{ID}", "midtier": {"intent": intent}},
        }
        if expect_replies:
            activity["deliveryMode"] = "expectReplies"
        bodies.append(json.dumps(activity, separators=(",", ":")))
    return bodies


def telegram_bodies() -> list[str]:
    """Telegram ``Update``s of a private chat, a text message each."""
    bodies = []
    for text, _ in QUESTIONS:
        user = {"id": "{CONV}", "is_bot": False, "first_name": "Bench", "language_code": "en"}
        update = {
            "update_id": "{ID}",
            "message": {
                "message_id": "{ID}",
                "from": user,
                "chat": {"id": "{CONV}", "first_name": "Bench", "type": "private"},
                "date": int(time.time()),
                "text": text,
            },
        }
        # The placeholders stand for numbers: unquote them.
        body = json.dumps(update, separators=(",", ":"))
        bodies.append(body.replace('"{ID}"', "{ID}").replace('"{CONV}"', "{CONV}"))
    return bodies


TELEGRAM_HEADERS = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}


# ---------------------------------------------------------------------------- wrk


@dataclass
class WrkRun:
    """What one wrk run did: requests answered without error, its figures, the send times."""

    requests: int
    errors: int
    status_errors: int
    seconds: float
    p50_p95_p99_ms: tuple[float, float, float]
    sent: dict[str, list[float]]  # conversation (1000 + thread) -> monotonic send times


def wrk_available() -> bool:
    """Whether ``wrk`` is on the PATH."""
    return shutil.which("wrk") is not None


async def run_wrk(
    url: str,
    bodies: list[str],
    headers: dict[str, str],
    *,
    seconds: int,
    first_id: int,
    connections: int,
    record: bool,
    pause_ms: int = 0,
) -> WrkRun:
    """``wrk`` with one thread per connection, each request one of ``bodies`` made unique."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        bodies_file, sent_file = Path(tmp) / "bodies", Path(tmp) / "sent"
        bodies_file.write_text("\n".join(bodies) + "\n")
        header_args = []
        for name, value in {"Content-Type": "application/json", **headers}.items():
            header_args += ["-H", f"{name}: {value}"]
        process = await asyncio.create_subprocess_exec(
            "wrk",
            f"-t{connections}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "30s",
            "-s",
            str(WRK_SCRIPT),
            *header_args,
            url,
            "--",
            str(bodies_file),
            str(first_id),
            str(sent_file) if record else "-",
            str(pause_ms),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        text = out.decode(errors="replace")
        summary = next((ln for ln in text.splitlines() if ln.startswith("wrk-summary ")), None)
        if process.returncode != 0 or summary is None:
            raise SystemExit(f"wrk failed ({process.returncode}):\n{text}")
        figures = json.loads(summary.split(" ", 1)[1])
        sent: dict[str, list[float]] = {}
        if record:
            for line in sent_file.read_text().splitlines():
                conversation, at = line.split("\t")
                sent.setdefault(conversation, []).append(float(at))
    ms = tuple(figures[p] / 1000 for p in ("p50", "p95", "p99"))
    return WrkRun(
        requests=figures["requests"] - figures["status_errors"],
        errors=figures["errors"],
        status_errors=figures["status_errors"],
        seconds=figures["duration_us"] / 1e6,
        p50_p95_p99_ms=(ms[0], ms[1], ms[2]),
        sent=sent,
    )


def reply_latencies(
    sent: dict[str, list[float]],
    arrivals: dict[str, list[float]],
    key: Callable[[str], str],
) -> list[float]:
    """Each conversation's k-th reply against its k-th request (a conversation's messages are
    sent one after another and answered in order)."""
    latencies = []
    for conversation, times in sent.items():
        replies = arrivals.get(key(conversation), [])
        latencies += [got - at for at, got in zip(times, replies, strict=False)]
    return latencies


# ---------------------------------------------------------------------------- checks


async def _stats(http: aiohttp.ClientSession, fake: str, arrivals: bool = False) -> Any:
    async with http.get(f"{fake}/stats", params={"arrivals": "1" if arrivals else "0"}) as r:
        return await r.json()


async def drain(
    fake: str, at_least: int, quiet_s: float = 3.0, limit_s: float = 180, settle_s: float = 0.0
) -> Any:
    """Wait until the fake platform got ``at_least`` replies (or none for ``quiet_s``), and
    then none for ``settle_s`` more; what it got, arrivals included. Then it forgets them.

    ``settle_s`` is for the end of a warm-up: requests that ``wrk`` gave up on when it
    stopped (the server had them, their 200 had not come) are answered still, and their
    replies must not be taken for the next run's."""
    deadline = time.monotonic() + limit_s
    async with aiohttp.ClientSession() as http:
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            stats = await _stats(http, fake)
            if stats["replies"] != seen:
                seen, since = stats["replies"], time.monotonic()
            still = time.monotonic() - since  # how long the count has not moved
            if still >= (settle_s if seen >= at_least else quiet_s):
                break
            await asyncio.sleep(0.1)
        stats = await _stats(http, fake, arrivals=True)
        async with http.post(f"{fake}/reset") as reset:
            reset.raise_for_status()
        return stats


async def post_one(url: str, body: str, headers: dict[str, str]) -> tuple[int, str]:
    """POST one of the bodies (its placeholders filled in); the status and the answer."""
    one = body.replace("{ID}", "1").replace("{CONV}", "999")
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=one, headers={"Content-Type": "application/json", **headers}) as r,
    ):
        return r.status, await r.text()


def first_reply(text: str) -> str:
    """The first reply's text in an expectReplies answer."""
    try:
        activities = json.loads(text).get("activities") or [{}]
        return str(activities[0].get("text"))
    except (ValueError, AttributeError, IndexError):
        return text
