"""A real ``midtier run`` on a copy of a filled store file, and its memory (``session_map.py``).

The server gets the default deployment with one change: the idle timeout is set so that
the sessions the fill made idle (one to three days before its newest write) are expired,
and the others are not, however long ago the file was filled.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml
from message_cpu_loads import webchat
from message_cpu_servers import REPO, free_port

from connector.store.sqlite_statements import LAST_SAVE

DAY_US = 86_400 * 10**6
CONVERSATIONS = 8
SETTLE_S = 600.0  # expiring the idle sessions of a million must end well before this


@dataclass
class ServerMemory:
    """What the server used, from ``/proc/PID/status``, after start-up and a few messages."""

    sessions: int
    startup_s: float
    expired: int
    rss_mb: float
    hwm_mb: float


def _memory(pid: int) -> tuple[float, float]:
    """VmRSS and VmHWM (the peak) in MB."""
    status = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        status[key] = value
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def _idle(path: Path, cutoff_us: int) -> int:
    """Active sessions last written before ``cutoff_us`` (read beside the running server)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        statement = f"SELECT COUNT(*) FROM sessions WHERE status = 'active' AND {LAST_SAVE} < ?"
        [(n,)] = conn.execute(statement, (cutoff_us,)).fetchall()
    return int(n)


async def _wait_ready(base: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(3000):
            if proc.returncode is not None:
                raise SystemExit(f"the server exited with {proc.returncode}")
            try:
                async with http.get(f"{base}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the server did not start in 300 s")


def _config(directory: Path, idle_timeout_s: float) -> Path:
    config = directory / "config"
    shutil.copytree(REPO / "bot_configs", config)
    midtier = yaml.safe_load((config / "midtier.yaml").read_text())
    midtier["session"]["idle_timeout_s"] = idle_timeout_s
    midtier["channels"]["directline"]["page_path"] = None  # the page's bundle is not needed
    (config / "midtier.yaml").write_text(yaml.safe_dump(midtier))
    return config


async def server_memory(
    store: Path, sessions: int, messages: int, step: Callable[[str], None]
) -> ServerMemory:
    """Start a server on a copy of ``store``, wait until it has expired the idle sessions,
    send ``messages`` per web chat conversation, and read its memory."""
    with closing(sqlite3.connect(store)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # all of it in the file to be copied
        [(newest,)] = conn.execute(f"SELECT MAX({LAST_SAVE}) FROM sessions").fetchall()
    cutoff_us = int(newest) - DAY_US
    idle_timeout_s = time.time() - cutoff_us / 1e6
    with tempfile.TemporaryDirectory(prefix="session-server-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir(mode=0o700)
        copy = data / "midtier.db"  # where ``midtier run --data`` keeps its store
        step(f"copying the store of {sessions:,} sessions")
        shutil.copyfile(store, copy)
        idle = _idle(copy, cutoff_us)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "connector.cli", "run", "--port", str(port), "--data", str(data)),
            *("--config", str(_config(Path(tmp), idle_timeout_s)), "--log-level", "warning"),
            cwd=REPO,
            stdout=asyncio.subprocess.DEVNULL,
        )
        try:
            step(f"starting midtier on {sessions:,} sessions ({idle:,} idle)")
            await _wait_ready(base, proc)
            startup_s = time.perf_counter() - started
            deadline = time.monotonic() + SETTLE_S
            while _idle(copy, cutoff_us) > 0:
                if time.monotonic() > deadline or proc.returncode is not None:
                    raise SystemExit("the server did not expire the idle sessions")
                await asyncio.sleep(0.2)
            await webchat(base, CONVERSATIONS, messages)  # the load: memory is what is measured
            rss, hwm = _memory(proc.pid)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            await proc.wait()
    return ServerMemory(sessions, startup_s, idle, rss, hwm)
