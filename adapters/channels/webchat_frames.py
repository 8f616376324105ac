"""The web chat's frames (see :mod:`.webchat`)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import WSMsgType, web
from pydantic_core import PydanticSerializationError, to_json

from connector.choices import MAX_CHOICES, SENDS_BACK
from connector.sessions import TranscriptEntry

HISTORY_PAGE = 50  # transcript lines per welcome or history frame


def encode(frame: dict[str, Any]) -> bytes:
    """A frame as the UTF-8 JSON of a text frame: pydantic-core's encoder, a fifth of the
    cost of ``json.dumps`` (which writes what it cannot, a lone surrogate, as an escape)."""
    try:
        return to_json(frame)
    except PydanticSerializationError:
        return json.dumps(frame).encode()


async def send(ws: web.WebSocketResponse, data: bytes) -> None:
    """Send an encoded frame."""
    await ws.send_frame(data, WSMsgType.TEXT)


def message_frame(activity: dict[str, Any], speaker: str | None = None) -> dict[str, Any]:
    """The ``message`` frame of a wire activity."""
    sender = activity.get("from") or {}
    meta = (activity.get("channelData") or {}).get("midtier") or {}
    frame = {
        "type": "message",
        "id": activity.get("id"),
        "text": activity.get("text") or "",
        "speaker": speaker or meta.get("speaker") or "bot",
        "from": {"id": sender.get("id"), "name": sender.get("name")},
        "timestamp": activity.get("timestamp"),
    }
    choices = _choices(activity)
    if choices:
        frame["choices"] = choices  # the page shows them as buttons that send the title
    return frame


def _choices(activity: dict[str, Any]) -> list[str]:
    """The titles of a message's suggested actions that send something back."""
    actions = (activity.get("suggestedActions") or {}).get("actions")
    if not isinstance(actions, list):
        return []
    titles = []
    for action in actions[:MAX_CHOICES]:
        if isinstance(action, dict) and action.get("type", "imBack") in SENDS_BACK:
            title = action.get("title") or action.get("value")
            if isinstance(title, str) and title:
                titles.append(title)
    return titles


def history_frame(entry: TranscriptEntry) -> dict[str, Any]:
    """A transcript line as a ``message`` frame, with its ``seq`` and the client's id."""
    frame = message_frame(entry.activity, entry.speaker)
    frame["text"] = entry.text or frame["text"]
    frame["timestamp"] = frame["timestamp"] or entry.at.isoformat()
    frame["seq"] = entry.seq
    if entry.ref:
        frame["client_id"] = entry.ref
    return frame


def shown(entry: TranscriptEntry) -> bool:
    """Lines the user sees (midtier's own bookkeeping lines have no activity)."""
    return entry.speaker != "system" or bool(entry.activity)
