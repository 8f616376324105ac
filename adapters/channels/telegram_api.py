"""The Telegram Bot API's side of replies: the ``sendMessage`` body (choices as an inline
keyboard, or a numbered list when a value does not fit ``callback_data``), the chat id, the
message id of an answer, and what Telegram's errors mean for a retry."""

from __future__ import annotations

import re
from typing import Any

from adapters.channels import render
from connector.errors import ChannelError, DeliveryRejected

MAX_TEXT = 4096  # UTF-16 code units, as Telegram counts
MAX_CALLBACK_DATA = 64  # bytes
MAX_BUTTONS = 100
_CHAT_ID = re.compile(r"^-?\d{1,20}$")


def message_id(answer: dict[str, Any]) -> str:
    result = answer.get("result")
    message_id = result.get("message_id") if isinstance(result, dict) else None
    return str(message_id) if message_id is not None else ""


def chat_id(conversation: object) -> int | str:
    if not isinstance(conversation, str) or not conversation:
        raise DeliveryRejected("telegram: the activity has no conversation to send to")
    return int(conversation) if _CHAT_ID.match(conversation) else conversation


def text_message(chat: int | str, text: str, options: list[render.Choice]) -> dict[str, Any] | None:
    """The ``sendMessage`` body: choices as one button per row when every value fits in
    ``callback_data``, else written into the text as a numbered list (answered by number)."""
    body: dict[str, Any] = {"chat_id": chat}
    if options and len(options) <= MAX_BUTTONS and all(map(_fits, options)):
        body["reply_markup"] = {
            "inline_keyboard": [
                [{"text": option.title or option.value, "callback_data": option.value}]
                for option in options
            ]
        }
        text = text or render.numbered("", options)  # Telegram wants text above buttons
    elif options:
        text = render.numbered(text, options)
    if not text:
        return None
    body["text"] = render.cut_utf16(text, MAX_TEXT)
    return body


def _fits(option: render.Choice) -> bool:
    return 1 <= len(option.value.encode()) <= MAX_CALLBACK_DATA


def classify(status: int, body: Any) -> ChannelError | None:
    """Telegram's ``{"ok": false, "error_code", "description", "parameters"}``.

    The default mapping already rejects for good what Telegram refuses with a 403 (the
    user blocked the bot, it was removed from the group) or a 400 ("chat not found").
    """
    if not isinstance(body, dict):
        return None
    description = body.get("description")
    reason = f"telegram: HTTP {status}: {description if isinstance(description, str) else ''}"
    reason = reason[:240]
    parameters = body.get("parameters")
    wait = parameters.get("retry_after") if isinstance(parameters, dict) else None
    if status == 429:
        if isinstance(wait, bool) or not isinstance(wait, int | float):
            return ChannelError(reason)
        return ChannelError(reason, retry_after=max(0.0, float(wait)))
    if status in (401, 404):
        # The token was refused: midtier's configuration, not the user, so it is retried
        # (after the token is fixed the replies still go out, in order).
        return ChannelError(f"{reason} (check the bot token)")
    return None
