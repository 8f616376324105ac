"""In-process Bot Framework bots (botbuilder-python) as a midtier provider, kind ``botbuilder``.

``providers.yaml``::

    faq:
      kind: botbuilder
      title: the help assistant
      timeout_s: 5                # the core cancels a longer turn
      bot: bots.faq:FaqBot        # or bots.faq.FaqBot; any object with async on_turn(ctx)

The bot runs on :class:`MidTierBotAdapter`, our own ``BotAdapter``
(:mod:`adapters.providers.botbuilder_adapter`, which also says how proactive messages and
``turn_state["midtier.redeem"]`` work). Activities cross the bot's boundary through
:func:`to_botbuilder` / :func:`from_botbuilder` (:mod:`adapters.providers.botbuilder_schema`:
no msrest (de)serialization, which takes 120-160 us). What the bot sends during a turn comes
back from ``deliver``.

**State.** A bot that keeps its state in ``LegStorage``
(:mod:`adapters.providers.botbuilder_state`) has it committed with its leg and its replies.
"""

from __future__ import annotations

import importlib
import inspect
import secrets
from typing import Annotated, Any

from botbuilder.schema import Activity as BfActivity
from botbuilder.schema import ConversationAccount as BfConversation
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from adapters.providers.botbuilder_adapter import MidTierBotAdapter
from adapters.providers.botbuilder_schema import account, from_botbuilder, plain, to_botbuilder
from adapters.providers.botbuilder_state import STATE_KEY, LegStorage, serving
from connector.activity import Activity, new_activity_id, now
from connector.context import ProviderContext
from connector.errors import ConfigError, ProviderError
from connector.provider_protocol import HandoffContext, ProviderHost
from connector.sessions import Leg, MidTierSession


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
    runs_in_process = True  # its turn reaches nothing outside before the commit

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
        user = account(str(leg.data.get("user_id") or "midtier"), "user")
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
        incoming.recipient = account(self.name, "bot")
        incoming.channel_id = leg.channel
        try:
            with serving(leg):
                return await self.adapter.run_turn(incoming, bot.on_turn)
        except Exception as exc:
            # A TimeoutError is the bot's own: the pool's deadline arrives as a cancellation.
            raise ProviderError(self.name, f"the bot failed: {exc!r}") from exc


__all__ = [
    "STATE_KEY",
    "BotbuilderProvider",
    "BotbuilderSettings",
    "LegStorage",
    "from_botbuilder",
    "load_bot",
    "plain",
    "to_botbuilder",
]
