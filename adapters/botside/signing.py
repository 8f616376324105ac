"""Sign and verify midtier webhook requests (stdlib only: copy this file into your service).

Runs on both sides: in the webhook service (copied, e.g. as ``midtier_signing.py``, or as
``adapters.botside.signing`` where midtier is installed) and in midtier's webhook provider.

Both directions of the webhook provider use one scheme, modelled on Slack's signing secret v0
and Stripe's ``v1`` signatures::

    X-Midtier-Timestamp: <unix seconds, integer>
    X-Midtier-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.".encode() + raw_body)>

The signature covers the raw bytes of the body exactly as sent (never a re-serialisation) and
the timestamp, so a captured request cannot be replayed once it is more than
``TOLERANCE_S`` (5 minutes) away from the receiver's clock. A service checks a request from
midtier with::

    from midtier_signing import SignatureError, verify

    body = await request.read()                     # the raw bytes, before any JSON parsing
    try:
        verify(SECRET, body, request.headers)       # raises SignatureError
    except SignatureError:
        return web.Response(status=401)

and signs its own callbacks to midtier with ``headers = sign(SECRET, body)``. To rotate a
secret, verify with both for a while: ``verify([new, old], body, headers)``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping

SIGNATURE_HEADER = "X-Midtier-Signature"
TIMESTAMP_HEADER = "X-Midtier-Timestamp"
DELIVERY_HEADER = "X-Midtier-Delivery"
VERSION = "v1"
TOLERANCE_S = 300

Secret = str | bytes


class SignatureError(ValueError):
    """A request whose signature is missing, malformed, wrong or too old (answer 401)."""


def _key(secret: Secret) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    if not key:
        raise ValueError("the signing secret is empty")
    return key


def signature(secret: Secret, body: bytes, timestamp: int) -> str:
    """The ``X-Midtier-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{VERSION}={digest.hexdigest()}"


def sign(secret: Secret, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers to send with ``body``: timestamp (now unless given) and signature."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: signature(secret, body, ts)}


def verify(
    secret: Secret | Iterable[Secret],
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    tolerance: float = TOLERANCE_S,
) -> int:
    """Check ``body`` against its headers; return the signed timestamp or raise SignatureError.

    ``secret`` may be several secrets (during a rotation): any one of them may have signed.
    ``headers`` is looked up case-insensitively.
    """
    secrets = [secret] if isinstance(secret, str | bytes) else list(secret)
    if not secrets:
        raise ValueError("no signing secret given")
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ts = lowered.get(TIMESTAMP_HEADER.lower())
    given = lowered.get(SIGNATURE_HEADER.lower())
    if not raw_ts or not given:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    if not raw_ts.isascii() or not raw_ts.isdigit() or len(raw_ts) > 12:
        raise SignatureError(f"{TIMESTAMP_HEADER} is not a unix time in seconds")
    ts = int(raw_ts)
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        raise SignatureError(f"{TIMESTAMP_HEADER} is outside the {int(tolerance)} s window")
    if not given.startswith(f"{VERSION}="):
        raise SignatureError(f"{SIGNATURE_HEADER} is not a {VERSION} signature")
    candidate = given.encode("ascii", "replace")
    # Check every secret (no early exit) so timing says nothing about which one matched.
    matched = False
    for key in secrets:
        expected = signature(key, body, ts).encode("ascii")
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("signature does not match")
    return ts


__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "TOLERANCE_S",
    "SignatureError",
    "sign",
    "signature",
    "verify",
]
