"""What a service's callback to a ``kind: webhook`` provider asks for, read from its body.

``POST /webhooks/providers/<name>`` carries ``conversation`` and ``activities`` for the user,
an ``action`` (``hand_back``, or ``transfer`` to a ``target``), or both (see
:mod:`adapters.providers.webhook`). A body that is not of that form is a ``MalformedPayload``
(400) saying why; the signature is checked before, the conversation after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from connector.activity import Activity
from connector.errors import MalformedPayload

MAX_CALLBACK_ACTIVITIES = 100


@dataclass(slots=True)
class Job:
    """One accepted callback: activities for the user, then maybe an action."""

    activities: list[Activity]
    action: str | None = None  # "hand_back" | "transfer"
    target: str = ""
    reason: str = ""


def parse_callback(data: Any) -> tuple[str, Job]:
    """The conversation a callback body names and what it asks for, or MalformedPayload."""
    if not isinstance(data, dict):
        raise MalformedPayload("body must be a JSON object")
    conversation = data.get("conversation")
    if not isinstance(conversation, str) or not conversation:
        raise MalformedPayload("conversation must be a non-empty string")
    items, action = data.get("activities"), data.get("action")
    if items is None and action is None:
        raise MalformedPayload("expected activities or an action")
    items = [] if items is None else items
    if not isinstance(items, list) or not all(isinstance(a, dict) for a in items):
        raise MalformedPayload("activities must be a list of objects")
    if len(items) > MAX_CALLBACK_ACTIVITIES:
        raise MalformedPayload(f"more than {MAX_CALLBACK_ACTIVITIES} activities")
    try:
        activities = [Activity.from_wire(item) for item in items]
    except ValidationError as exc:
        raise MalformedPayload(f"invalid activity: {exc.errors()[0]['msg']}") from exc
    job = Job(activities)
    return conversation, _action(job, data) if action is not None else job


def _action(job: Job, data: dict[str, Any]) -> Job:
    action, reason, target = data.get("action"), data.get("reason", ""), data.get("target")
    if action not in ("hand_back", "transfer"):
        raise MalformedPayload("action must be 'hand_back' or 'transfer'")
    if not isinstance(reason, str):
        raise MalformedPayload("reason must be a string")
    if action == "transfer" and (not isinstance(target, str) or not target):
        raise MalformedPayload("transfer needs a target provider name")
    job.action, job.target = action, target if isinstance(target, str) else ""
    job.reason = reason or f"{action.replace('_', ' ')} by the service"
    return job


__all__ = ["MAX_CALLBACK_ACTIVITIES", "Job", "parse_callback"]
