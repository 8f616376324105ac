"""In-process Bot Framework bots (botbuilder-python) as a midtier provider, kind ``botbuilder``.

``providers.yaml``::

    faq:
      kind: botbuilder
      title: the help assistant
      timeout_s: 5                # the core cancels a longer turn
      bot: bots.faq:FaqBot        # or bots.faq.FaqBot; any object with async on_turn(ctx)

The bot runs on :class:`MidTierBotAdapter`, our own ``BotAdapter``: no ``ConnectorClient``, no
credentials and no msrest (de)serialization per turn (botbuilder's ``CloudAdapter`` spends
most of a turn building those). Activities cross the bot's boundary through
:func:`to_botbuilder` / :func:`from_botbuilder`: keyword constructors and attribute reads
driven by each class's ``_attribute_map`` (about 8 us each way, where msrest's
``serialize()`` / ``deserialize()`` take 120-160 us).

What the bot sends during a turn comes back from ``deliver``; what it sends from
``adapter.continue_conversation`` runs as a provider turn of the core (``ProviderHost.
proactive``). Each turn's ``turn_state["midtier.redeem"]`` is an async ``code -> grant``
callable with which a bot redeems the ``auth_code`` of the ``midtier.handoff`` event
(``ProviderHost.redeem``).

**State.** A bot that keeps its state in ``LegStorage``
(:mod:`adapters.providers.botbuilder_state`) has it committed with its leg and its replies.
"""

from __future__ import annotations

import importlib
import inspect
import secrets
from collections.abc import Awaitable, Callable
from copy import copy
from functools import partial
from typing import Annotated, Any

from botbuilder.core import BotAdapter, TurnContext
from botbuilder.core.conversation_reference_extension import get_continuation_activity
from botbuilder.schema import Activity as BfActivity
from botbuilder.schema import ChannelAccount as BfAccount
from botbuilder.schema import ConversationAccount as BfConversation
from botbuilder.schema import ResourceResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from adapters.providers.botbuilder_schema import from_botbuilder, plain, to_botbuilder
from adapters.providers.botbuilder_state import STATE_KEY, LegStorage, serving
from connector.activity import (
    Activity,
    ChannelAccount,
    ConversationAccount,
    new_activity_id,
    now,
)
from connector.context import ProviderContext
from connector.errors import ConfigError, ProviderError
from connector.provider_protocol import HandoffContext, ProviderHost
from connector.sessions import Leg, MidTierSession

REDEEM_KEY = "midtier.redeem"
_SENT_KEY = "midtier.botbuilder_inproc.sent"  # this turn's outgoing activities
_NOT_FORWARDED = frozenset({"invokeResponse", "delay"})

# --------------------------------------------------------------------------- the adapter


def _itself(activity: Any, memo: dict[int, Any]) -> Any:
    return activity


class MidTierTurnContext(TurnContext):  # type: ignore[misc]
    """botbuilder's ``TurnContext``, sending each activity as a shallow copy.

    ``TurnContext.send_activities`` deep-copies every activity before it sets the
    conversation reference on it, so the bot's own object is left as it was. A shallow copy
    does that as well (the reference's fields are replaced, not changed inside; the adapter
    turns what is sent into midtier's own activity at once) and costs a small fraction:
    msrest models are deep trees of mostly empty attributes.
    """

    async def send_activities(self, activities: list[Any]) -> Any:
        copies = [copy(activity) for activity in activities]
        for each in copies:
            # ``deepcopy(each)`` looks ``__deepcopy__`` up on the object first.
            each.__deepcopy__ = partial(_itself, each)
        return await super().send_activities(copies)


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
        try:
            out = from_botbuilder(activity)
        except ValidationError as exc:
            message = f"the bot sent an activity midtier cannot read: {exc}"
            raise ProviderError(self._provider, message) from exc
        if out.from_ is None:
            out.from_ = self.bot_account()
        if out.conversation is None:
            out.conversation = ConversationAccount(id=conversation_id)
        else:
            out.conversation.id = conversation_id
        return out

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
            responses.append(ResourceResponse(id=activity_id))
            kind = activity.type
            if kind == "invokeResponse":
                context.turn_state[self._INVOKE_RESPONSE_KEY] = activity
            if kind in _NOT_FORWARDED or (kind == "trace" and activity.channel_id != "emulator"):
                continue
            vars(activity).pop("__deepcopy__", None)  # set by MidTierTurnContext
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


# --------------------------------------------------------------------------- the provider


def load_bot(provider: str, path: object) -> Any:
    """Import ``package.module:ClassName`` (or ``package.module.ClassName``) and create it."""
    key = f"providers.{provider}.bot"
    if not isinstance(path, str) or not path.strip():
        raise ConfigError("providers.yaml", key, "required: the bot class, e.g. 'bots.faq:FaqBot'")
    module_name, sep, attr = path.strip().partition(":")
    if not sep:
        module_name, _, attr = module_name.rpartition(".")
    if not module_name or not attr:
        raise ConfigError("providers.yaml", key, f"{path!r} is not 'package.module:ClassName'")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except Exception as exc:  # any import failure is a config problem with this key
        raise ConfigError("providers.yaml", key, f"cannot import {path!r}: {exc!r}") from exc
    try:
        bot = target()
    except Exception as exc:
        raise ConfigError("providers.yaml", key, f"{path!r}() failed: {exc!r}") from exc
    if not inspect.iscoroutinefunction(getattr(bot, "on_turn", None)):
        raise ConfigError("providers.yaml", key, f"{path!r} has no async on_turn(turn_context)")
    return bot


class BotbuilderSettings(BaseModel):
    """``providers.<name>`` keys of ``kind: botbuilder`` (besides the common ones)."""

    model_config = ConfigDict(extra="forbid")
    # Imported and created at start-up (and by ``midtier check``), from the config directory.
    bot: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] = Field(
        description="the bot class, e.g. bots.faq:FaqBot"
    )


class BotbuilderProvider:
    """A botbuilder bot running in this process: ``ActivityHandler`` or any ``on_turn`` object.

    Keeps no per-conversation state: the leg holds the channel and the provider conversation
    id, and each activity carries the user. Bot failures raise ``ProviderError`` (from the bot's
    exception). The turn has no deadline of its own: the core's ``ProviderPool`` cancels one
    that runs past ``timeout_s`` (and raises ``ProviderTimeout``).
    """

    kind = "botbuilder"

    Settings = BotbuilderSettings

    def __init__(self, context: ProviderContext[BotbuilderSettings, ProviderHost]) -> None:
        self.name = context.name
        self.config = context.config
        self._bot_path = context.settings.bot
        self.adapter = MidTierBotAdapter(context.host, self.name)
        self.bot: Any = None

    async def start(self) -> None:
        """Import and create the bot (the core has put the config directory on sys.path)."""
        self.bot = load_bot(self.name, self._bot_path)

    def check(self) -> None:
        """``midtier check``: the bot path imports and the bot can be created."""
        load_bot(self.name, self._bot_path)

    async def stop(self) -> None:
        """Drop the bot; ``health`` is False until the next ``start``."""
        self.bot = None

    async def health(self) -> bool:
        """True once the bot is created."""
        return self.bot is not None

    async def open(self, session: MidTierSession, leg: Leg, context: HandoffContext) -> str:
        """A new unguessable conversation id; the context follows as ``midtier.handoff``."""
        self._require_bot()
        leg.data["user_id"] = session.user_id  # persisted with the leg; ``close`` needs it
        return f"bb_{secrets.token_urlsafe(16)}"

    async def deliver(self, leg: Leg, activity: Activity) -> list[Activity]:
        """Run the bot's turn on the activity; return what it sent, as ours."""
        conversation_id = leg.provider_conversation_id
        sent = await self._turn(leg, to_botbuilder(activity))
        return [self.adapter.to_midtier(reply, conversation_id) for reply in sent]

    async def close(self, leg: Leg, reason: str) -> None:
        """Tell the bot with ``endOfConversation`` (text = reason); its replies are dropped."""
        if self.bot is None:
            return
        user = BfAccount(id=str(leg.data.get("user_id") or "midtier"), role="user")
        end = BfActivity(
            type="endOfConversation",
            id=new_activity_id(),
            timestamp=now(),
            code="completedSuccessfully",
            text=reason,
            value={"reason": reason},
            from_property=user,
        )
        await self._turn(leg, end)

    def _require_bot(self) -> Any:
        if self.bot is None:
            raise ProviderError(self.name, "not started")
        return self.bot

    async def _turn(self, leg: Leg, incoming: Any) -> list[Any]:
        bot = self._require_bot()
        conversation = incoming.conversation
        if conversation is None:
            incoming.conversation = BfConversation(id=leg.provider_conversation_id)
        else:
            conversation.id = leg.provider_conversation_id
        incoming.recipient = BfAccount(id=self.name, role="bot")
        incoming.channel_id = leg.channel
        try:
            with serving(leg):
                return await self.adapter.run_turn(incoming, bot.on_turn)
        except Exception as exc:
            # A TimeoutError is the bot's own: the pool's deadline arrives as a cancellation.
            raise ProviderError(self.name, f"the bot failed: {exc!r}") from exc


__all__ = [
    "REDEEM_KEY",
    "STATE_KEY",
    "BotbuilderProvider",
    "BotbuilderSettings",
    "LegStorage",
    "MidTierBotAdapter",
    "from_botbuilder",
    "load_bot",
    "plain",
    "to_botbuilder",
]
