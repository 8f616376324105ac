"""The parts of a Telegram ``Update`` midtier reads, as strict pydantic models, and what
they become in an activity (attachments, entities).

Telegram's webhook carries no signature over the body (only a static secret header), so a
verified body is still untrusted: every field midtier reads is type-checked here (an id
that is a string, a ``date`` past year 9999, a ``photo`` that is not a list...) and the
problem becomes a ``MalformedPayload`` naming the field, never echoing its value. Fields
midtier does not read are ignored, so new Bot API fields never break parsing.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic import ValidationError as _ValidationError

from connector.activity import Attachment
from connector.errors import MalformedPayload

M = TypeVar("M", bound=BaseModel)

_MIME = re.compile(r"^[\w.+-]{1,64}/[\w.+-]{1,64}$")
_LAST_SECOND = 253402300799  # 9999-12-31T23:59:59Z, the last one datetime can hold


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, populate_by_name=True)


class User(_Part):
    """``User``: the sender of a message or the presser of a button."""

    id: StrictInt
    is_bot: StrictBool = False
    first_name: StrictStr = ""
    last_name: StrictStr | None = None

    @property
    def full_name(self) -> str | None:
        name = " ".join(p for p in (self.first_name, self.last_name) if p).strip()
        return name or None


class Chat(_Part):
    """``Chat``: a private chat's id is the user's; groups have negative ids."""

    id: StrictInt
    type: StrictStr = "private"


class File(_Part):
    """Any of ``PhotoSize``, ``Document``, ``Voice``, ``Video``, ``Audio``, ``Sticker``."""

    file_id: StrictStr = Field(min_length=1, max_length=512)
    file_unique_id: StrictStr | None = None
    file_name: StrictStr | None = None
    mime_type: StrictStr | None = None
    width: StrictInt = 0
    height: StrictInt = 0


class Location(_Part):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class Contact(_Part):
    phone_number: StrictStr
    first_name: StrictStr = ""
    last_name: StrictStr | None = None
    user_id: StrictInt | None = None


class Message(_Part):
    """``Message``: what a user sent into a chat."""

    message_id: StrictInt
    date: StrictInt = Field(ge=0, le=_LAST_SECOND)
    chat: Chat
    from_: User | None = Field(default=None, alias="from")
    text: StrictStr | None = None
    caption: StrictStr | None = None
    photo: list[File] | None = None
    document: File | None = None
    audio: File | None = None
    voice: File | None = None
    video: File | None = None
    sticker: File | None = None
    location: Location | None = None
    contact: Contact | None = None


class ButtonMessage(_Part):
    """The message a pressed button belongs to (possibly an inaccessible one: date 0)."""

    message_id: StrictInt
    chat: Chat


class CallbackQuery(_Part):
    """``CallbackQuery``: the user pressed an inline keyboard button."""

    id: StrictStr = Field(min_length=1, max_length=256)
    from_: User = Field(alias="from")
    message: ButtonMessage | None = None
    data: StrictStr | None = None


def read(model: type[M], data: Any, where: str) -> M:
    """``data`` as ``model``; ``MalformedPayload`` naming the first bad field otherwise."""
    try:
        return model.model_validate(data)
    except _ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        at = f"{where}.{field}" if field else where
        # The type of error, not its message: pydantic messages may quote the input.
        raise MalformedPayload(f"not a Telegram update: {at}: {first['type']}") from None


def update_id(update: dict[str, Any]) -> int:
    """The update's id: the dedupe key (sequential per bot)."""
    value = update.get("update_id")
    if type(value) is not int or value < 0:
        raise MalformedPayload("not a Telegram update: update_id must be a non-negative integer")
    return value


def attachments(message: Message) -> list[Attachment]:
    """The media of a message as Bot Framework attachments."""
    found: list[Attachment] = []
    if message.photo:
        # Telegram sends every size it made; the largest is the one worth keeping.
        # (reversed: of equal sizes the last, as Telegram lists them smallest first)
        largest = max(reversed(message.photo), key=lambda size: size.width * size.height)
        found.append(_attachment("image/jpeg", largest))
    # Each with the content type to use when Telegram gives none.
    media = (
        (message.document, "application/octet-stream"),
        (message.audio, "audio/mpeg"),
        (message.voice, "audio/ogg"),
        (message.video, "video/mp4"),
        (message.sticker, "image/webp"),
    )
    for file, default in media:
        if file is not None:
            given = file.mime_type
            found.append(_attachment(given if given and _MIME.match(given) else default, file))
    return found


def _attachment(content_type: str, file: File) -> Attachment:
    """A Bot Framework attachment without ``contentUrl``: Telegram's download URL holds the
    bot token, so the attachment carries the ``file_id`` to fetch it by (``getFile``)."""
    content = {"file_id": file.file_id}
    if file.file_unique_id:
        content["file_unique_id"] = file.file_unique_id
    name = file.file_name[:255] if file.file_name else None
    return Attachment(content_type=content_type, content=content, name=name)


def entities(message: Message) -> list[dict[str, Any]]:
    """A location as a ``GeoCoordinates`` entity, a shared contact as a ``Person`` one."""
    found: list[dict[str, Any]] = []
    if message.location is not None:
        where = message.location
        found.append(
            {"type": "GeoCoordinates", "latitude": where.latitude, "longitude": where.longitude}
        )
    if message.contact is not None:
        found.append(_person(message.contact))
    return found


def _person(contact: Contact) -> dict[str, Any]:
    # schema.org's Person, as GeoCoordinates is schema.org's too.
    person: dict[str, Any] = {"type": "Person", "telephone": contact.phone_number}
    if contact.first_name:
        person["givenName"] = contact.first_name
    if contact.last_name:
        person["familyName"] = contact.last_name
    if contact.user_id is not None:
        person["identifier"] = str(contact.user_id)
    return person
