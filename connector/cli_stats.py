"""``midtier stats``: the success rates of providers per intent, as the router measures them
for a route's ``min_success_rate`` (:mod:`connector.outcomes`), read from the session store.

Over ``routing.yaml``'s ``success_rate.window_h`` (``--since`` / ``--hours`` say otherwise),
it prints per provider and intent the outcomes, the successes, the success rate and the
switches away, with a total per provider, and marks each row the router judges: ``below
min`` (a route's ``min_success_rate`` not reached over at least ``min_outcomes``
outcomes), ``too few`` (fewer outcomes than that: the minimum holds) or ``ok``. ``--json``
prints the same as one object; ``--plot FILE.png`` draws the rates and switches over time
(:mod:`connector.stats_plot`, ``pip install 'midtier[plots]'``).

It only reads the store, so it runs beside a live server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sqlite3
import sys
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connector.cli_args import aware_time, store_file
from connector.errors import ConfigError, ConfigErrors
from connector.records import OutcomeCount
from connector.routing.config import RoutingConfig, SuccessRate
from connector.stats_table import NONE, render, table_rows, totals

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_BUCKET = re.compile(r"(\d+)([smhd])")


def add_parser(sub: Any, default_config: str, default_data: str) -> None:
    """``stats`` on the ``midtier`` command's subparsers."""
    st = sub.add_parser(
        "stats",
        help="success rates per provider and intent, from the outcomes of conversations",
        description="Outcomes, successes, success rate and switches away per provider and "
        "intent over routing.yaml's success_rate window (see README.md, Success rates). "
        "Reads only: it can run beside a live server.",
    )
    st.add_argument("--data", metavar="DIR", default=default_data, help="data directory")
    st.add_argument(
        "--config", metavar="DIR", default=default_config, help="config directory (routing.yaml)"
    )
    window = st.add_mutually_exclusive_group()
    window.add_argument("--since", metavar="ISO", help="outcomes at or after this time (offset)")
    window.add_argument("--hours", metavar="H", type=float, help="outcomes of the last H hours")
    st.add_argument("--provider", metavar="P", help="only provider P")
    st.add_argument("--intent", metavar="I", help="only intent I ('' for none known)")
    st.add_argument(
        "--bucket", metavar="N{s,m,h,d}", help="--plot's time step, e.g. 1h, 6h, 1d (default: "
        "1h up to 2 days, 6h up to 14 days, else 1d)",
    )  # fmt: skip
    st.add_argument("--json", action="store_true")
    st.add_argument("--plot", metavar="FILE.png", help="draw rates and switches over time")


def stats(args: argparse.Namespace) -> int:
    """Run ``midtier stats``; the exit status."""
    until = datetime.now(UTC)
    routing = _routing(args.config)
    measure = routing.success_rate if routing is not None else SuccessRate()
    try:
        since = _since(args.since, args.hours, until, measure.window_h)
        bucket_s = _bucket(args.bucket, until - since)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        path = store_file(args.data)
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        counts, buckets = asyncio.run(_read(path, since, bucket_s if args.plot else None))
    except (ConfigError, sqlite3.Error) as exc:  # a newer schema; not a SQLite file at all
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 2
    counts = _chosen(counts, args.provider, args.intent)
    rows = table_rows(counts, routing)
    found: dict[str, Any] = {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "rows": [asdict(row) for row in rows],
    }
    if args.plot is not None:
        plotted = _plot(_chosen(buckets, args.provider, args.intent), since, until, bucket_s, args)
        if plotted != 0:
            return plotted
        found["plot"] = args.plot
    if args.json:
        print(json.dumps(found, indent=2))
    elif not rows:
        print(f"no outcomes {_between(since, until)}{_filters(args)}")
    else:
        print(f"success rates {_between(since, until)}{_filters(args)}")
        print(render(rows))
    return 0


def _routing(directory: str) -> RoutingConfig | None:
    """The config's routing (None, said on stderr, when the config does not load)."""
    from connector.config import load_config

    try:
        return load_config(directory, found=[]).routing
    except ConfigErrors as exc:
        first = exc.errors[0] if exc.errors else "does not load"
        print(
            f"warning: config {directory}: {first}: the window is {SuccessRate().window_h:g} h "
            "and no route minimums are checked",
            file=sys.stderr,
        )
        return None


def _since(text: str | None, hours: float | None, until: datetime, window_h: float) -> datetime:
    if text is not None:
        return aware_time("--since", text)
    if hours is not None and not hours > 0:
        raise ValueError(f"--hours {hours:g}: expected more than 0")
    return until - timedelta(hours=window_h if hours is None else hours)


def _bucket(text: str | None, window: timedelta) -> int:
    """``--bucket`` in seconds, or the default for a window that long."""
    if text is None:
        days = window / timedelta(days=1)
        return 3600 if days <= 2 else 6 * 3600 if days <= 14 else 86400
    found = _BUCKET.fullmatch(text.strip())
    if found is None or int(found.group(1)) == 0:
        raise ValueError(f"--bucket {text!r}: expected a number and a unit, e.g. 30m, 1h, 6h, 1d")
    return int(found.group(1)) * _UNITS[found.group(2)]


async def _read(
    path: Path, since: datetime, bucket_s: int | None
) -> tuple[list[OutcomeCount], list[OutcomeCount]]:
    """The counts since ``since``, and per bucket when ``bucket_s`` is given (one read:
    the counts are then the buckets' sums)."""
    from connector.store import open_store

    store = open_store(str(path))
    await store.start()
    try:
        if bucket_s is None:
            return await store.outcome_counts(since), []
        buckets = await store.outcome_counts(since, bucket_s=bucket_s)
    finally:
        await store.close()
    return totals(buckets), buckets


def _chosen(
    counts: list[OutcomeCount], provider: str | None, intent: str | None
) -> list[OutcomeCount]:
    return [
        c
        for c in counts
        if (provider is None or c.provider == provider) and (intent is None or c.intent == intent)
    ]


def _between(since: datetime, until: datetime) -> str:
    def short(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")

    return f"from {short(since)} to {short(until)}"


def _filters(args: argparse.Namespace) -> str:
    said = [f"provider {args.provider}"] if args.provider is not None else []
    if args.intent is not None:
        said.append(f"intent {args.intent or NONE}")
    return f" ({', '.join(said)})" if said else ""


def _plot(
    buckets: list[OutcomeCount],
    since: datetime,
    until: datetime,
    bucket_s: int,
    args: argparse.Namespace,
) -> int:
    out = Path(args.plot)
    if not out.parent.is_dir():
        print(f"error: --plot {args.plot}: no directory {out.parent}", file=sys.stderr)
        return 1
    try:
        from connector.stats_plot import draw

        draw(buckets, since, until, bucket_s, out)
    except ImportError:
        print("error: --plot needs matplotlib: pip install 'midtier[plots]'", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {args.plot}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"... plot written to {out}", file=sys.stderr)
    return 0
