"""Structured logs carry the mid-tier session id and never a secret or an auth code."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.doubles import make_engine, user_message

from connector.logs import JsonFormatter, RedactingFilter


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
