"""``midtier replay SESSIONS.jsonl``: exported conversations (``midtier sessions export``)
through another routing file and/or a classifier trained on other NLU data, printing where
the decisions would change and the totals (:mod:`connector.replay` does the replaying).

The other routing file is validated as the server validates ``routing.yaml``: against the
providers of ``--config``, every problem with its file and key (exit status 2). A line that
is not a session is named with its number and the rest is still replayed (exit status 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import stat
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, BinaryIO

from connector.cli_args import store_file
from connector.cli_progress import Progress
from connector.config import Config, RoutingConfig, cross_check, load_config
from connector.config_files import parse_model, read_yaml
from connector.errors import ConfigError, ConfigErrors
from connector.replay import ASSUMPTIONS, Replayer, SessionReplay, Totals, session_json
from connector.routing.conditions import Rates, unmeasured
from connector.routing.decision import RouteDecision
from connector.session_lines import LineError, parse_line

EVERY = 1000  # sessions between two progress lines (off a terminal)
REPLAY_CACHE = "replay"  # under <data>/nlu-cache: a model of other NLU data, kept apart


def add_parser(sub: Any, default_config: str, default_data: str) -> None:
    """``replay`` on the ``midtier`` command's subparsers."""
    rp = sub.add_parser(
        "replay",
        help="exported conversations through another routing file or NLU data: what changes",
        description="Classify and route every recorded user message of SESSIONS (a file of\n"
        "`midtier sessions export`; - for stdin) again, through another routing file\n"
        "and/or a classifier trained on other NLU data, and print where the decisions\n"
        "would change, then the totals.",
        epilog=ASSUMPTIONS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rp.add_argument("sessions", metavar="SESSIONS", help="JSON lines of `sessions export`")
    rp.add_argument(
        "--routing", metavar="FILE", help="the routing file to replay with (default: --config's)"
    )
    rp.add_argument("--nlu", metavar="DIR", help="train the classifier on this directory's NLU")
    rp.add_argument(
        "--config", metavar="DIR", default=default_config, help="the deployment (providers)"
    )
    rp.add_argument(
        "--data", metavar="DIR", default=default_data, help="data directory (classifier cache)"
    )
    rp.add_argument(
        "--json", action="store_true", help="one object per changed session, then the totals"
    )


def replay(args: argparse.Namespace) -> int:
    """Run ``midtier replay``; the exit status."""
    from connector.routing.nlu import classifier_for

    source: BinaryIO | None = None
    try:
        # Secrets the deployment reads from the environment are not needed offline.
        config = load_config(args.config, found=[])
        routing = _routing(args.routing, config) if args.routing else config.routing
        files = _nlu_files(Path(args.nlu)) if args.nlu else config.nlu_files
        source = _source(args.sessions)
        # Made as the server makes it (its owner's only), should the server start on it later.
        Path(args.data).mkdir(parents=True, exist_ok=True, mode=0o700)
        cache = Path(args.data) / "nlu-cache"
        print("... loading the intent classifier", file=sys.stderr, flush=True)
        classifier, trained = classifier_for(
            routing, files, cache / REPLAY_CACHE if args.nlu else cache
        )
    except (ConfigErrors, OSError) as exc:
        if source is not None:
            source.close()
        if isinstance(exc, ConfigErrors):
            for err in exc.errors:
                print(f"error: {err}", file=sys.stderr)
            return 2
        # the sessions file, or the data directory
        print(f"error: {exc.filename or args.sessions}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if trained:
        print("... trained it", file=sys.stderr)
    for warning in _unknown_intents(routing, set(classifier.intents), args.routing):
        print(f"warning: {warning}", file=sys.stderr)
    try:
        rates = _rates(args.data, routing)
    except (ConfigError, sqlite3.Error) as exc:  # a newer schema; not a SQLite file at all
        if source is not None:
            source.close()
        print(f"error: {store_file(args.data)}: {exc}", file=sys.stderr)
        return 2
    mid = config.midtier
    replayer = Replayer(
        routing,
        classifier.classify,
        reachable=mid.continuation.reachable(mid.channels),
        success=rates,
    )
    totals = Totals()
    with ExitStack() as stack:
        stream = stack.enter_context(source) if source is not None else sys.stdin.buffer
        total = _size(stream)
        progress = Progress("sessions replayed", total=total, every=EVERY)
        stack.callback(progress.finish)
        for number, raw, done in _lines(stream):
            try:
                line = parse_line(raw)
            except LineError as exc:
                totals.bad_lines += 1
                progress.clear()
                print(f"error: {args.sessions} line {number}: {exc}", file=sys.stderr)
                continue
            found = replayer.replay(line)
            totals.add(found)
            if found.changes:
                progress.clear()
                _print_session(found, as_json=args.json)
            progress.step(done)
    _print_totals(totals, as_json=args.json)
    return 1 if totals.bad_lines else 0


def _rates(data: str, routing: RoutingConfig) -> Rates:
    """The success rates the store of ``data`` has now, when a route of ``routing`` sets a
    ``min_success_rate`` (otherwise, or without a store, none: every minimum holds)."""
    if all(route.min_success_rate is None for route in routing.routes.values()):
        return unmeasured
    try:
        path = store_file(data)
    except LookupError:
        print(f"... no store in {data}: every min_success_rate holds", file=sys.stderr)
        return unmeasured
    window = routing.success_rate.window_h
    print(f"... success rates of the last {window:g} h from {path}", file=sys.stderr)
    return asyncio.run(_read_rates(path, routing))


async def _read_rates(path: Path, routing: RoutingConfig) -> Rates:
    from connector.outcomes import SuccessRates
    from connector.store import open_store

    store = open_store(str(path))
    await store.start()
    try:
        rates = SuccessRates(store, lambda: routing)
        await rates.refresh()
        return rates
    finally:
        await store.close()


def _routing(given: str, config: Config) -> RoutingConfig:
    """The other routing file, checked as the server checks ``routing.yaml``."""
    path = Path(given)
    errors: list[ConfigError] = []
    raw = read_yaml(path, errors)
    routing = parse_model(RoutingConfig, raw, given, errors) if raw is not None else None
    if routing is not None:
        cross_check(config.providers, routing, errors)
    if errors or routing is None:
        # read_yaml and the cross-check name the file by its name; the user gave a path
        named = {path.name, "routing.yaml"}
        raise ConfigErrors(
            [ConfigError(given, e.key, e.message) if e.file in named else e for e in errors]
        )
    return routing


def _nlu_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise ConfigErrors([ConfigError(f"--nlu {directory}", "", "no such directory")])
    files = sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])
    if not files:
        raise ConfigErrors([ConfigError(f"--nlu {directory}", "", "no NLU files (*.yml) in it")])
    return files


def _source(given: str) -> BinaryIO | None:
    """The sessions file, open (None: stdin); OSError when it cannot be read."""
    return None if given == "-" else Path(given).open("rb")


def _size(stream: BinaryIO) -> int | None:
    """The bytes to read, for the progress bar (None for a pipe)."""
    try:
        found = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return None
    return found.st_size if stat.S_ISREG(found.st_mode) and found.st_size else None


def _lines(stream: BinaryIO) -> Iterator[tuple[int, bytes, int]]:
    """(line number, line, bytes read so far) of each line that is not blank."""
    done = 0
    for number, raw in enumerate(stream, 1):
        done += len(raw)
        if raw.strip():
            yield number, raw.rstrip(b"\r\n"), done


def _unknown_intents(routing: RoutingConfig, intents: set[str], given: str | None) -> list[str]:
    """Route intents no intent of the classifier matches: likely a typo that would make the
    replay find nothing for them."""
    from fnmatch import filter as matching

    file = given or "routing.yaml"
    return [
        f"{file}: routes.{name}.intents[{i}]: intent {pattern!r} matches nothing in the NLU data"
        for name, route in routing.routes.items()
        for i, pattern in enumerate(route.intents)
        if not matching(intents, pattern)
    ]


def _print_session(found: SessionReplay, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(session_json(found)))
        return
    s = found.session
    print(f"session {s.id} ({s.channel}): {len(found.changes)} of {len(found.steps)} changed")
    for step in found.changes:
        text = step.entry.text if step.entry.text is not None else "(no text)"
        print(f"  #{step.entry.seq:<4} {step.entry.at:%Y-%m-%d %H:%M:%S}  {text!r}")
        print(f"      recorded: {_decision(step.recorded)}")
        print(f"      replayed: {_decision(step.replayed)}")


def _decision(d: RouteDecision) -> str:
    intent = f"{d.intent} {d.confidence:.2f}" if d.intent else f"no intent {d.confidence:.2f}"
    return f"{d.action} -> {d.provider or '-'}  [{intent}] {d.reason}"


def _print_totals(totals: Totals, *, as_json: bool) -> None:
    found = totals.as_json()
    if as_json:
        print(json.dumps(found))
        return
    print(
        f"\nreplayed {found['messages']} message(s) of {found['sessions']} session(s): "
        f"{found['changed']} decision(s) changed, in {found['sessions_changed']} session(s)"
    )
    print(f"switches: {found['switches_added']} added, {found['switches_removed']} removed")
    for name, moved in found["providers"].items():
        print(f"  {name:<14} gains {moved['gained']}, loses {moved['lost']}")
    if found["unmatched_messages"]:
        n = found["unmatched_messages"]
        print(f"{n} user message(s) without a recorded decision, not replayed")
    if found["bad_lines"]:
        print(f"{found['bad_lines']} line(s) not read: not a session (see the errors above)")
