"""Structured logs: one JSON object per line, carrying the mid-tier session id.

The session id lives in a context variable set by the core while it handles a session, so
every log line written on its behalf (by the core or an adapter) carries it. Secrets are kept
out of logs at the source; the :class:`RedactingFilter` is a second line of defence that
blanks any registered secret value (tokens, credentials) should one slip into a message.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

session_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "midtier_session_id", default=None
)

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


@contextmanager
def session_context(session_id: str) -> Iterator[None]:
    """Tag log lines written inside the block with ``session_id``."""
    token = session_id_var.set(session_id)
    try:
        yield
    finally:
        session_id_var.reset(token)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", "session", ...extra}`` per line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        session = getattr(record, "session", None) or session_id_var.get()
        if session:
            out["session"] = session
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key != "session" and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class RedactingFilter(logging.Filter):
    """Replaces registered secret values by ``[redacted]`` in the rendered message."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def add(self, secret: str) -> None:
        if secret and len(secret) >= 8:
            self._secrets.add(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            text = record.getMessage()
            if any(s in text for s in self._secrets):
                for s in self._secrets:
                    text = text.replace(s, "[redacted]")
                record.msg, record.args = text, None
        return True


redactor = RedactingFilter()


def configure_logging(level: str = "info", *, stream: Any = None) -> None:
    """Send every ``midtier`` and ``aiohttp`` log line as JSON to ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
