"""Structured logs carry the mid-tier session id and never a secret or an auth code."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.http_exceptions import BadHttpMessage
from support.doubles import make_engine, user_message

from connector.logs import (
    AiohttpErrorFilter,
    JsonFormatter,
    RedactingFilter,
    configure_logging,
    redactor,
)


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


async def test_log_lines_carry_the_session_and_no_code(
    tmp_path: Path, json_lines: io.StringIO
) -> None:
    engine, providers, _ = make_engine(tmp_path)
    session = await engine.receive("test", user_message("hello"))
    await engine.receive("test", user_message("please dispute this"))
    assert session is not None
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    routed = [line for line in lines if line.get("event") == "route"]
    switched = [line for line in lines if line.get("event") == "switch"]
    assert len(routed) == 2 and len(switched) == 2
    assert all(line["session"] == session.id for line in routed + switched)
    assert switched[-1]["from"] == "faq" and switched[-1]["to"] == "disputes"
    assert {"ts", "level", "logger", "msg"} <= set(routed[0])
    code = providers["disputes"].opened[0].auth_code
    assert code and code not in json_lines.getvalue()


def test_redacting_filter_blanks_registered_secrets() -> None:
    redactor = RedactingFilter()
    redactor.add("hunter2-very-secret")
    redactor.add("short")  # too short to redact safely: ignored
    record = logging.LogRecord(
        "midtier", logging.INFO, __file__, 1, "token %s and short", ("hunter2-very-secret",), None
    )
    assert redactor.filter(record)
    assert record.getMessage() == "token [redacted] and short"


def _render(record: logging.LogRecord, secrets: RedactingFilter) -> dict[str, Any]:
    line = JsonFormatter(secrets).format(record)
    assert "\n" not in line
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def test_the_whole_rendered_line_is_redacted_exception_text_and_extras_too() -> None:
    secrets = RedactingFilter()
    secrets.add("hunter2-very-secret")
    secrets.add('quote"and\\back-slash')
    try:
        raise ValueError("could not parse b'client_secret=hunter2-very-secret'")
    except ValueError:
        record = logging.LogRecord(
            "midtier", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    record.peer = {"token": "hunter2-very-secret", "other": 'quote"and\\back-slash'}
    out = _render(record, secrets)
    assert "hunter2-very-secret" not in json.dumps(out)
    assert 'quote"and\\back-slash' not in json.dumps(out) and "back-slash" not in json.dumps(out)
    assert "client_secret=[redacted]" in out["exc"] and "Traceback" in out["exc"]
    assert out["peer"] == {"token": "[redacted]", "other": "[redacted]"}


def test_a_secret_containing_another_is_blanked_whole() -> None:
    secrets = RedactingFilter()
    secrets.add("abcdefgh")
    secrets.add("abcdefgh-and-more")
    record = logging.LogRecord("m", logging.INFO, __file__, 1, "abcdefgh-and-more", None, None)
    assert _render(record, secrets)["msg"] == "[redacted]"


def _aiohttp_record(exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        info = sys.exc_info()
    return logging.LogRecord(
        "aiohttp.server",
        logging.ERROR,
        __file__,
        1,
        "Error handling request from %s",
        ("127.0.0.1",),
        info,
    )


def test_aiohttp_parse_errors_become_one_warning_line_without_the_request_bytes() -> None:
    record = _aiohttp_record(BadHttpMessage("Invalid header value char: b'Bearer s3cr3t\\xff'"))
    assert AiohttpErrorFilter().filter(record)
    out = _render(record, RedactingFilter())
    assert out["msg"] == "Error handling request from 127.0.0.1: BadHttpMessage (HTTP 400)"
    assert out["level"] == "warning" and out["event"] == "bad_request"
    assert "exc" not in out and "s3cr3t" not in json.dumps(out)


def test_aiohttp_handler_failures_stay_errors_and_say_where_without_the_text() -> None:
    record = _aiohttp_record(KeyError("the raw body: s3cr3t"))
    assert AiohttpErrorFilter().filter(record)
    out = _render(record, RedactingFilter())
    assert out["msg"].startswith("Error handling request from 127.0.0.1: KeyError at ")
    assert "test_logs.py:" in out["msg"] and "_aiohttp_record" in out["msg"]
    assert out["level"] == "error" and out["event"] == "request_failed"
    assert "exc" not in out and "s3cr3t" not in json.dumps(out)


def test_records_of_other_loggers_keep_their_traceback() -> None:
    record = _aiohttp_record(KeyError("x"))
    record.name = "midtier.engine"
    assert AiohttpErrorFilter().filter(record)
    assert "Traceback" in _render(record, RedactingFilter())["exc"]


def test_configure_logging_routes_everything_through_the_redacting_formatter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level, sys.excepthook
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    logging.captureWarnings(False)  # an earlier configure_logging may have left it on
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        try:
            configure_logging("debug", stream=stream)
            redactor.add("configure-secret-123")
            warnings.warn("watch configure-secret-123", UserWarning, stacklevel=1)
            try:
                raise RuntimeError("boom configure-secret-123")
            except RuntimeError:
                sys.excepthook(*sys.exc_info())
        finally:
            root.handlers[:], level, sys.excepthook = saved
            root.setLevel(level)
            logging.captureWarnings(False)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["logger"] for line in lines] == ["py.warnings", "midtier"]
    assert "configure-secret-123" not in stream.getvalue()
    assert lines[1]["msg"] == "uncaught exception" and "boom [redacted]" in lines[1]["exc"]
