"""Direct Line's payloads: what a client posts, and the ActivitySets it reads
(see :mod:`.directline`).

Every field of a posted activity is untrusted, also under a valid token: wrong types,
missing keys and ids that are not ours are a ``MalformedPayload`` (400) naming the field.
Clients see transcript lines as the activities midtier stored, with their transcript
``seq`` as the watermark, and their own messages with the ``channelData.clientActivityID``
they posted (Web Chat marks a message sent when it sees it come back).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from connector.activity import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    ConversationAccount,
    now,
)
from connector.errors import Forbidden, MalformedPayload
from connector.sessions import TranscriptEntry

CONVERSATION_ID = re.compile(r"^dlc_[A-Za-z0-9_\-]{27}$")  # connector.sessions.new_id("dlc")
TOKEN_USER_ID = re.compile(r"^dl_[A-Za-z0-9_\-]{1,64}$")
_USER_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_\-.:]{1,100}$")
POSTED_TYPES = frozenset({ActivityTypes.MESSAGE, ActivityTypes.EVENT, ActivityTypes.TYPING})
# What a client is shown of what midtier sends (trace and handoff activities are not for it).
SHOWN_TYPES = frozenset(
    {
        ActivityTypes.MESSAGE,
        ActivityTypes.TYPING,
        ActivityTypes.EVENT,
        ActivityTypes.END_OF_CONVERSATION,
    }
)
PAGE = 100  # activities per ActivitySet read from the transcript


@dataclass(frozen=True, slots=True)
class Posted:
    """A client's activity, checked: who sent it, the client's id for it, the activity."""

    user: str
    client_id: str | None
    activity: Activity


def _text(body: dict[str, Any], key: str, limit: int) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise MalformedPayload(f"{key} must be a string of at most {limit} characters")
    return value


def _sender(body: dict[str, Any], bound: str | None, trusted: bool) -> tuple[str, str | None]:
    """The user of a posted activity: the token's, if it names one."""
    sender = body.get("from")
    if sender is None:
        sender = {}
    if not isinstance(sender, dict):
        raise MalformedPayload("from must be an object")
    asked, name = sender.get("id"), _text(sender, "name", 128)
    if asked is not None and (not isinstance(asked, str) or not _USER_ID.match(asked)):
        raise MalformedPayload("from.id must be a string of 1-128 printable characters")
    if bound is not None:
        if asked is not None and asked != bound:
            raise Forbidden("from.id is not the user this token was issued to")
        return bound, name
    if asked is None:
        raise MalformedPayload("from.id is missing")
    if asked.startswith("dl_") and not trusted:
        # The prefix says a token server vouched for the id: a client cannot claim one.
        raise Forbidden("user ids starting with dl_ must be bound into the token")
    return asked, name


def read_posted(
    body: dict[str, Any],
    *,
    channel: str,
    conversation: str,
    bound_user: str | None,
    trusted: bool,
) -> Posted:
    """Check a posted activity and build midtier's activity from the fields it takes.

    ``bound_user`` is the token's user; ``trusted`` says the caller holds the secret.
    """
    kind = body.get("type")
    if not isinstance(kind, str) or kind not in POSTED_TYPES:
        raise MalformedPayload("type must be message, event or typing")
    user, name = _sender(body, bound_user, trusted)
    data = body.get("channelData")
    if data is not None and not isinstance(data, dict):
        raise MalformedPayload("channelData must be an object")
    client_id = (data or {}).get("clientActivityID")
    if client_id is not None and (
        not isinstance(client_id, str) or not _CLIENT_ID.match(client_id)
    ):
        raise MalformedPayload("channelData.clientActivityID must be 1-100 letters, digits, -_.:")
    if body.get("attachments"):
        raise MalformedPayload("attachments need an upload, which this service does not offer")
    text, event = _text(body, "text", 1_000_000), _text(body, "name", 256)
    value = body.get("value")
    if kind == ActivityTypes.MESSAGE and not (text and text.strip()) and value is None:
        raise MalformedPayload("a message needs text or a value")
    if kind == ActivityTypes.EVENT and not event:
        raise MalformedPayload("an event needs a name")
    activity = Activity(
        type=kind,
        timestamp=now(),
        channel_id=channel,
        from_=ChannelAccount(id=user, name=name, role="user"),
        recipient=ChannelAccount(id="midtier", role="bot"),
        conversation=ConversationAccount(id=conversation),
        text=text if kind == ActivityTypes.MESSAGE else None,
        value=value if kind != ActivityTypes.TYPING else None,
        name=event if kind == ActivityTypes.EVENT else None,
        locale=_text(body, "locale", 32),
    )
    return Posted(user=user, client_id=client_id, activity=activity)


def token_user(body: dict[str, Any]) -> str | None:
    """The ``user.id`` a token server asks ``tokens/generate`` to bind, if any."""
    user = body.get("user")
    if user is None:
        return None
    if not isinstance(user, dict):
        raise MalformedPayload("user must be an object")
    asked = user.get("id")
    if asked is None:
        return None
    if not isinstance(asked, str) or not TOKEN_USER_ID.match(asked):
        raise MalformedPayload("user.id must be dl_ and 1-64 letters, digits, - or _")
    return asked


def watermark_of(value: str | None) -> int:
    """A watermark a client gave back (a transcript ``seq``); 0 when absent."""
    if value is None or value in ("", "null", "undefined"):  # what clients send for none
        return 0
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise MalformedPayload("watermark must be one this service gave")
    return int(value)


def client_activity(wire: dict[str, Any], client_id: str | None = None) -> dict[str, Any]:
    """An activity as a Direct Line client sees it: midtier's channel data reduced to who
    speaks, the client's own id given back."""
    out = dict(wire)
    data = out.get("channelData")
    shown: dict[str, Any] = dict(data) if isinstance(data, dict) else {}
    meta = shown.pop("midtier", None)
    if isinstance(meta, dict) and "speaker" in meta:
        shown["midtier"] = {"speaker": meta["speaker"]}
    if client_id:
        shown["clientActivityID"] = client_id
    if shown:
        out["channelData"] = shown
    else:
        out.pop("channelData", None)
    return out


def entry_activity(entry: TranscriptEntry) -> dict[str, Any]:
    """A transcript line as the activity a client sees."""
    out = client_activity(entry.activity, entry.ref)
    out.setdefault("timestamp", entry.at.isoformat().replace("+00:00", "Z"))
    return out


def visible(entry: TranscriptEntry) -> bool:
    """Transcript lines a client is shown: those that went out (or came in) as activities
    (midtier's own bookkeeping lines have none)."""
    return bool(entry.activity.get("id")) and entry.activity.get("type") in SHOWN_TYPES


def history(entries: list[TranscriptEntry], after: int) -> tuple[list[dict[str, Any]], int]:
    """The activities of the lines after ``after`` (at most a page) and the new watermark:
    the last line looked at, shown or not, so that a client asks for the rest next."""
    out: list[dict[str, Any]] = []
    mark = after
    for entry in entries:
        if entry.seq <= after:
            continue
        if visible(entry):
            if len(out) == PAGE:
                break
            out.append(entry_activity(entry))
        mark = entry.seq
    return out, mark


def activity_set(activities: list[dict[str, Any]], watermark: int | None) -> dict[str, Any]:
    """An ActivitySet; no watermark for what the transcript does not hold (typing)."""
    body: dict[str, Any] = {"activities": activities}
    if watermark is not None:
        body["watermark"] = str(watermark)
    return body
