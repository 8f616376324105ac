"""A rasa-sdk action with which a Rasa bot hands its conversation over through midtier.

Runs inside the Rasa **action server** and needs only rasa-sdk and the standard library
(``pip install midtier[rasa]``, or copy this file next to the actions). Add it to the bot's
actions module::

    # actions/actions.py
    from adapters.botside.rasa import ActionHandoff  # noqa: F401  (registered by rasa-sdk)

and to the domain: ``actions: [action_handoff]``, optionally the slots ``handoff_provider``,
``handoff_intent`` and ``handoff_reason`` (text slots). A rule or story then runs it, e.g.
``- intent: talk_to_human`` -> ``- action: action_handoff``.

What it does: it sends one custom bot message, which reaches midtier through the REST or
callback channel like any other bot message::

    {"custom": {"midtier": {"handoff": {"provider": "agents", "intent": null,
                                        "reason": "...", "paused": true}}}}

midtier's Rasa provider turns it into a ``handoff.initiate`` request: ``provider`` names the
target, ``intent`` lets midtier's router choose one, and with neither midtier's fallback takes
it. The action returns ``ConversationPaused()`` so this bot stops predicting while somebody
else has the conversation; midtier resumes the tracker (``{"event": "resume"}`` appended at
``/conversations/{sender}/tracker/events``) when the conversation comes back to this bot, or
when nobody could take it. The three slots are cleared so that a later handoff does not reuse
them. To pick other defaults, subclass and give ``name()`` a new value, or set the class
attributes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rasa_sdk.events import ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.interfaces import Action, Tracker

if TYPE_CHECKING:
    from rasa_sdk.types import DomainDict

PROVIDER_SLOT = "handoff_provider"
INTENT_SLOT = "handoff_intent"
REASON_SLOT = "handoff_reason"


class ActionHandoff(Action):
    """``action_handoff``: ask midtier to switch this conversation to another provider.

    Target and reason come from the slots ``handoff_provider`` / ``handoff_intent`` /
    ``handoff_reason`` when set, else from the constructor arguments or class attributes.
    """

    provider: str | None = None
    intent: str | None = None
    reason: str = "the bot asked for a handoff"
    pause: bool = True

    def __init__(
        self,
        provider: str | None = None,
        intent: str | None = None,
        reason: str | None = None,
        pause: bool | None = None,
    ) -> None:
        if provider is not None:
            self.provider = provider
        if intent is not None:
            self.intent = intent
        if reason is not None:
            self.reason = reason
        if pause is not None:
            self.pause = pause

    def name(self) -> str:
        """The action's name in the domain."""
        return "action_handoff"

    def request(self, tracker: Tracker) -> dict[str, Any]:
        """The handoff request: slots first, then this action's defaults."""
        provider = _text(tracker.get_slot(PROVIDER_SLOT)) or self.provider
        intent = _text(tracker.get_slot(INTENT_SLOT)) or self.intent
        reason = _text(tracker.get_slot(REASON_SLOT)) or self.reason
        request: dict[str, Any] = {"reason": reason, "paused": self.pause}
        if provider:
            request["provider"] = provider
        if intent:
            request["intent"] = intent
        return request

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        """Send the request to midtier, clear the handoff slots, pause the conversation."""
        dispatcher.utter_message(json_message={"midtier": {"handoff": self.request(tracker)}})
        events: list[dict[str, Any]] = [
            SlotSet(slot, None)
            for slot in (PROVIDER_SLOT, INTENT_SLOT, REASON_SLOT)
            if tracker.get_slot(slot) is not None
        ]
        if self.pause:
            events.append(ConversationPaused())
        return events


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


__all__ = ["INTENT_SLOT", "PROVIDER_SLOT", "REASON_SLOT", "ActionHandoff"]
