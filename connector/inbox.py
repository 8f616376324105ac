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

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from connector.activity import Activity, new_activity_id
from connector.errors import MidtierError, NotFound, SessionClosed
from connector.records import InboxEntry
from connector.workers import KeyedWorkers

if TYPE_CHECKING:
    from connector.engine import Engine

log = logging.getLogger("midtier.inbox")

Key = tuple[str, str]  # (provider, provider conversation id)
OPENING_POLL_S = 0.02


class ProviderInbox:
    """Durable, ordered hand-over of provider callbacks to the core."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
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
        await self._engine.store.inbox_put(entry)
        self._workers.kick((provider, conversation))

    async def resume(self) -> None:
        """Start workers for whatever was waiting when the process last stopped."""
        for key in await self._engine.store.inbox_keys():
            self._workers.kick(key)

    async def idle(self) -> None:
        """Wait until every accepted callback has been applied (tests, shutdown)."""
        await self._workers.idle()

    async def stop(self) -> None:
        """Stop the workers; what they had not applied stays in the store."""
        await self._workers.stop()

    async def _drain(self, key: Key) -> None:
        for entry in await self._engine.store.inbox_pending(*key):
            await self._apply(entry)

    async def _apply(self, entry: InboxEntry) -> None:
        engine, provider, conversation = self._engine, entry.provider, entry.conversation
        failure: MidtierError | None = None
        try:
            await self._wait_for_leg(entry)
            async with engine.provider_turn(provider, conversation) as (turn, leg):
                turn.consumed_inbox(entry.id)
                for wire in entry.activities:
                    await engine._emit(turn, leg, Activity.from_wire(wire))
                action = entry.action or {}
                reason = str(action.get("reason") or "")
                try:
                    if action.get("action") == "hand_back":
                        await engine._hand_back(turn, leg, reason or "handed back")
                    elif action.get("action") == "transfer":
                        target = str(action.get("target") or "")
                        await engine._transfer(turn, target, reason or "transferred")
                except MidtierError as exc:  # the activities stand; the action did not happen
                    failure = exc
        except SessionClosed as exc:
            log.info("callback of %s for a closed conversation dropped: %s", provider, exc)
            await engine.store.inbox_done(entry.id)
        except MidtierError as exc:
            log.warning("callback of %s could not be applied: %s", provider, exc)
            await engine.store.inbox_done(entry.id)
            failure = exc if entry.action else None
        except Exception:  # one bad callback must not stop the conversation's queue
            log.exception("callback of %s failed in the core", provider)
            await engine.store.inbox_done(entry.id)
        if failure is not None:
            log.warning("request of %s could not be done: %s", provider, failure)
            await engine.tell_provider_failed(provider, conversation, str(failure))

    async def _wait_for_leg(self, entry: InboxEntry) -> None:
        """A provider may call back while its leg is still being opened (not yet saved)."""
        deadline = time.monotonic() + self._engine.pool.timeout(entry.provider)
        while await self._engine.store.by_provider(entry.provider, entry.conversation) is None:
            if time.monotonic() > deadline:
                raise NotFound(f"no conversation {entry.conversation!r} of {entry.provider!r}")
            await asyncio.sleep(OPENING_POLL_S)  # bounded by the provider's timeout
