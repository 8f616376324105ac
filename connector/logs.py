"""Structured logs: one JSON object per line, carrying the mid-tier session id.

The session id lives in a context variable set by the core while it handles a session, so
every log line written on its behalf (by the core or an adapter) carries it.

Secrets are kept out of logs at the source, and request bodies are never logged. Two more
lines of defence:

* :class:`RedactingFilter` blanks every registered secret (tokens, credentials, passwords)
  in the *rendered* line: the message, the exception text and traceback, and every extra
  field, in their JSON-escaped form too. A secret reaches a log through exception text far
  more often than through a message (a library quoting what it was given).
* :class:`AiohttpErrorFilter` turns aiohttp's own "Error handling request" records into one
  line naming the error and where it was raised. Their traceback quotes the raw request
  (a header, a body that came without ``Content-Length``), which may hold anything.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import threading
import traceback
from types import TracebackType
from typing import Any

session_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "midtier_session_id", default=None
)

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """Replaces registered secret values by ``[redacted]``.

    As a filter it blanks the message of a record; :meth:`redact` does the same for any
    rendered text, which is how :class:`JsonFormatter` applies it to the whole line.
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, secret: str) -> None:
        """Register ``secret`` (values under 8 characters are too short to blank safely)."""
        if not secret or len(secret) < 8:
            return
        # Also as it appears inside a JSON string (quotes, backslashes, non-ASCII escaped).
        forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
        if forms <= self._secrets:
            return
        self._secrets |= forms
        # Longest first, so that a secret containing another is blanked whole.
        ordered = sorted(self._secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def redact(self, text: str) -> str:
        """``text`` with every registered secret blanked."""
        if self._pattern is None:
            return text
        return self._pattern.sub("[redacted]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._pattern is not None:
            text = record.getMessage()
            redacted = self.redact(text)
            if redacted != text:
                record.msg, record.args = redacted, None
        return True


redactor = RedactingFilter()


def _raised_at(tb: TracebackType | None) -> str:
    frames = traceback.extract_tb(tb)
    if not frames:
        return ""
    last = frames[-1]
    where = "/".join(last.filename.replace("\\", "/").split("/")[-2:])
    return f" at {where}:{last.lineno} in {last.name}"


def _parse_error_status(exc: BaseException) -> int | None:
    """The status of aiohttp's HttpProcessingError (a request it could not parse), found by
    its shape (the core does not import aiohttp), also when it is the cause of another."""
    for candidate in (exc, exc.__cause__):
        status = getattr(candidate, "code", None)
        if isinstance(status, int) and hasattr(candidate, "headers"):
            return status
    return None


class AiohttpErrorFilter(logging.Filter):
    """One line, without the request's bytes, for aiohttp's "Error handling request" records.

    aiohttp logs these with the exception attached when it answers a request itself: a
    request it could not parse (400), a body that did not decode, a handler that raised
    (500). The exception's text quotes the raw request line, headers or body, so it is
    dropped; the exception's type and the place it was raised are kept. A request aiohttp
    could not parse is the client's doing: a warning, not an error.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiohttp.") or not record.exc_info:
            return True
        exc = record.exc_info[1]
        if exc is None:
            return True
        status = _parse_error_status(exc)
        what = type(exc).__name__
        what += f" (HTTP {status})" if status is not None else _raised_at(exc.__traceback__)
        record.msg = f"{record.getMessage()}: {what}"
        record.args = None
        record.exc_info = None
        record.exc_text = None
        if status is not None and status < 500:
            record.event = "bad_request"
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        else:
            record.event = "request_failed"
        return True


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", "session", ...extra}`` per line, secrets blanked."""

    def __init__(self, secrets: RedactingFilter | None = None) -> None:
        super().__init__()
        self._secrets = redactor if secrets is None else secrets

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
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return self._secrets.redact(json.dumps(out, default=str))


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("midtier").critical("uncaught exception", exc_info=(kind, exc, tb))


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    logging.getLogger("midtier").error(
        "uncaught exception in thread %s",
        args.thread.name if args.thread else "?",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def _log_unraisable(args: Any) -> None:
    exc = args.exc_value
    logging.getLogger("midtier").error(
        "exception ignored in %r: %s",
        args.object,
        args.err_msg or "",
        exc_info=(type(exc), exc, args.exc_traceback) if exc is not None else None,
    )


def configure_logging(level: str = "info", *, stream: Any = None) -> None:
    """Send every log line (midtier's, aiohttp's, warnings, uncaught errors) as redacted JSON.

    Call it before anything that may log or fail, so that nothing reaches ``stream``
    (stderr) unredacted through Python's fallback handler or default exception hooks.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(AiohttpErrorFilter())
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_exception
    sys.unraisablehook = _log_unraisable
