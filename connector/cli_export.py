"""``midtier sessions export``: sessions with their transcripts and route decisions, one
JSON line each (:mod:`connector.session_lines`), oldest first, for ``midtier replay`` and
for reading elsewhere.

It only reads the store, so it runs beside a live server. ``--out`` writes a temporary file
beside the target and renames it at the end: a reader never sees half an export, and an
export that fails leaves the old file as it was.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from connector.cli_args import aware_time, store_file
from connector.cli_progress import Progress
from connector.errors import ConfigError
from connector.files import replacing_text
from connector.interfaces import SessionStore
from connector.session_lines import session_line
from connector.sessions import MidTierSession

EVERY = 1000  # sessions between two progress lines
ALL = 2**62  # "no limit" for the store (SQLite's LIMIT takes a 64-bit integer)


def add_parser(ssub: Any, default_data: str) -> None:
    """``sessions export`` on the ``sessions`` command's subparsers."""
    ex = ssub.add_parser(
        "export",
        help="sessions with transcripts and route decisions as JSON lines, oldest first",
        description="One JSON object per line per session (see README.md, Session export). "
        "Reads only: it can run beside a live server.",
    )
    ex.add_argument("--data", metavar="DIR", default=default_data, help="data directory")
    ex.add_argument("--status", choices=["active", "closed"])
    ex.add_argument("--provider", metavar="P", help="only sessions whose current provider is P")
    ex.add_argument(
        "--since", metavar="ISO", help="only sessions updated at or after this time (UTC offset)"
    )
    ex.add_argument(
        "--limit", metavar="N", type=int, help="only the N most recently updated (after filters)"
    )
    ex.add_argument(
        "--out", metavar="FILE", help="write to FILE (whole, at the end) instead of stdout"
    )


def export(args: argparse.Namespace) -> int:
    """Run ``midtier sessions export``; the exit status."""
    try:
        since = _since(args.since)
        if args.limit is not None and args.limit < 0:
            raise ValueError(f"--limit {args.limit}: expected 0 or more")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        path = store_file(args.data)
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out) if args.out else None
    if out is not None and not out.parent.is_dir():
        print(f"error: --out {args.out}: no directory {out.parent}", file=sys.stderr)
        return 1
    return asyncio.run(_export(path, args, since, out))


def _since(text: str | None) -> datetime | None:
    return None if text is None else aware_time("--since", text)


async def _export(
    path: Path, args: argparse.Namespace, since: datetime | None, out: Path | None
) -> int:
    from connector.store import open_store

    store = open_store(str(path))
    try:
        await store.start()
    except (ConfigError, sqlite3.Error) as exc:  # a newer schema; not a SQLite file at all
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 2
    try:
        found = await _chosen(store, args, since)
        if out is None:
            written = await _write(store, found, sys.stdout)
        else:
            written = await _write_file(store, found, out)
    except BrokenPipeError:
        raise  # the reader went away: ``midtier`` ends quietly, as ``sessions show`` does
    except OSError as exc:
        where = args.out or "to stdout"
        print(f"error: cannot write {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        await store.close()
    where = f" to {out}" if out is not None else ""
    print(f"{written} session(s) exported{where}", file=sys.stderr)
    return 0


async def _chosen(
    store: SessionStore, args: argparse.Namespace, since: datetime | None
) -> list[MidTierSession]:
    """The sessions to export, oldest (created) first: the newest ``--limit`` of those
    that pass the filters."""
    limit = ALL if args.limit is None or since is not None else args.limit
    found = await store.list_sessions(status=args.status, provider=args.provider, limit=limit)
    if since is not None:  # the store cannot filter on time: the newest are read, then cut
        found = [s for s in found if s.updated_at >= since]
        if args.limit is not None:
            found = found[: args.limit]
    return sorted(found, key=lambda s: (s.created_at, s.id))


async def _write(store: SessionStore, sessions: list[MidTierSession], out: TextIO) -> int:
    progress = Progress("sessions exported", total=len(sessions), every=EVERY)
    try:
        for n, session in enumerate(sessions, 1):
            transcript = await store.transcript(session.id)
            decisions = await store.decisions(session.id)
            out.write(session_line(session, transcript, decisions) + "\n")
            progress.step(n)
        out.flush()
    finally:
        progress.finish()
    return progress.count


async def _write_file(store: SessionStore, sessions: list[MidTierSession], out: Path) -> int:
    # Made readable by its owner only (mkstemp's mode): transcripts are the users' words.
    with replacing_text(out, prefix=f".{out.name}.") as f:
        return await _write(store, sessions, f)
