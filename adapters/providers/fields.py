"""Setting types the provider kinds share, so that one rule reads and fails alike in each.

Used in the providers' pydantic ``Settings`` models; a failed rule becomes a ``ConfigError``
naming ``providers.yaml`` and the key (``connector.context.settings_of``). The messages never
repeat the value: it may be a secret, or a URL with a token in it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator
from yarl import URL

MIN_SECRET_CHARS = 16


def http_url(value: str) -> str:
    """``value`` as an absolute http(s) URL with a host, or ValueError."""
    try:
        url = URL(value)
        ok = url.scheme in ("http", "https") and bool(url.host)
    except (TypeError, ValueError):  # yarl refuses some malformed URLs outright
        ok = False
    if not ok:
        raise ValueError("expected an http(s) URL")
    return value


def secret(value: str) -> str:
    """A shared secret long enough not to be guessed (it comes from an env var)."""
    if len(value) < MIN_SECRET_CHARS:
        raise ValueError(f"expected a secret of {MIN_SECRET_CHARS}+ characters")
    return value


HttpUrl = Annotated[str, AfterValidator(http_url)]
Secret = Annotated[str, AfterValidator(secret)]

__all__ = ["MIN_SECRET_CHARS", "HttpUrl", "Secret", "http_url", "secret"]
