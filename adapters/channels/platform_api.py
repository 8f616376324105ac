"""Calling a platform's send API: one place that turns HTTP outcomes into the outbox's terms.

* 2xx: the parsed JSON body (or None).
* 429, 5xx, 408, timeouts, refused connections: ``ChannelError``, retried by the outbox,
  with ``retry_after`` from the ``Retry-After`` header (seconds or an HTTP date).
* Other 4xx: ``DeliveryRejected``, unless the adapter's ``classify`` says otherwise (a
  platform that reports throttling inside a 400 body, as Meta's Graph API does).

Error texts never include the URL's query string or the request headers (tokens live
there), only the platform's own error description, cut short.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

import aiohttp

from connector.errors import ChannelError, DeliveryRejected

# (status, parsed body) -> an error to raise, or None for the default mapping.
Classify = Callable[[int, Any], ChannelError | None]

RETRYABLE = frozenset({408, 425, 429})


def retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds (RFC 9110: delay-seconds or an HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def describe(body: Any, limit: int = 200) -> str:
    """A platform's error body as a short line for logs and the session's failure record."""
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return text[:limit]


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    what: str,
    json_body: Any = None,
    form: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    auth: aiohttp.BasicAuth | None = None,
    timeout_s: float = 10.0,
    classify: Classify | None = None,
) -> Any:
    """Make one API call; the JSON body of a 2xx answer, or raise as described above."""
    data: bytes | Mapping[str, str] | None = form
    if json_body is not None:
        # Encoded here, not by aiohttp's JSON payload (which builds its headers per call).
        data = _encode(json_body)
        headers = _with_json_type(headers)
    try:
        async with http.request(
            method,
            url,
            data=data,
            headers=headers,
            auth=auth,
            timeout=_timeout(timeout_s),
        ) as response:
            raw = await response.read()
            status = response.status
            if 200 <= status < 300:
                return _parse(raw)
            wait = retry_after(response.headers.get("Retry-After"))
    except TimeoutError:
        raise ChannelError(f"{what}: no answer within {timeout_s:g} s") from None
    except aiohttp.ClientError as exc:
        raise ChannelError(f"{what}: {type(exc).__name__}") from None
    except asyncio.CancelledError:
        raise
    body = _parse(raw)
    if classify is not None:
        decided = classify(status, body)
        if decided is not None:
            if decided.retry_after is None and wait is not None:
                decided.retry_after = wait
            raise decided
    reason = f"{what}: HTTP {status} {describe(body)}"
    if status in RETRYABLE or status >= 500:
        raise ChannelError(reason, retry_after=wait)
    raise DeliveryRejected(reason)


_JSON = {"Content-Type": "application/json"}
# Compact, and ASCII-escaped as aiohttp's own encoding is (a lone surrogate in a bot's text
# is sent as its escape rather than failing to encode).
_encode_text = json.JSONEncoder(separators=(",", ":")).encode


def _with_json_type(headers: Mapping[str, str] | None) -> Mapping[str, str]:
    """``headers`` with the JSON ``Content-Type``, unless they name one (Slack's has a charset)."""
    if not headers:
        return _JSON
    if any(name.lower() == "content-type" for name in headers):
        return headers
    return {**_JSON, **headers}


def _encode(value: Any) -> bytes:
    return _encode_text(value).encode()


@lru_cache(maxsize=16)
def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    """One ``ClientTimeout`` per deadline an adapter uses, not one per call."""
    return aiohttp.ClientTimeout(total=seconds)


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw[:200].decode("utf-8", "replace")
