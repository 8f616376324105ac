"""The ``midtier`` command: run the server, check a config, look at sessions.

midtier run [--host H] [--port P] [--config DIR] [--data DIR] [--loop asyncio|uvloop]
midtier check [--config DIR]
midtier route explain TEXT [--session ID] [--channel C] [--at ISO] [--config DIR] [--data DIR]
midtier reload [--data DIR] [--timeout S]
midtier sessions list [--data DIR] [--status S] [--provider P] [--failed] [--limit N] [--json]
midtier sessions show ID [--data DIR] [--json]
midtier sessions export [--data DIR] [--status S] [--provider P] [--since ISO] [--limit N] [--out F]
midtier replay SESSIONS.jsonl [--routing FILE] [--nlu DIR] [--config DIR] [--data DIR] [--json]
midtier stats [--data DIR] [--config DIR] [--since ISO | --hours H] [--provider P] [--intent I]
              [--bucket 1h|6h|1d] [--json] [--plot FILE.png]
midtier nlu eval --dataset clinc150 [--data PATH] [--tier default|accurate|all] [--few-shot]
                 [--json]
midtier nlu eval --train TRAIN --test TEST [--val VAL] [--tier ...] [--json]
midtier --version
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from connector.config import load_config
from connector.errors import ConfigError, ConfigErrors

DEFAULT_CONFIG = "bot_configs"
DEFAULT_DATA = "data"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="midtier", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"midtier {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start the server")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=3978)
    run.add_argument("--config", default=DEFAULT_CONFIG, help="config directory (bot_configs)")
    run.add_argument("--data", default=DEFAULT_DATA, help="data directory (SQLite file, caches)")
    run.add_argument("--public-url", help="URL providers use to reach this server")
    run.add_argument("--log-level", default="info")
    run.add_argument(
        "--loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="event loop: asyncio's own (the default), or uvloop's (pip install 'midtier[uvloop]')",
    )

    check = sub.add_parser("check", help="validate a config directory, printing every error")
    check.add_argument("--config", default=DEFAULT_CONFIG)

    from connector.cli_route import add_parser as add_route

    add_route(sub, DEFAULT_CONFIG, DEFAULT_DATA)
    from connector.cli_reload import add_parser as add_reload

    add_reload(sub, DEFAULT_DATA)

    sessions = sub.add_parser("sessions", help="list, show or export mid-tier sessions")
    ssub = sessions.add_subparsers(dest="action", required=True)
    listing = ssub.add_parser("list", help="sessions, newest first")
    listing.add_argument("--data", default=DEFAULT_DATA)
    listing.add_argument("--status", choices=["active", "closed"])
    listing.add_argument("--provider", help="only sessions whose current provider is this")
    listing.add_argument(
        "--failed", action="store_true", help="only sessions with replies that never arrived"
    )
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    show = ssub.add_parser(
        "show", help="legs, delivery failures, waiting replies, transcript, route decisions"
    )
    show.add_argument("id")
    show.add_argument("--data", default=DEFAULT_DATA)
    show.add_argument("--json", action="store_true")
    from connector.cli_export import add_parser as add_export
    from connector.cli_replay import add_parser as add_replay

    add_export(ssub, DEFAULT_DATA)
    add_replay(sub, DEFAULT_CONFIG, DEFAULT_DATA)
    from connector.cli_stats import add_parser as add_stats

    add_stats(sub, DEFAULT_CONFIG, DEFAULT_DATA)
    from connector.cli_nlu import add_arguments

    nlu = sub.add_parser("nlu", help="intent classifier tiers")
    nsub = nlu.add_subparsers(dest="action", required=True)
    add_arguments(nsub.add_parser("eval", help="train, tune and score classifier tiers"))
    return parser


def _version() -> str:
    """The installed distribution's version (the one ``pip`` and bug reports speak of)."""
    try:
        return version("midtier")
    except PackageNotFoundError:  # a checkout on sys.path that was never installed
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "check":
            return _check(Path(args.config))
        if args.command == "route":
            from connector.cli_route import route

            return route(args)
        if args.command == "reload":
            from connector.cli_reload import reload

            return reload(args)
        if args.command == "replay":
            from connector.cli_replay import replay

            return replay(args)
        if args.command == "stats":
            from connector.cli_stats import stats

            return stats(args)
        if args.command == "sessions" and args.action == "export":
            from connector.cli_export import export

            return export(args)
        if args.command == "nlu":
            from connector.routing.nlu_eval import run

            return run(args)
        from connector.cli_sessions import sessions

        return asyncio.run(sessions(args))
    except BrokenPipeError:
        # The reader went away (``midtier sessions show ID --json | head -1``): that is the
        # reader's choice, not an error worth a traceback. Point stdout at /dev/null so the
        # interpreter's final flush cannot fail again, and exit as a SIGPIPE'd tool does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 128 + signal.SIGPIPE


def _print_config_errors(errors: list[ConfigError]) -> None:
    for err in errors:
        print(f"error: {err}", file=sys.stderr)


async def _settle_memory(_app: object) -> None:
    """Once started: what start-up made (modules, the trained classifier, the bots) lives as
    long as the process, so the garbage collector stops walking it, and collects young
    objects less often (each message makes a few thousand; the defaults collect every 700)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)


def _run(args: argparse.Namespace) -> int:
    from aiohttp import web

    from connector.app import AccessLogger, create_app
    from connector.logs import configure_logging

    # First: whatever building the app logs, warns or raises goes out redacted, as JSON.
    configure_logging(args.log_level)
    try:
        config = load_config(args.config)
        public = args.public_url or f"http://{args.host}:{args.port}"
        app = create_app(config, Path(args.data), public_url=public)
    except ConfigErrors as exc:
        _print_config_errors(exc.errors)
        return 2
    problems = _prestart_problems(app)
    if problems:
        _print_config_errors(problems)
        return 2
    try:
        loop = _event_loop(args.loop)
    except ImportError:
        print(
            "error: --loop uvloop: uvloop is not installed (pip install 'midtier[uvloop]')",
            file=sys.stderr,
        )
        return 2
    app.on_startup.append(_settle_memory)  # after everything else has started
    base = f"http://{args.host}:{args.port}"
    logging.getLogger("midtier").info(
        "serving %s: web chat at %s/ , agent desk at %s/agent (event loop: %s)",
        config.dir, base, base, type(loop).__module__.split(".")[0],
    )  # fmt: skip
    try:
        web.run_app(
            app,
            host=args.host,
            port=args.port,
            print=None,
            access_log_class=AccessLogger,
            loop=loop,
        )
    except ConfigError as exc:  # found while starting (e.g. a store of a newer version)
        _print_config_errors([exc])
        return 2
    except OSError as exc:  # e.g. the port is taken, the data directory is not writable
        print(f"error: cannot start: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _event_loop(choice: str) -> asyncio.AbstractEventLoop:
    """The loop the server runs on: asyncio's own unless ``choice`` is "uvloop". uvloop's
    (libuv, in C) runs fewer instructions per message under callgrind, yet the server
    spends more CPU time on it: 6-7% more a web chat message and 14-17% more a Telegram
    webhook message, in alternating runs (docs/benchmarks.md, eighth round). ImportError
    when uvloop is asked for and missing."""
    if choice == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _prestart_problems(app: Any) -> list[ConfigError]:
    """What each adapter's own ``check()`` finds (a bot path that does not import, a class
    that fails to construct), before anything is opened or served: found at start-up
    instead, it would surface as a traceback from inside the server's start."""
    from connector.app import ENGINE
    from connector.checks import adapter_errors, tier_errors

    engine = app[ENGINE]
    adapters = [*engine.channels.values(), *engine.providers.values()]
    return tier_errors(engine.config) + asyncio.run(adapter_errors(adapters))


def _check(directory: Path) -> int:
    from connector.checks import check_config

    warnings: list[str] = []
    errors = check_config(directory, warnings)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if errors:
        _print_config_errors(errors)
        print(f"{len(errors)} problem(s) in {directory}", file=sys.stderr)
        return 1
    print(f"{directory}: ok" + (f" ({len(warnings)} warning(s))" if warnings else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["main"]
