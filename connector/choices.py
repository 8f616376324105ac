"""Choices a bot offered, and a user answering one of them with its number.

Many channels cannot show buttons, or not as many as a bot offers, so channel adapters
write choices as a numbered list (``adapters.channels.render.numbered``). When a message
with choices goes to the user, :class:`connector.to_user.ToUser` keeps their values on the
session (``channel_state["offer"]``); when the user's next message is just one of those
numbers ("2", " 2. "), the core reads it as the second choice's value before routing. Any
other message drops the offer.
"""

from __future__ import annotations

import re
from typing import Any

from connector.activity import Activity

OFFER = "offer"  # channel_state key
MAX_CHOICES = 20
HERO_CARD = "application/vnd.microsoft.card.hero"
SENDS_BACK = ("imBack", "postBack", "messageBack")  # action types whose click answers
_NUMBER = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")


def _pairs(actions: Any) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if not isinstance(actions, list):
        return out
    for action in actions[:MAX_CHOICES]:
        if not isinstance(action, dict):
            continue
        title = action.get("title")
        value = action.get("value", title)
        if action.get("type", "imBack") not in SENDS_BACK:
            continue  # openUrl, call...: nothing to send back
        if isinstance(value, str) and (isinstance(title, str) or title is None):
            out.append((title or value, value))
    return out


def offered(activity: Activity) -> list[tuple[str, str]]:
    """(title, value) of each choice a message offers: its suggested actions, then the
    buttons of its hero cards."""
    found = _pairs((activity.suggested_actions or {}).get("actions"))
    for attachment in activity.attachments or []:
        if attachment.content_type == HERO_CARD and isinstance(attachment.content, dict):
            found += _pairs(attachment.content.get("buttons"))
    return found[:MAX_CHOICES]


def answer(text: str, offer: list[str]) -> str | None:
    """The value chosen when ``text`` is just the number of one of ``offer``; else None."""
    match = _NUMBER.match(text)
    if match is None:
        return None
    index = int(match.group(1))
    return offer[index - 1] if 1 <= index <= len(offer) else None
