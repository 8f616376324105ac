"""Twilio's message parameters and midtier's activities, both ways (``adapters.channels.twilio``).

Every parameter is untrusted even once the signature checked out: Twilio adds parameters
without notice, a JSON body may hold values of any type, and counts such as ``NumMedia``
may disagree with what is there. What does not fit is a ``MalformedPayload`` (400).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connector.activity import (
    Activity,
    ActivityTypes,
    Attachment,
    ChannelAccount,
    ConversationAccount,
    now,
)
from connector.claims import phone_identity
from connector.errors import DeliveryRejected, MalformedPayload

MAX_MEDIA = 10  # MediaUrl parameters per message (MMS); WhatsApp takes one
_SID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_MIME = re.compile(r"^[A-Za-z0-9!#$&^_.+\-]+/[A-Za-z0-9!#$&^_.+\-]+$")
_DEGREES = re.compile(r"^-?\d{1,3}(\.\d{1,15})?$")


def is_status_callback(params: Mapping[str, Any]) -> bool:
    """A delivery status report (``MessageStatus``/``SmsStatus``, no ``Body``), not a message."""
    return "Body" not in params and ("MessageStatus" in params or "SmsStatus" in params)


def message_type(params: Mapping[str, Any]) -> str:
    """What kind of message Twilio says this is (WhatsApp's ``MessageType``), for logs."""
    value = params.get("MessageType")
    return value[:32] if isinstance(value, str) and value.isprintable() and value else "empty"


def message_of(
    params: Mapping[str, Any], channel: str, *, sms_identity: bool = False
) -> Activity | None:
    """The user's message, or None when it holds nothing midtier can pass on (a sticker or a
    contact card on WhatsApp arrives without text or media).

    The sender's number is given as a proven identity (``connector.claims``) when WhatsApp
    proved it, and for SMS only with ``sms_identity`` (an SMS sender can be spoofed on some
    routes)."""
    ours, user = _address(params, "To"), _address(params, "From")
    sid = text(params, "MessageSid")
    if not _SID.match(sid):
        raise MalformedPayload("MessageSid is missing or not a message id")
    payload = text(params, "ButtonPayload")
    body = text(params, "Body")
    attachments = _media(params)
    entities = _location(params)
    if not (payload or body or attachments or entities):
        return None
    profile = text(params, "ProfileName")[:128]
    proven = user.startswith("whatsapp:") or (sms_identity and user.startswith("+"))
    identity = phone_identity(user) if proven else None
    return Activity(
        type=ActivityTypes.MESSAGE,
        id=sid,
        timestamp=now(),  # Twilio's webhook carries no time
        channel_id=channel,
        from_=ChannelAccount(id=user, name=profile or None, role="user"),
        recipient=ChannelAccount(id=ours, role="bot"),
        conversation=ConversationAccount(id=f"{ours}:{user}"),
        # A quick reply's payload is what the bot offered: the bot gets that back.
        text=payload or body or None,
        attachments=attachments or None,
        entities=entities or None,
        channel_data={"identities": [identity]} if identity else None,
        value=(
            {"ButtonPayload": payload, "ButtonText": text(params, "ButtonText")}
            if payload
            else None
        ),
    )


def text(params: Mapping[str, Any], key: str) -> str:
    """A parameter as text ("" when absent); a JSON body may hold anything."""
    value = params.get(key, "")
    if not isinstance(value, str):
        raise MalformedPayload(f"{key} must be a string")
    return value


def _address(params: Mapping[str, Any], key: str) -> str:
    value = text(params, key)
    if not value or len(value) > 128 or not value.isprintable():
        raise MalformedPayload(f"{key} is missing or not an address")
    return value


def _media(params: Mapping[str, Any]) -> list[Attachment]:
    count = text(params, "NumMedia") or "0"
    if not (count.isascii() and count.isdigit()) or int(count) > MAX_MEDIA:
        raise MalformedPayload(f"NumMedia must be a number from 0 to {MAX_MEDIA}")
    out = []
    for n in range(int(count)):
        url = text(params, f"MediaUrl{n}")
        if not url.startswith(("https://", "http://")):
            raise MalformedPayload(f"MediaUrl{n} is missing or not a URL")
        kind = text(params, f"MediaContentType{n}")
        out.append(
            Attachment(
                content_type=kind if _MIME.match(kind) else "application/octet-stream",
                content_url=url,
            )
        )
    return out


def _location(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A shared location (WhatsApp) as a GeoCoordinates entity."""
    lat, lon = text(params, "Latitude"), text(params, "Longitude")
    if not lat and not lon:
        return []
    if not (_DEGREES.match(lat) and _DEGREES.match(lon)):
        raise MalformedPayload("Latitude and Longitude must be decimal degrees")
    latitude, longitude = float(lat), float(lon)
    if abs(latitude) > 90 or abs(longitude) > 180:
        raise MalformedPayload("Latitude or Longitude is out of range")
    entity: dict[str, Any] = {"type": "GeoCoordinates", "latitude": latitude}
    entity["longitude"] = longitude
    for field, key in (("name", "Label"), ("address", "Address")):
        if value := text(params, key)[:256]:
            entity[field] = value
    return [entity]


def reply_addresses(activity: Activity) -> tuple[str, str]:
    """(our number, the user's address) from the conversation ``"<To>:<From>"``.

    The user is the reply's recipient; without one the id is cut at its middle colon (both
    halves are addresses of one kind, ``+1...`` or ``whatsapp:+1...``).
    """
    conversation = activity.conversation.id if activity.conversation else ""
    user = activity.recipient.id if activity.recipient else ""
    if user and conversation.endswith(":" + user) and len(conversation) > len(user) + 1:
        return conversation[: -len(user) - 1], user
    colons = [i for i, c in enumerate(conversation) if c == ":"]
    if len(colons) % 2 == 1:
        middle = colons[len(colons) // 2]
        ours, user = conversation[:middle], conversation[middle + 1 :]
        if ours and user:
            return ours, user
    raise DeliveryRejected("twilio: the conversation id is not <To>:<From>")
