"""The message model: a Bot Framework Activity, camelCase on the wire.

midtier passes Activities between channels and providers. Only the fields midtier reads are
typed; everything else a platform or bot sends is kept as-is (``extra="allow"``) and written
back unchanged, so nothing is lost on the way through.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class ActivityTypes:
    """The activity types midtier acts on (the Bot Framework has more; they pass through)."""

    MESSAGE = "message"
    EVENT = "event"
    TYPING = "typing"
    CONVERSATION_UPDATE = "conversationUpdate"
    END_OF_CONVERSATION = "endOfConversation"
    HANDOFF = "handoff"


class HandoffEventNames:
    """Names of the Bot Framework handoff events (PROTOCOLS.md section 7)."""

    INITIATE = "handoff.initiate"
    STATUS = "handoff.status"
    # Sent by midtier to the target provider when a conversation is switched to it.
    CONTEXT = "midtier.handoff"


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", ser_json_timedelta="float"
    )


class ChannelAccount(_Model):
    """Someone in a conversation: a user, a bot or an agent."""

    id: str
    name: str | None = None
    role: str | None = None


class ConversationAccount(_Model):
    """The conversation an activity belongs to."""

    id: str
    name: str | None = None
    is_group: bool | None = None


class Attachment(_Model):
    """A card, file or transcript attached to an activity."""

    content_type: str
    content_url: str | None = None
    content: Any = None
    name: str | None = None


class Activity(_Model):
    """A Bot Framework Activity. ``from`` is spelt ``from_`` in Python."""

    type: str = ActivityTypes.MESSAGE
    id: str | None = None
    timestamp: datetime | None = None
    channel_id: str | None = None
    from_: ChannelAccount | None = Field(default=None, alias="from")
    recipient: ChannelAccount | None = None
    conversation: ConversationAccount | None = None
    text: str | None = None
    locale: str | None = None
    attachments: list[Attachment] | None = None
    service_url: str | None = None
    reply_to_id: str | None = None
    channel_data: dict[str, Any] | None = None
    value: Any = None
    name: str | None = None
    # Typed so that values set from Python go on the wire in camelCase like the rest.
    text_format: str | None = None
    input_hint: str | None = None
    speak: str | None = None
    summary: str | None = None
    code: str | None = None
    local_timestamp: datetime | None = None
    local_timezone: str | None = None
    entities: list[dict[str, Any]] | None = None
    suggested_actions: dict[str, Any] | None = None
    relates_to: dict[str, Any] | None = None

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict, camelCase, without unset ``None`` fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Activity:
        """Validate a wire dict (raises ``pydantic.ValidationError`` on bad shapes)."""
        return cls.model_validate(data)

    @property
    def is_message(self) -> bool:
        return self.type == ActivityTypes.MESSAGE

    def is_event(self, name: str) -> bool:
        return self.type == ActivityTypes.EVENT and self.name == name


def now() -> datetime:
    """The current time, UTC, timezone-aware."""
    return datetime.now(UTC)


def new_activity_id() -> str:
    """128 random bits in hex (as ``uuid4().hex`` has, a quarter of its cost)."""
    return os.urandom(16).hex()


def message(text: str, *, sender: ChannelAccount | None = None, **fields: Any) -> Activity:
    """A message activity stamped with a fresh id and the current time."""
    return Activity(
        type=ActivityTypes.MESSAGE,
        id=new_activity_id(),
        timestamp=now(),
        text=text,
        from_=sender,
        **fields,
    )


def status_event(state: str, message: str | None = None) -> Activity:
    """A Bot Framework ``handoff.status`` event (PROTOCOLS.md section 7)."""
    value: dict[str, str] = {"state": state}
    if message:
        value["message"] = message
    return Activity(
        type=ActivityTypes.EVENT,
        name=HandoffEventNames.STATUS,
        id=new_activity_id(),
        timestamp=now(),
        value=value,
    )
