"""Example in-process bots of the default deployment, for the payments company Acme Pay.

``providers.yaml`` names them as ``bots.faq:FaqBot`` and ``bots.disputes:DisputesBot`` (the
core puts the config directory on ``sys.path``). :class:`AcmeBot` holds what both share: their
conversation state, the ``midtier.handoff`` greeting (redeeming the authorization code it
carries) and quiet handling of ``handoff.status`` events. Their state lives in midtier's
store (``LegStorage``), so a dispute half filed survives a restart.
"""

from __future__ import annotations

from typing import Any

from botbuilder.core import ActivityHandler, ConversationState, TurnContext

from adapters.providers.botbuilder_state import LegStorage
from connector.errors import AuthCodeError

HANDOFF_EVENT = "midtier.handoff"
STATUS_EVENT = "handoff.status"
REDEEM_KEY = "midtier.redeem"


def intent_of(turn_context: TurnContext) -> str | None:
    """The intent midtier read in this message (``channelData.midtier.intent``), if any."""
    channel_data = turn_context.activity.channel_data
    if not isinstance(channel_data, dict):
        return None
    midtier = channel_data.get("midtier")
    intent = midtier.get("intent") if isinstance(midtier, dict) else None
    return intent if isinstance(intent, str) else None


class AcmeBot(ActivityHandler):  # type: ignore[misc]
    """Base of the Acme Pay bots: per-conversation state and midtier's events."""

    #: How the bot introduces itself, e.g. "the disputes assistant".
    title = "the Acme Pay assistant"
    #: What a handed-over intent means, for the greeting ("I see you asked about ...").
    topics: dict[str, str] = {}

    def __init__(self) -> None:
        # Kept with midtier's leg: a flow survives restarts and commits with each reply.
        self.conversation_state = ConversationState(LegStorage())
        self._state = self.conversation_state.create_property("acme")

    async def state(self, turn_context: TurnContext) -> dict[str, Any]:
        """This conversation's state (a dict, saved at the end of the turn)."""
        return await self._state.get(turn_context, dict)  # type: ignore[no-any-return]

    async def on_turn(self, turn_context: TurnContext) -> None:
        await super().on_turn(turn_context)
        await self.conversation_state.save_changes(turn_context)

    async def on_event_activity(self, turn_context: TurnContext) -> None:
        name = turn_context.activity.name
        value = turn_context.activity.value
        if name == HANDOFF_EVENT:
            await self.on_midtier_handoff(turn_context, value if isinstance(value, dict) else {})
        elif name == STATUS_EVENT:
            # midtier tells the user itself; the bot only notes where the handoff stands.
            state = await self.state(turn_context)
            state["handoff_state"] = value.get("state") if isinstance(value, dict) else None
        else:
            await super().on_event_activity(turn_context)

    async def on_midtier_handoff(self, turn_context: TurnContext, context: dict[str, Any]) -> None:
        """Greet, showing what was handed over; redeem the auth code for the user's claims,
        kept in the state of this leg (an anonymous user's leg keeps no state at all)."""
        code = context.get("auth_code")
        redeem = turn_context.turn_state.get(REDEEM_KEY)
        claims: dict[str, Any] = {}
        if code and redeem is not None:
            try:
                grant = await redeem(code)
            except AuthCodeError:
                grant = {}  # expired or used: carry on without the user's details
            claims = dict(grant.get("claims") or {})
        if claims:
            (await self.state(turn_context))["claims"] = claims
        # The first bot of a conversation, and a bot getting one back, stay quiet here:
        # the user's own message (or midtier's notice) comes next and speaks for itself.
        if context.get("from_provider") and context.get("intent"):
            await turn_context.send_activity(self.greeting(context, claims))

    def greeting(self, context: dict[str, Any], claims: dict[str, Any]) -> str:
        """One line: who the bot is and what it understood the user wants."""
        name = claims.get("name") or claims.get("given_name")
        text = f"Hi {name}, I'm {self.title}." if name else f"Hi, I'm {self.title}."
        topic = self.topics.get(str(context.get("intent")))
        return f"{text} I see you asked about {topic}." if topic else text

    async def on_end_of_conversation_activity(self, turn_context: TurnContext) -> None:
        # The leg is closed: forget it (delete() expects the state loaded in this turn).
        await self.conversation_state.load(turn_context)
        await self.conversation_state.delete(turn_context)


__all__ = ["AcmeBot", "intent_of"]
