"""CPU per user message and latency through a real midtier server (the embedded default).

Starts ``midtier run`` on 127.0.0.1 with a fresh data directory (SQLite), opens N web chat
WebSockets and has each send M messages to the FAQ bot one after another (send, then wait
for the bot's reply and the ack), all conversations at once. Prints one table: messages/s,
the server's CPU time per message (user + system, read from /proc, so Linux only) and
client-side latency percentiles.

    .venv/bin/python benchmarks/message_cpu.py [--conversations 16] [--messages 100]

The budget in DESIGN.md is <= 600 us of server CPU per message and p99 < 25 ms at 16
concurrent conversations.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=16)
    parser.add_argument("--messages", type=int, default=100, help="per conversation")
    parser.add_argument("--warmup", type=int, default=5, help="messages per conversation first")
    args = parser.parse_args()
    port = _port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "connector.cli",
            "run",
            "--port",
            str(port),
            "--data",
            data,
            "--log-level",
            "warning",
            cwd=REPO,
            stdout=asyncio.subprocess.DEVNULL,
        )
        try:
            print(f"starting midtier on {base} ...", file=sys.stderr)
            await _wait_ready(base)
            warm: list[float] = []
            await asyncio.gather(
                *(_conversation(base, args.warmup, warm) for _ in range(args.conversations))
            )
            print(f"running {args.conversations} x {args.messages} messages ...", file=sys.stderr)
            latencies: list[float] = []
            cpu0, wall0 = _cpu_seconds(proc.pid), time.perf_counter()
            await asyncio.gather(
                *(_conversation(base, args.messages, latencies) for _ in range(args.conversations))
            )
            wall, cpu = time.perf_counter() - wall0, _cpu_seconds(proc.pid) - cpu0
        finally:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
    total = len(latencies)
    q = statistics.quantiles([x * 1000 for x in latencies], n=100)
    print("| conversations | messages | msg/s | server CPU/msg | p50 ms | p95 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {args.conversations} | {total} | {total / wall:,.0f} | {cpu / total * 1e6:,.0f} us "
        f"| {q[49]:.1f} | {q[94]:.1f} | {q[98]:.1f} |"
    )


if __name__ == "__main__":
    asyncio.run(main())
