"""What a reply holds, read once for every channel: text, choices, images.

Bots speak Bot Framework: choices are ``suggestedActions.actions`` (or the buttons of a hero
card attachment), images are attachments with an ``image/*`` content type. A channel maps
these to its nearest form (quick replies, inline keyboards, interactive buttons); where it
has none, or has fewer slots than the bot offers, :func:`numbered` writes the choices into
the text as a numbered list, and the core maps a reply of just that number back to the
choice's value (:mod:`connector.choices`), so the user can answer with the number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connector.activity import Activity
from connector.choices import HERO_CARD, offered


@dataclass(frozen=True, slots=True)
class Choice:
    title: str  # what the user sees
    value: str  # what comes back when the user picks it


@dataclass(frozen=True, slots=True)
class Image:
    url: str
    name: str | None = None


def choices(activity: Activity) -> list[Choice]:
    """The choices a reply offers, in order (suggested actions and hero card buttons)."""
    return [Choice(title, value) for title, value in offered(activity)]


def images(activity: Activity) -> list[Image]:
    """Image attachments with a URL the platform can fetch."""
    out = []
    for attachment in activity.attachments or []:
        url = attachment.content_url
        if url and attachment.content_type.startswith("image/") and _fetchable(url):
            out.append(Image(url, attachment.name))
    return out


def text_of(activity: Activity) -> str:
    """The reply's text, or a hero card's title and text when the bot sent only a card."""
    if activity.text:
        return activity.text
    parts: list[str] = []
    for attachment in activity.attachments or []:
        content = attachment.content
        if attachment.content_type == HERO_CARD and isinstance(content, dict):
            parts += [str(content[k]) for k in ("title", "subtitle", "text") if content.get(k)]
    return "\n".join(parts)


def numbered(text: str, options: list[Choice]) -> str:
    """Choices written into the text, one numbered line each (as Rasa's text channels do):
    the user answers with the number."""
    lines = [text] if text else []
    lines += [f"{i}. {choice.title}" for i, choice in enumerate(options, 1)]
    return "\n".join(lines)


def cut(text: str, limit: int) -> str:
    """``text`` within a platform's length limit (an ellipsis marks the cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cut_utf16(text: str, limit: int) -> str:
    """``text`` within ``limit`` UTF-16 code units, as Telegram and Twilio count (an emoji
    is two), an ellipsis marking a cut."""
    if len(text) * 2 <= limit:  # no text this short can be over, whatever it holds
        return text
    encoded = text.encode("utf-16-le", "surrogatepass")
    if len(encoded) <= 2 * limit:
        return text
    # "ignore" drops the half of a surrogate pair that the cut would leave behind.
    return encoded[: 2 * (limit - 1)].decode("utf-16-le", "ignore") + "…"


def _fetchable(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def attachment_of(kind: str, url: str, name: str | None = None) -> dict[str, Any]:
    """An inbound media attachment in Bot Framework form, from a platform's media type
    (``image``, ``audio``, ``video``, ``file``...) and URL."""
    content_type = {
        "image": "image/*",
        "audio": "audio/*",
        "video": "video/*",
        "sticker": "image/*",
    }.get(kind, "application/octet-stream")
    out: dict[str, Any] = {"contentType": content_type, "contentUrl": url}
    if name:
        out["name"] = name
    return out
