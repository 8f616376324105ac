"""Arguments the ``midtier`` subcommands share the reading of."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

STORE_FILE = "midtier.db"  # the session store's file in the data directory


def aware_time(option: str, text: str) -> datetime:
    """``--at`` / ``--since``: an ISO time with its UTC offset; ValueError saying what to
    write otherwise (a time without offset would silently be the server's local time)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{option} {text!r}: expected an ISO time such as 2026-12-24T10:00+01:00"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"{option} {text!r}: give its UTC offset, e.g. {text}+00:00")
    return moment


def store_file(data: str | Path) -> Path:
    """``--data``'s session store file; LookupError (its text for the user) when it has
    none: the commands that read the store never create one."""
    path = Path(data) / STORE_FILE
    if not path.exists():
        raise LookupError(f"no session store at {path} (is --data right?)")
    return path
