"""midtier's own botbuilder ``BotAdapter``: the turn a bot runs and what it sends (``botbuilder``).

:class:`MidTierBotAdapter` needs no ``ConnectorClient``, no credentials and no msrest
(de)serialization per turn (botbuilder's ``CloudAdapter`` spends most of a turn building
those): what a bot sends is collected and handed back to midtier as its own activities
(:func:`~adapters.providers.botbuilder_schema.reply_data`). What a bot sends from
``adapter.continue_conversation`` runs as a provider turn of the core (``ProviderHost.
proactive``). Each turn's ``turn_state["midtier.redeem"]`` is an async ``code -> grant``
callable with which a bot redeems the ``auth_code`` of the ``midtier.handoff`` event
(``ProviderHost.redeem``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from copy import copy
from typing import Any

from botbuilder.core import BotAdapter, TurnContext
from botbuilder.core.conversation_reference_extension import get_continuation_activity
from botbuilder.schema import Activity as BfActivity
from botbuilder.schema import (
    ActivityTypes,
    DeliveryModes,
    InputHints,
    ResourceResponse,
)
from botbuilder.schema import ChannelAccount as BfAccount
from botbuilder.schema import ConversationAccount as BfConversation
from botframework.connector import Channels
from pydantic import ValidationError

from adapters.providers.botbuilder_schema import reply_data, resource_response, text_message
from adapters.providers.botbuilder_state import serving
from connector.activity import (
    Activity,
    ChannelAccount,
    new_activity_id,
    now,
)
from connector.errors import ProviderError
from connector.interfaces import ProviderHost
from connector.sessions import Leg

REDEEM_KEY = "midtier.redeem"
_SENT_KEY = "midtier.botbuilder_inproc.sent"  # this turn's outgoing activities
_NOT_FORWARDED = frozenset({"invokeResponse", "delay"})


def _shallow(obj: Any) -> Any:
    """``copy.copy`` of a msrest model, by its instance dict (a quarter of the cost)."""
    if type(obj) not in _PLAIN:
        return copy(obj)
    out = object.__new__(type(obj))
    out.__dict__.update(obj.__dict__)
    return out


_PLAIN = frozenset({BfActivity, BfAccount, BfConversation})  # no __slots__, __copy__, state


class MidTierTurnContext(TurnContext):  # type: ignore[misc]
    """botbuilder's ``TurnContext``, sending shallow copies.

    ``TurnContext.send_activities`` (botbuilder 4.17) deep-copies every activity before it
    addresses it from the turn's conversation reference, so that the bot's own object is
    left as it was, and ``copy.copy``-ies the reference's accounts. Shallow copies by
    instance dict do both here (an activity's addressing fields are replaced, not changed
    inside) at a small fraction of the cost: msrest models are deep trees of mostly empty
    attributes. The steps are botbuilder's: address each copy from the turn's conversation
    reference (as ``apply_conversation_reference`` does, without building the reference
    object), default its type and input hint, run the ``on_send_activities`` handlers, then
    buffer the replies (``expectReplies``) or hand them to the adapter.
    """

    async def send_activity(
        self, activity_or_text: Any, speak: str | None = None, input_hint: Any = None
    ) -> Any:
        """botbuilder's ``send_activity``, its text message built without msrest's constructor."""
        if isinstance(activity_or_text, str):
            activity_or_text = text_message(
                activity_or_text, input_hint or InputHints.accepting_input, speak
            )
        result = await self.send_activities([activity_or_text])
        return result[0] if result else None

    async def send_activities(self, activities: list[Any]) -> Any:
        incoming = self.activity
        # The turn's conversation reference, as ``get_conversation_reference`` takes it.
        reply_to = (
            incoming.id
            if incoming.type != ActivityTypes.conversation_update
            and incoming.channel_id not in (Channels.direct_line, Channels.webchat)
            else None
        )
        user = _shallow(incoming.from_property)
        bot = _shallow(incoming.recipient)
        conversation = _shallow(incoming.conversation)
        channel_id, locale, service_url = incoming.channel_id, incoming.locale, incoming.service_url
        output = []
        sent_non_trace = False
        for activity in activities:
            # ``apply_conversation_reference``'s steps, on the copy.
            out = _shallow(activity)
            out.channel_id = channel_id
            out.locale = locale
            out.service_url = service_url
            out.conversation = conversation
            out.from_property = bot
            out.recipient = user
            if reply_to:
                out.reply_to_id = reply_to
            if not getattr(out, "type", None):
                out.type = ActivityTypes.message
            sent_non_trace = sent_non_trace or out.type != ActivityTypes.trace
            if not out.input_hint:
                out.input_hint = "acceptingInput"
            out.id = None
            output.append(out)
        if not self._on_send_activities:  # no handlers to run first (``_emit`` would run none)
            return await self._send_output(output, sent_non_trace)
        return await self._emit(
            self._on_send_activities, output, self._send_output(output, sent_non_trace)
        )

    async def _send_output(self, output: list[Any], sent_non_trace: bool) -> list[Any]:
        if self.activity.delivery_mode == DeliveryModes.expect_replies:
            responses = []
            for activity in output:
                self.buffered_reply_activities.append(activity)
                if activity.type == ActivityTypes.invoke_response:
                    self.turn_state[TurnContext._INVOKE_RESPONSE_KEY] = activity
                responses.append(ResourceResponse())
        else:
            responses = await self.adapter.send_activities(self, output)
        if sent_non_trace:
            self.responded = True
        return responses


class MidTierBotAdapter(BotAdapter):  # type: ignore[misc]
    """A ``BotAdapter`` that hands what a bot sends back to midtier instead of a Connector.

    ``send_activities`` collects the turn's activities (with fresh ids, which are also
    returned as ``ResourceResponse`` ids). ``update_activity`` / ``delete_activity`` are
    collected too, as ``messageUpdate`` (the new activity, its ``id`` the one replaced) and
    ``messageDelete`` (``id`` = the deleted activity) activities. ``invokeResponse`` goes to
    ``turn_state`` as in ``BotFrameworkAdapter``; ``delay`` and (outside the Emulator)
    ``trace`` activities are not forwarded. One adapter serves every turn of a provider.
    """

    def __init__(self, host: ProviderHost, provider: str) -> None:
        super().__init__()
        self._host = host
        self._provider = provider
        self._redeem = self._redeem_code  # bound once, handed to every turn
        self._middleware_used = False

    def use(self, middleware: Any) -> MidTierBotAdapter:
        """botbuilder's ``use``: the middleware runs on every turn from now on."""
        self._middleware_used = True
        super().use(middleware)
        return self

    async def run_pipeline(
        self, context: TurnContext, callback: Callable[[TurnContext], Awaitable[Any]] | None = None
    ) -> Any:
        """botbuilder's pipeline; without middleware or ``on_turn_error``, just ``callback``."""
        if self._middleware_used or self.on_turn_error is not None or callback is None:
            return await super().run_pipeline(context, callback)
        return await callback(context)  # what the empty middleware set would do, a layer less

    async def _redeem_code(self, code: str) -> dict[str, Any]:
        return await self._host.redeem(code, self._provider)

    def bot_account(self) -> ChannelAccount:
        """How the bot appears in midtier: id = provider name, role ``bot``."""
        return ChannelAccount(id=self._provider, role="bot")

    async def run_turn(
        self, activity: Any, logic: Callable[[TurnContext], Awaitable[Any]]
    ) -> list[Any]:
        """Run one turn through the middleware and ``logic``; return what it sent."""
        context = MidTierTurnContext(self, activity)
        sent: list[Any] = []
        context.turn_state[_SENT_KEY] = sent
        context.turn_state[REDEEM_KEY] = self._redeem
        await self.run_pipeline(context, logic)
        return sent

    def to_midtier(self, activity: Any, conversation_id: str) -> Activity:
        """A sent activity as ours, from the bot unless it said otherwise, in its conversation."""
        data = reply_data(activity)  # its own dicts, to complete before one validation
        data.setdefault("from", {"id": self._provider, "role": "bot"})
        conversation = data.get("conversation")
        if conversation is None:
            data["conversation"] = {"id": conversation_id}
        else:
            conversation["id"] = conversation_id
        try:
            return Activity.model_validate(data)
        except ValidationError as exc:
            message = f"the bot sent an activity midtier cannot read: {exc}"
            raise ProviderError(self._provider, message) from exc

    def _sent(self, context: TurnContext) -> list[Any]:
        sent = context.turn_state.get(_SENT_KEY)
        if sent is None:
            raise RuntimeError(
                "this TurnContext was not started by MidTierBotAdapter; send proactive "
                "messages through adapter.continue_conversation(reference, callback)"
            )
        return sent  # type: ignore[no-any-return]

    async def send_activities(self, context: TurnContext, activities: list[Any]) -> list[Any]:
        """Collect the activities for midtier; answer with fresh ids."""
        sent = self._sent(context)
        responses = []
        for activity in activities:
            activity_id = new_activity_id()
            responses.append(resource_response(activity_id))
            kind = activity.type
            if kind == "invokeResponse":
                context.turn_state[self._INVOKE_RESPONSE_KEY] = activity
            if kind in _NOT_FORWARDED or (kind == "trace" and activity.channel_id != "emulator"):
                continue
            activity.id = activity_id
            if activity.timestamp is None:
                activity.timestamp = now()
            sent.append(activity)
        return responses

    async def update_activity(self, context: TurnContext, activity: Any) -> Any:
        """Collected as a ``messageUpdate`` activity carrying the replacement."""
        update = copy(activity)
        update.type = "messageUpdate"
        self._sent(context).append(update)
        return ResourceResponse(id=activity.id)

    async def delete_activity(self, context: TurnContext, reference: Any) -> None:
        """Collected as a ``messageDelete`` activity whose ``id`` is the deleted one."""
        self._sent(context).append(
            BfActivity(
                type="messageDelete",
                id=reference.activity_id,
                timestamp=now(),
                channel_id=reference.channel_id,
                service_url=reference.service_url,
                conversation=reference.conversation,
                from_property=reference.bot,
                recipient=reference.user,
            )
        )

    async def continue_conversation(
        self,
        reference: Any,
        callback: Callable[[TurnContext], Awaitable[Any]],
        bot_id: str | None = None,
        claims_identity: Any = None,
        audience: str | None = None,
    ) -> None:
        """Run a proactive turn as one unit of work of the core on the conversation's leg."""
        conversation_id = reference.conversation.id

        async def run(leg: Leg) -> list[Activity]:
            with serving(leg):
                sent = await self.run_turn(get_continuation_activity(reference), callback)
            return [self.to_midtier(activity, conversation_id) for activity in sent]

        await self._host.proactive(self._provider, conversation_id, run)


__all__ = ["REDEEM_KEY", "MidTierBotAdapter", "MidTierTurnContext"]
