"""Who the user is, as channels vouch for it: the claims a session carries.

A channel's claims are ``{"sub": <its user id>, "channel": <its name>, "verified": bool}``.
``verified`` is true when the platform proved the sender (its signature over the webhook
checked out); the web chat's are false: a page says whatever it likes, so they are a label.

**Identities.** Verified claims may carry ``"identities"``: strings ``"<scheme>:<value>"``
that the platform proved, e.g. ``"phone:+16505551234"`` for WhatsApp's ``wa_id`` or the
``From`` of an SMS through Twilio. A webhook channel gives them as
``channelData.identities`` on the activities its ``parse`` returns (use
:func:`phone_identity` for phone numbers); the core lifts them into the verified claims, and
the store indexes active sessions by them (``SessionStore.by_identity``) so that a user who
writes from another channel with the same proven identity can be offered their conversation.
Identities from unverified claims are dropped.

**One session, several channels.** A session that continues on another channel keeps what
each channel proved (:func:`merge_claims`): the claims of the channel that vouches best are at
the top (a verified channel over an unverified one; otherwise the newest), the others under
``"linked"``, and ``"identities"`` holds every identity proved in the session. Unverified
claims never replace verified ones.
"""

from __future__ import annotations

import re
from typing import Any

MAX_IDENTITIES = 8
MAX_LINKED = 8
_IDENTITY = re.compile(r"^[a-z][a-z0-9_.-]{0,31}:[^\s]{1,200}$")
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
_OWN_KEYS = ("identities", "linked")


def phone_identity(number: str) -> str | None:
    """``"phone:+<E.164 digits>"`` for a number a platform proved, or None if it is not one.

    Accepts WhatsApp's ``wa_id`` (digits, no plus), E.164 with a plus, and Twilio's channel
    addresses (``whatsapp:+1...``); spaces, dashes, dots and brackets are ignored.
    """
    value = number.strip()
    if ":" in value:
        value = value.rsplit(":", 1)[1]
    value = re.sub(r"[\s().-]", "", value)
    if not value.startswith("+"):
        value = "+" + value
    return f"phone:{value}" if _PHONE.match(value) else None


def identities(value: object) -> list[str]:
    """The well-formed identities in ``value`` (anything; a list of strings is expected),
    phone numbers normalized, duplicates dropped, at most :data:`MAX_IDENTITIES`."""
    if not isinstance(value, list):
        return []
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not _IDENTITY.match(item):
            continue
        if item.startswith("phone:"):
            normalized = phone_identity(item[6:])
            if normalized is None:
                continue
            item = normalized
        if item not in out:
            out.append(item)
        if len(out) == MAX_IDENTITIES:
            break
    return out


def verified_identities(claims: dict[str, Any]) -> list[str]:
    """The identities of ``claims`` if the claims are verified, else none."""
    if claims.get("verified") is not True:
        return []
    return identities(claims.get("identities"))


def _source(claims: dict[str, Any]) -> tuple[object, object]:
    return claims.get("channel"), claims.get("sub")


def _own(claims: dict[str, Any]) -> dict[str, Any]:
    """One channel's claims, without what a session adds to them."""
    return {k: v for k, v in claims.items() if k not in _OWN_KEYS}


def merge_claims(current: dict[str, Any], incoming: dict[str, Any] | None) -> dict[str, Any]:
    """A session's claims after a channel gave ``incoming`` (see the module docstring)."""
    if incoming is None:
        return current
    if incoming == current and not any(k in current for k in _OWN_KEYS):
        return current  # the same channel said the same again (every web chat message)
    proved = verified_identities(current) + verified_identities(incoming)
    if not current:
        top, linked = _own(incoming), []
    else:
        old, new = _own(current), _own(incoming)
        linked = [e for e in current.get("linked", []) if isinstance(e, dict)]
        if _source(old) == _source(new):
            top = new
        elif new.get("verified") is True or old.get("verified") is not True:
            top, linked = new, [old, *linked]
        else:  # a label does not replace what a platform proved
            top, linked = old, [new, *linked]
    merged: dict[str, Any] = dict(top)
    kept = identities(proved)
    if kept and merged.get("verified") is True:
        merged["identities"] = kept
    seen = {_source(top)}
    unique = []
    for entry in linked:
        if _source(entry) not in seen:
            seen.add(_source(entry))
            unique.append(_own(entry))
    if unique:
        merged["linked"] = unique[:MAX_LINKED]
    return merged
