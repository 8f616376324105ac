"""The provider inbox: callbacks from providers, kept until the core has applied them.

Remote providers (Bot Framework bots through the Connector API, webhook services) post
replies and actions whenever they like, often while midtier is still inside a delivery to
them and so holds the session's lock. Waiting for that lock before answering their HTTP
call would deadlock; answering first and applying later from memory would lose what was
acknowledged if the process died. So a callback is written to the store's inbox, answered,
and applied by one worker per provider conversation, in the order it was put; an entry
leaves the inbox in the same commit as what applying it wrote, so it is applied once. At
start-up the workers pick up what a crash left.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from connector.activity import Activity, new_activity_id
from connector.errors import MidtierError, SessionClosed
from connector.opening import wait_for_leg
from connector.records import InboxEntry
from connector.sessions import Leg
from connector.store_protocol import InboxStore, SessionMap
from connector.work import Turn
from connector.workers import KeyedWorkers

log = logging.getLogger("midtier.inbox")

Key = tuple[str, str]  # (provider, provider conversation id)


class Applies(Protocol):
    """What the inbox hands its callbacks to (the core's provider side)."""

    def provider_turn(
        self, provider: str, conversation_id: str
    ) -> AbstractAsyncContextManager[tuple[Turn, Leg]]: ...

    async def emit(self, turn: Turn, leg: Leg, activities: list[Activity]) -> None:
        """Act on activities the provider sent."""

    async def do(self, turn: Turn, leg: Leg, action: dict[str, Any]) -> None:
        """Do what the provider asked (``hand_back``, ``transfer``); ``MidtierError`` when
        it cannot be done."""

    async def tell_provider_failed(
        self, provider: str, provider_conversation_id: str, message: str
    ) -> None: ...


class ProviderInbox:
    """Durable, ordered hand-over of provider callbacks to the core."""

    def __init__(
        self,
        store: InboxStore,
        sessions: SessionMap,
        target: Applies,
        deadline: Callable[[str], float],
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._target = target
        self._deadline = deadline  # how long a provider's leg may take to open
        self._workers: KeyedWorkers[Key] = KeyedWorkers(self._drain, "midtier-inbox")

    async def accept(
        self,
        provider: str,
        conversation: str,
        activities: list[Activity],
        action: dict[str, Any] | None = None,
    ) -> None:
        """Keep the callback; it is applied soon after, in order. Returns once it is stored."""
        entry = InboxEntry(
            id=new_activity_id(),
            provider=provider,
            conversation=conversation,
            activities=[a.to_wire() for a in activities],
            action=action,
        )
        await self._store.inbox_put(entry)
        self._workers.kick((provider, conversation))

    async def resume(self) -> None:
        """Start workers for whatever was waiting when the process last stopped."""
        for key in await self._store.inbox_keys():
            self._workers.kick(key)

    async def idle(self) -> None:
        """Wait until every accepted callback has been applied (tests, shutdown)."""
        await self._workers.idle()

    async def stop(self) -> None:
        """Stop the workers; what they had not applied stays in the store."""
        await self._workers.stop()

    async def _drain(self, key: Key) -> None:
        for entry in await self._store.inbox_pending(*key):
            await self._apply(entry)

    async def _apply(self, entry: InboxEntry) -> None:
        target, provider, conversation = self._target, entry.provider, entry.conversation
        failure: MidtierError | None = None
        try:
            await self._wait_for_leg(entry)
            async with target.provider_turn(provider, conversation) as (turn, leg):
                turn.consumed_inbox(entry.id)
                await target.emit(turn, leg, [Activity.from_wire(w) for w in entry.activities])
                try:
                    if entry.action:
                        await target.do(turn, leg, entry.action)
                except MidtierError as exc:  # the activities stand; the action did not happen
                    failure = exc
        except SessionClosed as exc:
            log.info("callback of %s for a closed conversation dropped: %s", provider, exc)
            await self._store.inbox_done(entry.id)
        except MidtierError as exc:
            log.warning("callback of %s could not be applied: %s", provider, exc)
            await self._store.inbox_done(entry.id)
            failure = exc if entry.action else None
        except Exception:  # one bad callback must not stop the conversation's queue
            log.exception("callback of %s failed in the core", provider)
            await self._store.inbox_done(entry.id)
        if failure is not None:
            log.warning("request of %s could not be done: %s", provider, failure)
            await target.tell_provider_failed(provider, conversation, str(failure))

    async def _wait_for_leg(self, entry: InboxEntry) -> None:
        await wait_for_leg(
            self._sessions, entry.provider, entry.conversation, self._deadline(entry.provider)
        )
