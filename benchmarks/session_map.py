"""The session map at scale: look-ups in a SQLite store of a million sessions, and the
memory of a server that holds one.

Fills a fresh store file with N sessions (``session_fill.py``: the store's own schema and
row encoding, a realistic mix of channels, legs, closed and active sessions, claims with
identities), then times K look-ups of each kind through the real ``SqliteStore`` (``get``,
``by_channel``, ``by_provider``, ``by_identity``, ``by_user``; nine in ten hit, one in ten
misses), one at a time, and checks with ``EXPLAIN QUERY PLAN`` that each read of the
session map starts from the index of its key (``sqlite_statements.INDEXED_READS``). Then starts
``midtier run`` twice, on a copy of a small store and on a copy of the big one, lets it
start up (and expire the idle sessions of the mix), drives a few web chat conversations and
reads the server's memory from ``/proc`` (Linux only)::

    .venv/bin/python benchmarks/session_map.py [--sessions 1000000] [--lookups 10000]
        [--keep PATH] [--explain] [--no-server] [--small 1000] [--messages 5]

Filling a million sessions takes a minute or two; ``--keep PATH`` fills PATH once and
reuses it on later runs. Without it, the file lives in a temporary directory that is removed
at the end. Prints one table; exits 1 when a look-up's p99 is over 1 ms, a read's plan
starts from another index, or the server's memory (RSS or peak) on the big store is more
than 10 MB (or 5%) above the small store's.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from session_fill import fill  # noqa: E402
from session_server import ServerMemory, server_memory  # noqa: E402

from connector.sessions import new_id  # noqa: E402
from connector.store import SqliteStore  # noqa: E402
from connector.store import sqlite_statements as sql  # noqa: E402

P99_BUDGET_MS = 1.0
TIME_LIMIT_S = 300.0  # for all the timed look-ups; 10,000 of each take some 10 s
MISSES = 0.1
KINDS = ["get", "by_channel", "by_provider", "by_identity", "by_user"]
HOP = "thread hand-off alone"
Call = Callable[..., Awaitable[Any]]
Lookup = tuple[str, Call, tuple[str, ...], bool]  # kind, call, its arguments, a hit?


def step(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def _sample(conn: sqlite3.Connection, table: str, columns: str, n: int) -> list[tuple[str, ...]]:
    """``n`` rows of ``table`` at random (rowids are dense in a filled file)."""
    [(top,)] = conn.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {table}").fetchall()
    if top == 0:
        return []
    statement = f"SELECT {columns} FROM {table} WHERE rowid >= ? ORDER BY rowid LIMIT 1"
    rng = random.Random(n)
    return [tuple(conn.execute(statement, (rng.randint(1, top),)).fetchone()) for _ in range(n)]


def _unknown_phone() -> tuple[str]:
    return (f"phone:+1{secrets.randbelow(10**12):012d}",)  # the fill's have 10 digits


def _lookups(path: Path, store: SqliteStore, k: int, hop: Call) -> list[Lookup]:
    """K look-ups of each kind, hits sampled from the file and misses made up, shuffled."""
    hits = k - int(k * MISSES)
    with closing(sqlite3.connect(path)) as conn:
        rows = _sample(conn, "sessions", "id, channel, channel_conversation_id, user_id", hits)
        legs = _sample(conn, "legs", "provider, provider_conversation_id", hits)
        identities = _sample(conn, "identities", "identity", hits)
    kinds: dict[str, tuple[Call, list[tuple[str, ...]], Callable[[], tuple[str, ...]]]] = {
        "get": (store.get, [r[:1] for r in rows], lambda: (new_id("mts"),)),
        "by_channel": (store.by_channel, [r[1:3] for r in rows], lambda: ("webchat", new_id("wc"))),
        "by_provider": (store.by_provider, legs, lambda: ("faq", f"bb_{secrets.token_hex(8)}")),
        "by_identity": (store.by_identity, identities, _unknown_phone),
        "by_user": (store.by_user, [r[3:] for r in rows], lambda: (new_id("u"),)),
    }
    todo: list[Lookup] = [(HOP, hop, (), True) for _ in range(k)]
    for kind, (call, found, missing) in kinds.items():
        todo += [(kind, call, args, True) for args in found]
        todo += [(kind, call, missing(), False) for _ in range(k - hits)]
    random.Random(k).shuffle(todo)
    return todo


async def time_lookups(path: Path, k: int) -> dict[str, list[tuple[float, float]]]:
    """(wall ms, CPU us) of each look-up, by kind; raises if a hit is missed or a miss hits.

    CPU is the whole process's (the event loop and the store's thread), which the machine's
    other work does not inflate; the wall time includes waiting for a core.
    """
    store = SqliteStore(path)
    await store.start()
    pool = ThreadPoolExecutor(max_workers=1)

    async def hop() -> bool:  # what the machine adds: the same hand-off, no SQLite
        return await asyncio.get_running_loop().run_in_executor(pool, bool, 1)

    try:
        todo = _lookups(path, store, k, hop)
        for _, call, args, _ in todo[:500]:  # start the threads, read the first pages
            await call(*args)
        timings: dict[str, list[tuple[float, float]]] = {kind: [] for kind in [*KINDS, HOP]}
        deadline = time.monotonic() + TIME_LIMIT_S
        for kind, call, args, hit in todo:
            if time.monotonic() > deadline:  # a read that walks a table: report what was done
                step(f"stopped after {TIME_LIMIT_S:.0f} s")
                break
            cpu, wall = time.process_time_ns(), time.perf_counter_ns()
            found = await call(*args)
            wall, cpu = time.perf_counter_ns() - wall, time.process_time_ns() - cpu
            if bool(found) != hit:
                raise SystemExit(f"{kind}{args}: expected {'a hit' if hit else 'a miss'}")
            timings[kind].append((wall / 1e6, cpu / 1e3))
        return timings
    finally:
        pool.shutdown()
        await store.close()


async def query_plans(path: Path) -> dict[str, str]:
    """The outer loop of every read that must start from the index of its key, in the file
    as the store's start leaves it (an older file gets the indexes it lacks)."""
    store = SqliteStore(path)
    await store.start()
    await store.close()
    with closing(sqlite3.connect(path)) as conn:
        return {
            name: " / ".join(
                str(row[3])
                for row in conn.execute(f"EXPLAIN QUERY PLAN {read}", (None,) * read.count("?"))
            )
            for name, (read, _) in sql.INDEXED_READS.items()
        }


def unindexed(plans: dict[str, str]) -> list[str]:
    """The reads whose outer loop is not a search of the index of their key."""
    return [
        name
        for name, plan in plans.items()
        if not (plan.startswith("SEARCH") and f"INDEX {sql.INDEXED_READS[name][1]} (" in plan)
    ]


def _count(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        [(n,)] = conn.execute("SELECT COUNT(*) FROM sessions").fetchall()
    return int(n)


def _store_file(args: argparse.Namespace, tmp: Path, n: int, name: str) -> tuple[Path, float]:
    """A filled file of ``n`` sessions (``--keep``'s, if given for the big one); fill seconds."""
    path = args.keep if args.keep is not None and n == args.sessions else tmp / name
    if path.exists():
        found = _count(path)
        if found != n:
            raise SystemExit(f"{path} holds {found:,} sessions, not {n:,}: remove it")
        step(f"reusing {path} ({found:,} sessions)")
        return path, 0.0
    step(f"filling {path} with {n:,} sessions")
    started = time.perf_counter()
    mix = fill(path, n)
    seconds = time.perf_counter() - started
    step(f"{mix.sessions:,} sessions ({mix.active:,} active, {mix.idle:,} idle), {mix.legs:,} legs")
    return path, seconds


def _row(kind: str, timings: list[tuple[float, float]]) -> tuple[str, bool]:
    if len(timings) < 2:
        return f"| {kind} | {len(timings)} | | | | | | | FAIL: too slow to time |", False
    walls = [wall for wall, _ in timings]
    q = statistics.quantiles(walls, n=100)
    cpu = statistics.median(cpu for _, cpu in timings)
    ok = q[98] <= P99_BUDGET_MS
    figures = f"{q[49]:.3f} | {q[94]:.3f} | {q[98]:.3f} | {max(walls):.3f} | {cpu:.0f}"
    verdict = "" if kind == HOP else "pass" if ok else "FAIL"
    return f"| {kind} | {len(walls):,} | {figures} | | {verdict} |", ok or kind == HOP


def _memory_rows(small: ServerMemory, big: ServerMemory) -> tuple[list[str], bool]:
    """The two servers' rows; they pass if the big one's RSS and peak are each within
    10 MB (or 5%) of the small one's."""
    grew = max(big.rss_mb - small.rss_mb, big.hwm_mb - small.hwm_mb)
    ok = grew <= max(10.0, 0.05 * small.hwm_mb)
    rows = [
        f"| server on {m.sessions:,} sessions (start-up {m.startup_s:.1f} s,"
        f" {m.expired:,} expired) | | | | | | | {m.rss_mb:.0f} / {m.hwm_mb:.0f} |"
        for m in (small, big)
    ]
    rows[0] += " |"
    rows[1] += f" {'pass' if ok else 'FAIL'}: {grew:+.0f} MB |"
    return rows, ok


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=10_000, help="per kind")
    parser.add_argument("--keep", type=Path, help="fill this file once, reuse it later")
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    parser.add_argument("--no-server", action="store_true", help="skip the memory runs")
    parser.add_argument("--small", type=int, default=1_000, help="sessions of the small store")
    parser.add_argument("--messages", type=int, default=5, help="per conversation, 8 of them")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="session-map-") as tmp:
        path, fill_s = _store_file(args, Path(tmp), args.sessions, "big.db")
        size_mb = path.stat().st_size / 1e6
        plans = await query_plans(path)
        if args.explain:
            for name, plan in plans.items():
                print(f"{name}: {plan}", file=sys.stderr)
        scans = unindexed(plans)
        ok &= not scans
        step(f"timing {args.lookups:,} look-ups of each kind")
        timings = await time_lookups(path, args.lookups)
        memory: list[str] = []
        if not args.no_server:
            small_path, _ = _store_file(args, Path(tmp), args.small, "small.db")
            small = await server_memory(small_path, args.small, args.messages, step)
            big = await server_memory(path, args.sessions, args.messages, step)
            memory, fits = _memory_rows(small, big)
            ok &= fits
    filled = f", filled in {fill_s:.0f} s" if fill_s else ""
    print(f"{args.sessions:,} sessions, {size_mb:,.0f} MB file{filled}\n")
    print(
        "| what | count | p50 ms | p95 ms | p99 ms | max ms | CPU us (median)"
        " | RSS / peak MB | verdict |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for kind in [*KINDS, HOP]:
        line, fits = _row(kind, timings[kind])
        ok &= fits
        print(line)
    indexed = f"FAIL: {', '.join(scans)}" if scans else "pass"
    print(f"| every read starts from its index | {len(plans)} | | | | | | | {indexed} |")
    for line in memory:
        print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
