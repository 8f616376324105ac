"""The provider inbox: callbacks from providers, kept until the core has applied them.

Remote providers (Bot Framework bots through the Connector API, webhook services) post
replies and actions whenever they like, often while midtier is still inside a delivery to
them and so holds the session's lock. Waiting for that lock before answering their HTTP
call would deadlock; answering first and applying later from memory would lose what was
acknowledged if the process died. So a callback is written to the store's inbox, answered,
and applied by one worker per provider conversation, in the order it was put; an entry
leaves the inbox only once applied. At start-up the workers pick up what a crash left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from connector.activity import Activity, new_activity_id
from connector.errors import MidtierError, NotFound, SessionClosed
from connector.interfaces import InboxEntry

if TYPE_CHECKING:
    from connector.engine import Engine

log = logging.getLogger("midtier.inbox")

Key = tuple[str, str]  # (provider, provider conversation id)
OPENING_POLL_S = 0.02


class ProviderInbox:
    """Durable, ordered hand-over of provider callbacks to the core."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._workers: dict[Key, asyncio.Task[None]] = {}
        self._dirty: set[Key] = set()

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
        self._kick((provider, conversation))

    async def resume(self) -> None:
        """Start workers for whatever was waiting when the process last stopped."""
        for key in await self._engine.store.inbox_keys():
            self._kick(key)

    async def idle(self) -> None:
        """Wait until every accepted callback has been applied (tests, shutdown)."""
        while self._workers:
            await asyncio.gather(*list(self._workers.values()), return_exceptions=True)

    async def stop(self) -> None:
        """Stop the workers; what they had not applied stays in the store."""
        for task in list(self._workers.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _kick(self, key: Key) -> None:
        self._dirty.add(key)
        if key not in self._workers:
            self._workers[key] = asyncio.create_task(self._work(key), name=f"inbox-{key[0]}")

    async def _work(self, key: Key) -> None:
        store = self._engine.store
        try:
            while key in self._dirty:
                self._dirty.discard(key)
                for entry in await store.inbox_pending(*key):
                    await self._apply(entry)
                    await store.inbox_done(entry.id)
        finally:
            # No await between the last look at ``_dirty`` and here: nothing slips through.
            del self._workers[key]

    async def _apply(self, entry: InboxEntry) -> None:
        engine, provider, conversation = self._engine, entry.provider, entry.conversation
        try:
            await self._wait_for_leg(entry)
            for wire in entry.activities:
                await engine.provider_activity(provider, conversation, Activity.from_wire(wire))
            action = entry.action or {}
            reason = str(action.get("reason") or "")
            if action.get("action") == "hand_back":
                await engine.hand_back(provider, conversation, reason or "handed back")
            elif action.get("action") == "transfer":
                target = str(action.get("target") or "")
                await engine.transfer(provider, conversation, target, reason or "transferred")
        except SessionClosed as exc:
            log.info("callback of %s for a closed conversation dropped: %s", provider, exc)
        except MidtierError as exc:
            log.warning("callback of %s could not be applied: %s", provider, exc)
            if entry.action:
                await engine.tell_provider_failed(provider, conversation, str(exc))
        except Exception:  # one bad callback must not stop the conversation's queue
            log.exception("callback of %s failed in the core", provider)

    async def _wait_for_leg(self, entry: InboxEntry) -> None:
        """A provider may call back while its leg is still being opened (not yet saved)."""
        deadline = time.monotonic() + self._engine.timeout(entry.provider)
        while await self._engine.store.by_provider(entry.provider, entry.conversation) is None:
            if time.monotonic() > deadline:
                raise NotFound(f"no conversation {entry.conversation!r} of {entry.provider!r}")
            await asyncio.sleep(OPENING_POLL_S)  # bounded by the provider's timeout
