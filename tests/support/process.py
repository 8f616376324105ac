"""The real ``midtier run`` as a child process, to restart, stop or kill (SIGKILL) in tests."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from support.server import AGENT_TOKEN, REPO

MIDTIER = [sys.executable, "-m", "connector.cli"]
STARTUP_S = 60.0


class MidtierProcess:
    """One ``midtier run`` on 127.0.0.1:``port`` with ``data`` as its data directory."""

    def __init__(
        self,
        data: Path,
        port: int,
        config: Path,
        env: dict[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.args = list(args)  # more options of ``midtier run``
        self.data = data
        self.port = port
        self.config = config
        self.env = {**os.environ, "MIDTIER_AGENT_TOKEN": AGENT_TOKEN, **(env or {})}
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = data.parent / f"server-{port}.log"
        self._proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self) -> None:
        """Start it and wait until it answers ``/healthz`` (the classifier is loaded)."""
        with self.log_path.open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                *MIDTIER,
                "run",
                "--port",
                str(self.port),
                "--data",
                str(self.data),
                "--config",
                str(self.config),
                *self.args,
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=log,
            )
        self.starts += 1
        async with asyncio.timeout(STARTUP_S), aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.get(f"{self.base}/healthz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                if self._proc.returncode is not None:
                    raise AssertionError(
                        f"midtier run exited with {self._proc.returncode}: {self.log()[-2000:]}"
                    )
                await asyncio.sleep(0.05)  # polling a starting process: nothing to await

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when the machine or the OOM killer stops it."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()

    async def stop(self) -> int:
        """SIGTERM, and the exit code of a clean shutdown."""
        proc, self._proc = self._proc, None
        if proc is None:
            return 0
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            return await proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@asynccontextmanager
async def midtier_process(
    data: Path,
    port: int,
    config: Path = REPO / "bot_configs",
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
) -> AsyncIterator[MidtierProcess]:
    """A started ``midtier run``; killed at the end of the block if still running."""
    process = MidtierProcess(data, port, config, env, args)
    await process.start()
    try:
        yield process
    finally:
        await process.kill()
