"""Units of work: what handling one event of a session writes is committed at once.

A user message, a provider callback, an agent's action: each runs under the session's lock
as one :class:`Turn`. Everything it writes (the session with its legs, transcript lines,
route decisions, activities for the user, the inbound or inbox record it consumed) is kept
in the turn and written by ``SessionStore.commit`` in one transaction. A crash before the
commit leaves no trace of the turn, so the recorded event is processed again from the
start; after it, the event is done and everything it produced is waiting in the outbox.
Nothing reaches the user before the commit that recorded it.

A turn may commit more than once (``checkpoint``): a switch commits the new leg before
the new provider is told about it, because that provider may call back at once and must
find its conversation.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from connector.interfaces import SessionStore
from connector.records import Changes, OutboxEntry
from connector.routing.decision import RouteDecision
from connector.sessions import MidTierSession, TranscriptEntry

log = logging.getLogger("midtier.work")

AfterCommit = Callable[[], Awaitable[None]]
Dispatch = Callable[[list[OutboxEntry]], Awaitable[None]]

# The turn the current task works in, for providers that want to act after its commit.
current_turn: ContextVar[Turn | None] = ContextVar("midtier_current_turn", default=None)


class Turn:
    """One unit of work on one session; the caller holds the session's lock."""

    def __init__(self, store: SessionStore, session: MidTierSession, dispatch: Dispatch) -> None:
        self._store = store
        self._dispatch = dispatch
        self.session = session  # changed in place by the engine's parts; saved at commit
        self._version = session.version
        self._transcript: list[TranscriptEntry] = []
        self._decisions: list[RouteDecision] = []
        self._outbox: list[OutboxEntry] = []
        self._inbound_done: list[str] = []
        self._inbox_done: list[str] = []
        self._after: list[AfterCommit] = []
        self.finished = False

    # ------------------------------------------------------------------ what it writes

    def record(self, entry: TranscriptEntry) -> None:
        """Add a transcript line."""
        self._transcript.append(entry)

    def decide(self, decision: RouteDecision) -> None:
        """Add a route decision."""
        self._decisions.append(decision)

    def send(self, entry: OutboxEntry) -> None:
        """Queue an activity for the user; it leaves once committed."""
        self._outbox.append(entry)

    def consumed_inbound(self, entry_id: str) -> None:
        self._inbound_done.append(entry_id)

    def consumed_inbox(self, entry_id: str) -> None:
        self._inbox_done.append(entry_id)

    def after(self, callback: AfterCommit) -> None:
        """Run ``callback`` after the next commit."""
        self._after.append(callback)

    # ------------------------------------------------------------------ what it reads

    async def transcript(self, last: int | None = None) -> list[TranscriptEntry]:
        """The session's transcript including this turn's lines, oldest first."""
        stored = await self._store.transcript(self.session.id, last=last)
        merged = stored + [e.model_copy() for e in self._transcript]
        if last is not None:
            return merged[-last:] if last > 0 else []
        return merged

    async def decisions(self) -> list[RouteDecision]:
        """The session's route decisions including this turn's, oldest first."""
        return [*await self._store.decisions(self.session.id), *self._decisions]

    # ------------------------------------------------------------------ commit

    async def checkpoint(self) -> None:
        """Commit what the turn wrote so far, hand its replies to the outbox, and carry on."""
        changes = Changes(
            session=self.session,
            expected_version=self._version,
            transcript=self._transcript,
            decisions=self._decisions,
            outbox=self._outbox,
            inbound_done=self._inbound_done,
            inbox_done=self._inbox_done,
        )
        saved = await self._store.commit(changes)
        # Keep working on the same objects (providers hold references to its legs).
        self.session.version = self._version = saved.version
        self.session.updated_at = saved.updated_at
        outbox, after = self._outbox, self._after
        self._transcript, self._decisions, self._outbox = [], [], []
        self._inbound_done, self._inbox_done, self._after = [], [], []
        if outbox:
            await self._dispatch(outbox)
        for callback in after:
            try:
                await callback()
            except Exception:  # what runs after a commit cannot undo it
                log.exception("after-commit step failed")

    def abandon(self) -> None:
        """End the turn without writing what it holds (it found nothing to change)."""
        self.finished = True

    async def commit(self) -> None:
        """The final commit; later ``after`` callbacks run at once."""
        await self.checkpoint()
        self.finished = True


async def after_commit(callback: AfterCommit) -> None:
    """Run ``callback`` after the current task's turn commits, or now if there is none."""
    turn = current_turn.get()
    if turn is None or turn.finished:
        await callback()
    else:
        turn.after(callback)
