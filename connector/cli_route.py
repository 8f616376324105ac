"""``midtier route explain TEXT``: what the router would do with a message, and why, read
from the deployment's own config, classifier and (with ``--session``) session store.

Circuit breakers and providers' health live in the running server; offline they are
shown as not checked (the routing playground page asks the running server instead).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connector.cli_args import aware_time, store_file
from connector.config import RoutingConfig
from connector.errors import ConfigErrors
from connector.routing.conditions import Rates, unmeasured
from connector.routing.explain import explain, new_session, render
from connector.routing.policy import Router
from connector.sessions import MidTierSession

OFFLINE_HEALTH = "not checked offline (circuit breakers live in the running server)"


def add_parser(sub: Any, default_config: str, default_data: str) -> None:
    """``route explain`` on the ``midtier`` command's subparsers."""
    route = sub.add_parser("route", help="what the router would do with a message, and why")
    rsub = route.add_subparsers(dest="action", required=True)
    ex = rsub.add_parser("explain", help="ranking, decision and every condition for TEXT")
    ex.add_argument("text", help="the user's message")
    ex.add_argument("--config", default=default_config)
    ex.add_argument("--data", default=default_data, help="data directory (classifier cache)")
    ex.add_argument("--session", help="as the next message of this stored session")
    ex.add_argument("--channel", default="webchat", help="a new conversation's channel")
    ex.add_argument("--at", help="check business hours at this ISO time (default: now)")
    ex.add_argument("--json", action="store_true")


def route(args: argparse.Namespace) -> int:
    from connector.config import load_config
    from connector.routing.nlu import classifier_for

    try:
        at = _moment(args.at)
        config = load_config(args.config)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ConfigErrors as exc:
        for err in exc.errors:
            print(f"error: {err}", file=sys.stderr)
        return 2
    data = Path(args.data)
    try:
        session, open_legs, rates = asyncio.run(
            _session(data, args.session, args.channel, config.routing, at)
        )
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("... loading the intent classifier", file=sys.stderr, flush=True)
    try:
        classifier, trained = classifier_for(config.routing, config.nlu_files, data / "nlu-cache")
    except ConfigErrors as exc:
        for err in exc.errors:
            print(f"error: {err}", file=sys.stderr)
        return 2
    if trained:
        print(f"... trained it (now cached in {data / 'nlu-cache'})", file=sys.stderr)
    mid = config.midtier
    router = Router(
        config.routing,
        open_legs=open_legs,
        success=rates,
        reachable=mid.continuation.reachable(mid.channels),
        clock=lambda: at,
    )
    intent = classifier.classify(args.text)
    found = explain(router, intent, session, args.text, stored=args.session is not None, at=at)
    for row in found["routes"]:
        for condition in row["conditions"]:
            if condition["name"] == "health":
                condition["holds"], condition["detail"] = None, OFFLINE_HEALTH
    print(json.dumps(found, indent=2) if args.json else render(found))
    return 0


def _moment(text: str | None) -> datetime:
    return datetime.now(UTC) if text is None else aware_time("--at", text)


async def _session(
    data: Path, session_id: str | None, channel: str, routing: RoutingConfig, at: datetime
) -> tuple[MidTierSession, dict[str, int], Rates]:
    """The session to explain with (stored, or a new one on ``channel``), the open legs
    per provider the store counts and the success rates of the window before ``at`` (none
    without a store)."""
    try:
        path = store_file(data)
    except LookupError:
        if session_id is not None:
            raise
        return new_session(channel), {}, unmeasured
    from connector.outcomes import SuccessRates
    from connector.store import open_store

    store = open_store(str(path))
    await store.start()
    try:
        counts = await store.open_leg_counts()
        rates = SuccessRates(store, lambda: routing, clock=lambda: at)
        await rates.refresh()
        if session_id is None:
            return new_session(channel), counts, rates
        session = await store.get(session_id)
        if session is None:
            raise LookupError(f"no session {session_id!r} in {path}")
        return session, counts, rates
    finally:
        await store.close()
