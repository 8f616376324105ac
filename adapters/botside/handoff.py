"""Bot Framework handoff events for botbuilder-python bots (PROTOCOLS.md section 7).

Runs in the bot's process and needs only botbuilder-schema. botbuilder-python has no
``EventFactory``; these follow the C# and JS SDKs' ``CreateHandoffInitiation`` /
``CreateHandoffStatus`` field for field.

midtier's convention for ``handoff_context`` (the ``value`` of ``handoff.initiate``)::

    {"provider": "agents", "reason": "user asked for a person"}   # a named provider, or
    {"intent": "dispute_charge", "reason": "not my topic"}         # route as if this intent

``provider`` (the target's name in ``providers.yaml``) wins over ``intent``; ``reason`` is
recorded on the switch. Other keys are passed on to the target as they are.

Example, in an ``ActivityHandler``::

    handoff = {"provider": "agents", "reason": "user asked for a person"}
    await turn_context.send_activity(create_handoff_initiation(turn_context, handoff))
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botbuilder.schema import (
    Activity,
    ActivityTypes,
    Attachment,
    ConversationAccount,
    ConversationReference,
    Transcript,
)

if TYPE_CHECKING:  # only read for its ``activity``; a bot that passes one has botbuilder-core
    from botbuilder.core import TurnContext


class HandoffEventNames:
    """The names of the Bot Framework handoff events.

    The same strings as ``connector.activity.HandoffEventNames`` on midtier's side, spelt out
    here because this module runs without midtier's server.
    """

    INITIATE = "handoff.initiate"
    STATUS = "handoff.status"


class HandoffStates:
    """The ``state`` of a ``handoff.status`` event."""

    ACCEPTED = "accepted"  # an agent (or the target) took the conversation
    FAILED = "failed"  # the handoff did not happen; ``message`` may say why
    COMPLETED = "completed"  # the agent is done


def _local_timezone() -> str | None:
    """The host's IANA time zone name, as the JS SDK's ``tz.guess()`` gives it."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        return name
    try:
        target = str(Path("/etc/localtime").resolve())
    except OSError:
        target = ""
    if "zoneinfo/" in target:
        return target.split("zoneinfo/", 1)[1]
    return datetime.now().astimezone().tzname()


def _event(name: str, value: object, conversation: ConversationAccount | None) -> Activity:
    return Activity(
        type=ActivityTypes.event,
        name=name,
        value=value,
        id=str(uuid.uuid4()),
        timestamp=datetime.now(UTC),
        local_timezone=_local_timezone(),
        conversation=conversation,
        attachments=[],
        entities=[],
    )


def _serialized(activity: Any) -> Any:
    if isinstance(activity, Activity):
        return activity.serialize()
    to_wire = getattr(activity, "to_wire", None)  # midtier's own Activity
    return to_wire() if callable(to_wire) else activity


def create_handoff_initiation(
    turn_context: TurnContext,
    handoff_context: object,
    transcript: Sequence[Any] | Transcript | None = None,
) -> Activity:
    """A ``handoff.initiate`` event asking for the conversation to move elsewhere.

    ``handoff_context`` becomes ``value`` as it is (see the module docstring for midtier's
    keys). ``transcript`` (botbuilder Activities, a ``Transcript``, or midtier Activities) is
    attached as ``{"contentType": "application/json", "name": "Transcript",
    "content": {"activities": [...]}}``.
    """
    incoming = turn_context.activity
    event = _event(HandoffEventNames.INITIATE, handoff_context, incoming.conversation)
    event.from_property = incoming.from_property  # the user, not the bot
    event.relates_to = ConversationReference(
        activity_id=incoming.id,
        user=incoming.from_property,
        bot=incoming.recipient,
        conversation=incoming.conversation,
        channel_id=incoming.channel_id,
        locale=incoming.locale,
        service_url=incoming.service_url,
    )
    event.reply_to_id = incoming.id
    event.service_url = incoming.service_url
    event.channel_id = incoming.channel_id
    if transcript is not None:
        activities = transcript.activities if isinstance(transcript, Transcript) else transcript
        event.attachments.append(
            Attachment(
                content_type="application/json",
                name="Transcript",
                content={"activities": [_serialized(a) for a in activities or []]},
            )
        )
    return event


def create_handoff_status(
    conversation: ConversationAccount, state: str, message: str | None = None
) -> Activity:
    """A ``handoff.status`` event: ``value = {"state": state, "message": message}``.

    ``message`` is left out when not given, as the JS SDK's JSON does.
    """
    if not state:
        raise ValueError("state is required (see HandoffStates)")
    value: dict[str, Any] = {"state": state}
    if message is not None:
        value["message"] = message
    return _event(HandoffEventNames.STATUS, value, conversation)


__all__ = [
    "HandoffEventNames",
    "HandoffStates",
    "create_handoff_initiation",
    "create_handoff_status",
]
