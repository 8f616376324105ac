"""``midtier reload [--data DIR]``: ask the server running on DIR to reload its routing and
intent classifier (SIGHUP), wait for the outcome and print it (``connector.reload``)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from connector.reload import PID_FILE, STATUS_FILE

POLL_S = 0.1


def add_parser(sub: Any, default_data: str) -> None:
    """``reload`` on the ``midtier`` command's subparsers."""
    reload = sub.add_parser(
        "reload", help="swap the running server's routing and classifier (no restart)"
    )
    reload.add_argument("--data", default=default_data, help="the server's data directory")
    reload.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait (training may take long)"
    )


def reload(args: argparse.Namespace) -> int:
    data = Path(args.data)
    try:
        pid = _server_pid(data)
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    before = _status(data).get("seq")
    os.kill(pid, signal.SIGHUP)
    print(f"... reloading midtier (pid {pid})", file=sys.stderr, flush=True)
    deadline = time.monotonic() + args.timeout
    while (outcome := _status(data)).get("seq") == before:
        if time.monotonic() > deadline:
            print(f"error: no outcome after {args.timeout:.0f} s; see the log", file=sys.stderr)
            return 1
        if not _alive(pid):
            print(f"error: midtier (pid {pid}) ended while reloading", file=sys.stderr)
            return 1
        time.sleep(POLL_S)  # a plain CLI waiting on a file another process writes
    if not outcome.get("ok"):
        for error in outcome.get("errors", []):
            print(f"error: {error}", file=sys.stderr)
        print("the running configuration stays in place", file=sys.stderr)
        return 2
    applied = ", ".join(outcome.get("applied", [])) or "nothing changed"
    print(f"reloaded: {applied}")
    for name in outcome.get("not_applied", []):
        print(f"note: {name} changed; restart midtier to apply it")
    return 0


def _server_pid(data: Path) -> int:
    path = data / PID_FILE
    try:
        pid = int(path.read_text().strip())
    except FileNotFoundError:
        raise LookupError(f"no running midtier for {data} (no {path})") from None
    except (OSError, ValueError):
        raise LookupError(f"{path} does not hold a process id") from None
    if not _alive(pid) or not _is_midtier(pid):
        raise LookupError(f"no running midtier for {data} ({path} is left from pid {pid})")
    return pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


def _is_midtier(pid: int) -> bool:
    """Whether ``pid`` runs midtier (a killed server's pid may have been reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc here: trust the pid file
    return b"midtier" in cmdline or b"connector.cli" in cmdline


def _status(data: Path) -> dict[str, Any]:
    try:
        found = json.loads((data / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}
