"""Payload mapping for the Rasa provider: Rasa bot messages <-> midtier Activities, NLU results.

A Rasa bot message is the REST channel's element (also what the callback channel POSTs)::

    {"recipient_id": "...", "text": "...", "image": "url", "buttons": [{"title", "payload"}],
     "attachment": ..., "elements": [...], "custom": {...}}

``custom`` of the shape ``{"midtier": {"handoff": {...}}}`` (sent by
:class:`adapters.botside.rasa.ActionHandoff`) becomes a ``handoff.initiate`` event; other
``custom`` payloads travel as an attachment for the channels that understand them.
"""

from __future__ import annotations

import mimetypes
from typing import Any

from connector.activity import (
    Activity,
    ActivityTypes,
    Attachment,
    HandoffEventNames,
    new_activity_id,
    now,
)
from connector.interfaces import IntentResult

CUSTOM_TYPE = "application/vnd.rasa.custom+json"
ELEMENTS_TYPE = "application/vnd.rasa.elements+json"
ATTACHMENT_TYPE = "application/vnd.rasa.attachment+json"
# Intents with which Rasa's NLU says "I don't know" (FallbackClassifier, a trained oos intent).
OUT_OF_SCOPE_INTENTS = frozenset({"nlu_fallback", "out_of_scope"})
_HANDOFF_KEYS = ("provider", "intent", "reason")


def handoff_request(message: dict[str, Any]) -> dict[str, Any] | None:
    """The ``{"provider"?, "intent"?, "reason"?, "paused"?}`` of a midtier handoff message."""
    custom = message.get("custom")
    if not isinstance(custom, dict):
        return None
    midtier = custom.get("midtier")
    request = midtier.get("handoff") if isinstance(midtier, dict) else None
    return request if isinstance(request, dict) else None


def handoff_event(request: dict[str, Any]) -> Activity:
    """The ``handoff.initiate`` event the core acts on (only string values are passed)."""
    value = {k: request[k] for k in _HANDOFF_KEYS if isinstance(request.get(k), str)}
    return Activity(
        type=ActivityTypes.EVENT,
        name=HandoffEventNames.INITIATE,
        id=new_activity_id(),
        timestamp=now(),
        value=value,
    )


def _button_text(text: str, buttons: list[dict[str, Any]]) -> str:
    # As Rasa's own OutputChannel.send_text_with_buttons degrades buttons for text channels.
    lines = [text] if text else []
    lines += [f"{i}: {b.get('title', '')}" for i, b in enumerate(buttons, 1)]
    return "\n".join(lines)


def to_activity(message: dict[str, Any], *, text_fallback: bool = True) -> Activity | None:
    """One Rasa bot message as a midtier message Activity (None when there is nothing in it).

    ``text_fallback`` also writes buttons and images into the text, for channels that show
    only text (the web chat); ``suggestedActions`` and ``attachments`` carry them regardless.
    """
    text = message.get("text") if isinstance(message.get("text"), str) else None
    out = Activity(type=ActivityTypes.MESSAGE, id=new_activity_id(), timestamp=now())
    attachments: list[Attachment] = []
    buttons = [b for b in message.get("buttons") or [] if isinstance(b, dict)]
    if buttons:
        out.suggested_actions = {
            "actions": [
                {
                    "type": "imBack",
                    "title": str(b.get("title", "")),
                    "value": str(b.get("payload", b.get("title", ""))),
                }
                for b in buttons
            ]
        }
        out.input_hint = "expectingInput"
        if text_fallback:
            text = _button_text(text or "", buttons)
    image = message.get("image")
    if isinstance(image, str) and image:
        guessed = mimetypes.guess_type(image)[0]
        content_type = guessed if guessed and guessed.startswith("image/") else "image/png"
        attachments.append(Attachment(content_type=content_type, content_url=image))
        if text_fallback and not text:
            text = f"Image: {image}"
    for key, content_type in (("attachment", ATTACHMENT_TYPE), ("elements", ELEMENTS_TYPE)):
        if message.get(key):
            attachments.append(Attachment(content_type=content_type, content=message[key]))
    custom = message.get("custom")
    if custom is not None:
        attachments.append(Attachment(content_type=CUSTOM_TYPE, content=custom))
        if isinstance(custom, dict) and isinstance(custom.get("text"), str) and not text:
            text = custom["text"]
    if not text and not attachments:
        return None
    out.text = text
    out.attachments = attachments or None
    return out


_STRINGS = ("recipient_id", "text", "image")


def check_message(message: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the field when a bot message has a field of the wrong type.

    Rasa's own output channels assume these shapes; a bot message that breaks them (a
    ``"buttons": 1``) is refused whole instead of being half shown.
    """
    for key in _STRINGS:
        if message.get(key) is not None and not isinstance(message[key], str):
            raise ValueError(f"'{key}' must be a string")
    buttons = message.get("buttons")
    if buttons is not None and (
        not isinstance(buttons, list) or not all(isinstance(b, dict) for b in buttons)
    ):
        raise ValueError("'buttons' must be a list of objects")
    for button in buttons or []:
        for key in ("title", "payload"):
            value = button.get(key)
            if value is not None and not isinstance(value, str | int | float):
                raise ValueError(f"a button's '{key}' must be a string")


def to_activities(
    messages: object, *, text_fallback: bool = True
) -> tuple[list[Activity], dict[str, Any] | None]:
    """A list of Rasa bot messages as Activities, and the handoff request among them if any.

    Raises ``ValueError`` when ``messages`` is not a list of JSON objects, or when one of
    them has a field of the wrong type (:func:`check_message`).
    """
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise ValueError("expected a JSON array of bot messages")
    for message in messages:
        check_message(message)
    out: list[Activity] = []
    handoff: dict[str, Any] | None = None
    for message in messages:
        request = handoff_request(message)
        if request is not None:
            handoff = request
            out.append(handoff_event(request))
            continue
        activity = to_activity(message, text_fallback=text_fallback)
        if activity is not None:
            out.append(activity)
    return out, handoff


def intent_result(parsed: object) -> IntentResult:
    """A ``/model/parse`` answer as an IntentResult; ``ValueError`` when it is not one."""
    if not isinstance(parsed, dict):
        raise ValueError("expected a JSON object")
    intent = parsed.get("intent") or {}
    if not isinstance(intent, dict):
        raise ValueError("'intent' is not an object")
    name = intent.get("name") if isinstance(intent.get("name"), str) else None
    confidence = float(intent.get("confidence") or 0.0)
    ranking = [
        (str(r["name"]), float(r.get("confidence") or 0.0))
        for r in parsed.get("intent_ranking") or []
        if isinstance(r, dict) and isinstance(r.get("name"), str)
    ]
    out_of_scope = name is None or name in OUT_OF_SCOPE_INTENTS
    return IntentResult(
        name=None if out_of_scope else name,
        confidence=confidence,
        ranking=ranking,
        out_of_scope=out_of_scope,
    )


__all__ = [
    "ATTACHMENT_TYPE",
    "CUSTOM_TYPE",
    "ELEMENTS_TYPE",
    "OUT_OF_SCOPE_INTENTS",
    "check_message",
    "handoff_event",
    "handoff_request",
    "intent_result",
    "to_activities",
    "to_activity",
]
