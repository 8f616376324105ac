"""The ``midtier`` command: run the server, check a config, look at sessions.

midtier run [--host H] [--port P] [--config DIR] [--data DIR]
midtier check [--config DIR]
midtier sessions list [--data DIR] [--status S] [--provider P] [--limit N] [--json]
midtier sessions show ID [--data DIR] [--json]
midtier --version
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from connector.interfaces import SessionStore
from connector.sessions import MidTierSession

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

    check = sub.add_parser("check", help="validate a config directory, printing every error")
    check.add_argument("--config", default=DEFAULT_CONFIG)

    sessions = sub.add_parser("sessions", help="list or show mid-tier sessions")
    ssub = sessions.add_subparsers(dest="action", required=True)
    listing = ssub.add_parser("list", help="sessions, newest first")
    listing.add_argument("--data", default=DEFAULT_DATA)
    listing.add_argument("--status", choices=["active", "closed"])
    listing.add_argument("--provider", help="only sessions whose current provider is this")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    show = ssub.add_parser("show", help="legs, current provider, transcript, route decisions")
    show.add_argument("id")
    show.add_argument("--data", default=DEFAULT_DATA)
    show.add_argument("--json", action="store_true")
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
        return asyncio.run(_sessions(args))
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
    base = f"http://{args.host}:{args.port}"
    logging.getLogger("midtier").info(
        "serving %s: web chat at %s/ , agent desk at %s/agent", config.dir, base, base
    )
    try:
        web.run_app(
            app,
            host=args.host,
            port=args.port,
            print=None,
            access_log_class=AccessLogger,
        )
    except ConfigError as exc:  # found while starting (e.g. a store of a newer version)
        _print_config_errors([exc])
        return 2
    except OSError as exc:  # e.g. the port is taken, the data directory is not writable
        print(f"error: cannot start: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _prestart_problems(app: Any) -> list[ConfigError]:
    """What each adapter's own ``check()`` finds (a bot path that does not import, a class
    that fails to construct), before anything is opened or served: found at start-up
    instead, it would surface as a traceback from inside the server's start."""
    from connector.app import ENGINE
    from connector.checks import adapter_errors

    engine = app[ENGINE]
    adapters = [*engine.channels.values(), *engine.providers.values()]
    return asyncio.run(adapter_errors(adapters))


def _check(directory: Path) -> int:
    from connector.checks import check_config

    errors = check_config(directory)
    if errors:
        _print_config_errors(errors)
        print(f"{len(errors)} problem(s) in {directory}", file=sys.stderr)
        return 1
    print(f"{directory}: ok")
    return 0


# ---------------------------------------------------------------------- sessions


async def _open_store(data: str) -> SessionStore:
    from connector.store import open_store

    path = Path(data) / "midtier.db"
    if not path.exists():
        raise FileNotFoundError(f"no session store at {path} (is --data right?)")
    store = open_store(str(path))
    await store.start()
    return store


async def _sessions(args: argparse.Namespace) -> int:
    try:
        store = await _open_store(args.data)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        if args.action == "list":
            found = await store.list_sessions(
                status=args.status, provider=args.provider, limit=args.limit
            )
            _print_list(found, as_json=args.json)
            return 0
        session = await store.get(args.id)
        if session is None:
            print(f"error: no session {args.id!r}", file=sys.stderr)
            return 1
        transcript = await store.transcript(session.id)
        decisions = await store.decisions(session.id)
        detail: dict[str, Any] = {
            "session": session.model_dump(mode="json"),
            "current_provider": session.current_provider,
            "transcript": [e.model_dump(mode="json", exclude={"activity"}) for e in transcript],
            "decisions": [d.model_dump(mode="json") for d in decisions],
        }
        if args.json:
            print(json.dumps(detail, indent=2))
        else:
            _print_detail(session, detail)
        return 0
    finally:
        await store.close()


def _print_list(sessions: list[MidTierSession], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([_summary(s) for s in sessions], indent=2))
        return
    print(f"{'id':<36} {'status':<7} {'provider':<12} {'legs':>4} {'updated':<20} user")
    for s in sessions:
        print(
            f"{s.id:<36} {s.status:<7} {s.current_provider or '-':<12} {len(s.legs):>4} "
            f"{s.updated_at:%Y-%m-%d %H:%M:%S}  {s.user_id}"
        )
    print(f"{len(sessions)} session(s)")


def _summary(s: MidTierSession) -> dict[str, Any]:
    return {
        "id": s.id,
        "status": s.status,
        "user_id": s.user_id,
        "channel": s.channel,
        "channel_conversation_id": s.channel_conversation_id,
        "current_provider": s.current_provider,
        "legs": len(s.legs),
        "created_at": s.created_at.isoformat(),
        "updated_at": s.updated_at.isoformat(),
    }


def _print_detail(session: MidTierSession, detail: dict[str, Any]) -> None:
    print(f"session   {session.id}  ({session.status})")
    print(f"user      {session.user_id}")
    print(f"channel   {session.channel} / {session.channel_conversation_id}")
    print(f"provider  {session.current_provider or '-'}")
    print("\nlegs:")
    for leg in session.legs:
        closed = (
            f"closed {leg.closed_at:%H:%M:%S} ({leg.close_reason})" if leg.closed_at else "open"
        )
        opened = f"{leg.opened_at:%Y-%m-%d %H:%M:%S}"
        print(f"  {opened}  {leg.provider:<12} {leg.provider_conversation_id}")
        print(f"      on {leg.channel} / {leg.channel_conversation_id}")  # legs of every channel
        print(f"      opened: {leg.open_reason or '-'}; {closed}")
    print("\ntranscript:")
    for e in detail["transcript"]:
        who = e["speaker"] + (f" ({e['provider']})" if e.get("provider") else "")
        print(f"  #{e['seq']:<4} {e['at'][11:19]}  {who:<22} {e.get('text') or ''}")
    print("\nroute decisions:")
    for d in detail["decisions"]:
        intent = f"{d['intent']} {d['confidence']:.2f}" if d.get("intent") else "-"
        target = d["provider"] or "-"
        why = d["reason"] if not d.get("summary") else f"{d['summary']} ({d['reason']})"
        print(f"  {d['at'][11:19]}  {d['action']:<8} -> {target:<10} [{intent}] {why}")


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["main"]
