"""CPU per user message and latency through a real midtier server (the embedded default).

Starts ``midtier run`` on 127.0.0.1 with a fresh data directory (SQLite), opens N web chat
WebSockets and has each send M messages to the FAQ bot one after another (send, then wait
for the bot's reply and the ack), all conversations at once. Prints one table: messages/s,
the server's CPU time per message (user + system, read from /proc, so Linux only) and
client-side latency percentiles.

    .venv/bin/python benchmarks/message_cpu.py [--conversations 16] [--messages 100]
        [--channel webchat|telegram]

``--channel telegram`` sends the messages as Telegram webhooks instead (the secret-token
header, one Update each, the next one once the reply reached a fake Bot API that this
script serves on 127.0.0.1): the webhook path, with the reply going out over HTTP.

The budget in DESIGN.md is <= 600 us of server CPU per message and p99 < 25 ms at 16
concurrent conversations.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "what's my balance?",
    "how do I reset my password",
    "what are your fees",
    "when will my refund arrive",
    "how do I activate my new card",
    "where can I download my statement",
]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _wait_ready(base: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            try:
                async with http.get(f"{base}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("server did not start")


async def _conversation(base: str, n: int, latencies: list[float]) -> None:
    url = base.replace("http://", "ws://") + "/webchat/ws"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_json({"type": "hello", "resume": None, "user": None})
        await ws.receive_json()
        for i in range(n):
            started = time.perf_counter()
            await ws.send_json({"type": "message", "id": f"m{i}", "text": QUESTIONS[i % 6]})
            got_reply = got_ack = False
            while not (got_reply and got_ack):
                frame = json.loads((await ws.receive()).data)
                got_reply |= frame["type"] == "message" and frame["speaker"] == "bot"
                got_ack |= frame["type"] == "ack"
            latencies.append(time.perf_counter() - started)


UPDATE_IDS = itertools.count(1)
TG_TOKEN = "123456:benchmark-token_0123456789abcdefgh"
TG_SECRET = "benchmark-secret-token-0123456789"


class FakeTelegram:
    """The Bot API's sendMessage (and chat actions), waking whoever waits for a chat."""

    def __init__(self) -> None:
        self.waiting: dict[int, asyncio.Future[None]] = {}
        self.base = ""

    async def handle(self, request: web.Request) -> web.Response:
        if request.path.endswith("/sendMessage"):
            chat = (await request.json())["chat_id"]
            waiter = self.waiting.pop(chat, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        return web.json_response({"ok": True, "result": {"message_id": 1, "date": 0}})

    async def start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = _port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.base = f"http://127.0.0.1:{port}"
        return runner


def _telegram_config(directory: Path, api_base: str) -> Path:
    config = directory / "config"
    shutil.copytree(REPO / "bot_configs", config)
    midtier = yaml.safe_load((config / "midtier.yaml").read_text())
    midtier["channels"]["telegram"] = {
        "kind": "telegram",
        "bot_token": "${BENCH_TG_TOKEN}",
        "secret_token": "${BENCH_TG_SECRET}",
        "api_base": api_base,
    }
    (config / "midtier.yaml").write_text(yaml.safe_dump(midtier))
    return config


async def _telegram_conversation(
    base: str, fake: FakeTelegram, chat: int, n: int, latencies: list[float]
) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    async with aiohttp.ClientSession() as http:
        for i in range(n):
            started = time.perf_counter()
            update_id = next(UPDATE_IDS)  # a repeated id would be a platform retry
            update = {
                "update_id": update_id,
                "message": {
                    "message_id": update_id,
                    "date": int(time.time()),
                    "chat": {"id": chat, "type": "private", "first_name": "Bench"},
                    "from": {"id": chat, "is_bot": False, "first_name": "Bench"},
                    "text": QUESTIONS[i % 6],
                },
            }
            replied = fake.waiting[chat] = asyncio.get_running_loop().create_future()
            async with http.post(f"{base}/channels/telegram", json=update, headers=headers) as r:
                assert r.status == 200, await r.text()
            await replied
            latencies.append(time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=16)
    parser.add_argument("--messages", type=int, default=100, help="per conversation")
    parser.add_argument("--warmup", type=int, default=5, help="messages per conversation first")
    parser.add_argument("--channel", choices=["webchat", "telegram"], default="webchat")
    args = parser.parse_args()
    port = _port()
    base = f"http://127.0.0.1:{port}"
    fake = FakeTelegram()
    runner = await fake.start() if args.channel == "telegram" else None
    env = {**os.environ, "BENCH_TG_TOKEN": TG_TOKEN, "BENCH_TG_SECRET": TG_SECRET}

    def conversations(n: int, into: list[float]) -> list[Any]:
        if args.channel == "telegram":
            chats = range(1000, 1000 + args.conversations)
            return [_telegram_conversation(base, fake, c, n, into) for c in chats]
        return [_conversation(base, n, into) for _ in range(args.conversations)]

    with tempfile.TemporaryDirectory() as data:
        config = (
            _telegram_config(Path(data), fake.base)
            if args.channel == "telegram"
            else REPO / "bot_configs"
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "connector.cli",
            "run",
            "--port",
            str(port),
            "--data",
            str(Path(data) / "data"),
            "--config",
            str(config),
            "--log-level",
            "warning",
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
        )
        try:
            print(f"starting midtier on {base} ...", file=sys.stderr)
            await _wait_ready(base)
            warm: list[float] = []
            await asyncio.gather(*conversations(args.warmup, warm))
            print(f"running {args.conversations} x {args.messages} messages ...", file=sys.stderr)
            latencies: list[float] = []
            cpu0, wall0 = _cpu_seconds(proc.pid), time.perf_counter()
            await asyncio.gather(*conversations(args.messages, latencies))
            wall, cpu = time.perf_counter() - wall0, _cpu_seconds(proc.pid) - cpu0
        finally:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
            if runner is not None:
                await runner.cleanup()
    total = len(latencies)
    q = statistics.quantiles([x * 1000 for x in latencies], n=100)
    print("| channel | conversations | messages | msg/s | server CPU/msg | p50 | p95 | p99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    rate, per = f"{total / wall:,.0f}", f"{cpu / total * 1e6:,.0f} us"
    print(
        f"| {args.channel} | {args.conversations} | {total} | {rate} | {per} "
        f"| {q[49]:.1f} | {q[94]:.1f} | {q[98]:.1f} |"
    )


if __name__ == "__main__":
    asyncio.run(main())
