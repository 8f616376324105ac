"""The server processes of ``message_cpu.py``: start one on 127.0.0.1, wait until it answers,
read its CPU time, stop it.

Each server runs in its own process, so that its CPU time (user + system, from
``/proc/<pid>/stat``) is its own and nobody else's: not the load generator's, not the fake
platform's.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml

from connector.settings import StoreSettings

REPO = Path(__file__).resolve().parents[1]
COMMIT_WINDOW_MS = StoreSettings().commit_window_ms  # midtier run's default
BASELINES = REPO / "benchmarks" / "baselines"
TG_TOKEN = "123456:benchmark-token_0123456789abcdefgh"
TG_SECRET = "benchmark-secret-token-0123456789"
WEBCHAT_BUNDLE = REPO / "adapters" / "channels" / "static" / "vendor" / "webchat.js"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds_of(stat: Path) -> float:
    """User + system CPU time in a ``/proc/.../stat`` file (a process's or a thread's)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (its threads included)."""
    return cpu_seconds_of(Path(f"/proc/{pid}/stat"))


@dataclass
class Server:
    """A running server process and where it answers."""

    name: str
    base: str
    process: asyncio.subprocess.Process

    @property
    def pid(self) -> int:
        """The process id (the one whose CPU is measured)."""
        return int(self.process.pid)

    def cpu(self) -> float:
        """Its CPU seconds so far."""
        return cpu_seconds(self.pid)


def _tail(log: Path, lines: int = 8) -> str:
    return "\n".join(log.read_text(errors="replace").strip().splitlines()[-lines:])


async def _wait_ready(server: Server, path: str, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if server.process.returncode is not None:
                tail = await asyncio.to_thread(_tail, log)
                raise SystemExit(f"{server.name} exited at start-up:\n{tail}")
            try:
                async with http.get(server.base + path) as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"{server.name} did not answer {path} within {timeout_s:.0f} s")


@asynccontextmanager
async def serve(
    name: str,
    command: Sequence[str],
    port: int,
    *,
    ready_path: str,
    env: dict[str, str] | None = None,
    timeout_s: float = 60,
) -> AsyncIterator[Server]:
    """Start ``command`` (listening on ``port``), yield it once it answers, then stop it."""
    with tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log") as log:
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=REPO,
            env={**os.environ, **(env or {})},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
        server = Server(name, f"http://127.0.0.1:{port}", process)
        try:
            await _wait_ready(server, ready_path, Path(log.name), timeout_s)
            yield server
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 10)
                except TimeoutError:
                    process.kill()
                    await process.wait()


def baseline(name: str, port: int) -> list[str]:
    """The command of a baseline server in ``benchmarks/baselines/``."""
    return [sys.executable, str(BASELINES / f"{name}.py"), "--port", str(port)]


def fake_platform(port: int) -> list[str]:
    """The command of the fake platform API (``benchmarks/fake_platform.py``)."""
    return [sys.executable, str(REPO / "benchmarks" / "fake_platform.py"), "--port", str(port)]


def midtier_config(directory: Path, telegram_api: str | None, *, slowdown: float = 1.0) -> Path:
    """The default deployment (``bot_configs/``), copied; with a Telegram channel whose Bot
    API is ``telegram_api`` when given. Without Web Chat's bundle installed, the Direct Line
    channel serves no page (its message path is the same). ``slowdown``: how many times
    slower than usual the server will run (valgrind), by which the waits that decide a
    message's path (``session.ack_within_s``, ``typing_after_s``) and how long a group
    commit waits (``store.commit_window_ms``) are lengthened."""
    config = directory / "config"
    shutil.copytree(REPO / "bot_configs", config)
    midtier = yaml.safe_load((config / "midtier.yaml").read_text())
    if not WEBCHAT_BUNDLE.exists():
        print("(no Web Chat bundle: the Direct Line page is off)", file=sys.stderr)
        midtier["channels"]["directline"]["page_path"] = None
    session = midtier["session"]
    for wait in ("ack_within_s", "typing_after_s"):
        session[wait] = session[wait] * slowdown
    store = midtier.setdefault("store", {})
    store["commit_window_ms"] = store.get("commit_window_ms", COMMIT_WINDOW_MS) * slowdown
    if telegram_api is not None:
        midtier["channels"]["telegram"] = {
            "kind": "telegram",
            "bot_token": "${BENCH_TG_TOKEN}",
            "secret_token": "${BENCH_TG_SECRET}",
            "api_base": telegram_api,
        }
    (config / "midtier.yaml").write_text(yaml.safe_dump(midtier, sort_keys=False))
    return config


def midtier(port: int, config: Path, data: Path, *wrapper: str, loop: str = "asyncio") -> list[str]:
    """The command of ``midtier run`` (optionally under ``wrapper``, e.g. valgrind) on the
    event loop ``loop`` (``midtier run --loop``: asyncio, its default, or uvloop)."""
    return [
        *wrapper,
        sys.executable,
        "-m",
        "connector.cli",
        "run",
        "--port",
        str(port),
        "--config",
        str(config),
        "--data",
        str(data),
        "--log-level",
        "warning",
        "--loop",
        loop,
    ]


MIDTIER_ENV = {"BENCH_TG_TOKEN": TG_TOKEN, "BENCH_TG_SECRET": TG_SECRET}
