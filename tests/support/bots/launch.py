"""Start a test bot as a real process on 127.0.0.1 and wait until it listens."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from support.server import REPO, free_port

BOTS_PYTHON = REPO / ".venv-bots" / "bin" / "python"
HERE = Path(__file__).resolve().parent
SCRIPTS = {"botbuilder": HERE / "botbuilder_echo.py", "agents": HERE / "agents_echo.py"}


def bots_venv_missing() -> str | None:
    """Why the bot processes cannot run here (None when they can)."""
    if not BOTS_PYTHON.exists():
        return "no .venv-bots: run scripts/setup-bots.sh"
    return None


@dataclass
class BotProcess:
    """A running bot: its messaging endpoint and what it recorded of each turn."""

    endpoint: str
    record: Path
    process: asyncio.subprocess.Process

    def turns(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line]

    async def turn(
        self, where: Callable[[dict[str, Any]], bool], within: float = 10
    ) -> dict[str, Any]:
        """The first recorded turn matching ``where``; polls until it appears."""
        async with asyncio.timeout(within):
            while True:
                for entry in self.turns():
                    if where(entry):
                        return entry
                await asyncio.sleep(0.02)  # polling a file with a deadline, not timing


@asynccontextmanager
async def run_bot(
    kind: str, tmp: Path, env: dict[str, str] | None = None
) -> AsyncIterator[BotProcess]:
    """Run the ``kind`` bot (``botbuilder`` or ``agents``) until the block ends."""
    port = free_port()
    record = tmp / f"{kind}-{port}.jsonl"
    full_env = {**os.environ, **(env or {}), "BOT_RECORD": str(record), "PYTHONUNBUFFERED": "1"}
    log = (tmp / f"{kind}-{port}.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        str(BOTS_PYTHON),
        str(SCRIPTS[kind]),
        str(port),
        env=full_env,
        stdout=log,
        stderr=log,
        cwd=str(tmp),
    )
    endpoint = f"http://127.0.0.1:{port}/api/messages"
    try:
        async with asyncio.timeout(30), aiohttp.ClientSession() as http:
            while True:
                if process.returncode is not None:
                    raise RuntimeError(
                        f"{kind} bot exited: {(tmp / f'{kind}-{port}.log').read_text()}"
                    )
                try:
                    async with http.get(endpoint) as response:
                        await response.read()
                        break  # any HTTP answer (405 for GET) means it listens
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        yield BotProcess(endpoint=endpoint, record=record, process=process)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()
        if sys.exc_info()[0] is not None:
            print((tmp / f"{kind}-{port}.log").read_text()[-4000:])
