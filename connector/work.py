"""Units of work: what handling one event of a session writes is committed at once.

A user message, a provider callback, an agent's action: each runs under the session's lock
as one :class:`Turn`. Everything it writes (the session with its legs, transcript lines,
route decisions, activities for the user, how legs ended, the inbound or inbox record it
consumed) is kept in the turn and written by ``SessionStore.commit`` in one transaction. A
crash before the commit leaves no trace of the turn, so the recorded event is processed
again from the start; after it, the event is done and everything it produced is waiting in
the outbox. Nothing reaches the user before the commit that recorded it.

A user's message taken before it was recorded (:class:`connector.unrecorded.Unrecorded`) has
its record carried by the turn's final commit; whatever needs it recorded sooner (a
checkpoint, a read of the transcript) records it on its own first.

A turn may commit more than once (``checkpoint``): a switch commits the new leg before
the new provider is told about it, because that provider may call back at once and must
find its conversation; a switch that nobody outside the process hears of before the turn
commits (between bots hosted in the process) leaves the leg to the turn's own commit.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar, Token
from types import TracebackType

from connector.errors import NotFound, RepeatedMessage, SessionClosed
from connector.logs import session_id_var
from connector.opening import wait_for_leg
from connector.records import AuthCodeRecord, Changes, OutboxEntry, OutcomeEntry
from connector.routing.decision import RouteDecision
from connector.sessions import Leg, MidTierSession, TranscriptEntry
from connector.store_protocol import Lock, TurnStore
from connector.unrecorded import Unrecorded

log = logging.getLogger("midtier.work")

AfterCommit = Callable[[], Awaitable[None]]
Dispatch = Callable[[list[OutboxEntry]], Awaitable[None]]

# The turn the current task works in, for providers that want to act after its commit.
current_turn: ContextVar[Turn | None] = ContextVar("midtier_current_turn", default=None)


class Turn:
    """One unit of work on one session; the caller holds the session's lock."""

    def __init__(self, store: TurnStore, session: MidTierSession, dispatch: Dispatch) -> None:
        self._store = store
        self._dispatch = dispatch
        self.session = session  # changed in place by the engine's parts; saved at commit
        self._version = session.version
        self._transcript: list[TranscriptEntry] = []
        self._decisions: list[RouteDecision] = []
        self._outbox: list[OutboxEntry] = []
        self._inbound_done: list[str] = []
        self._inbox_done: list[str] = []
        self._outbox_done: list[str] = []
        self._outcomes: list[OutcomeEntry] = []
        # Codes issued in the turn, each with the map that holds it until it is stored or
        # redeemed (``AuthCodes.issue``): stored with the next commit if still there.
        self._codes: list[tuple[str, AuthCodeRecord, dict[str, AuthCodeRecord]]] = []
        self._after: list[AfterCommit] = []
        self.finished = False
        self.committed = False  # its final commit is done
        # The user's activity it processes, while that is not recorded on its own: the final
        # commit carries it; anything that needs it recorded first records it (``_recorded``).
        self.unrecorded: Unrecorded | None = None

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

    def outbox_finished(self, entry_id: str) -> None:
        """The outbox is done with this entry (given up on it): it leaves with the commit."""
        self._outbox_done.append(entry_id)

    def outcome(self, entry: OutcomeEntry) -> None:
        """Record how a leg ended for its provider (:mod:`connector.outcomes`)."""
        self._outcomes.append(entry)

    def code(self, key: str, record: AuthCodeRecord, unsaved: dict[str, AuthCodeRecord]) -> None:
        """An authorization code issued in this turn, held in ``unsaved`` meanwhile: stored
        with the next commit unless redeemed before (no longer in ``unsaved`` then)."""
        self._codes.append((key, record, unsaved))

    def drop_codes(self) -> None:
        """Forget the codes not stored: the turn ends without committing them."""
        for key, _, unsaved in self._codes:
            unsaved.pop(key, None)
        self._codes = []

    def after(self, callback: AfterCommit) -> None:
        """Run ``callback`` after the next commit."""
        self._after.append(callback)

    # ------------------------------------------------------------------ what it reads

    async def transcript(self, last: int | None = None) -> list[TranscriptEntry]:
        """The session's transcript including this turn's lines, oldest first."""
        await self._recorded()  # the user's line in the history that others get
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
        await self._recorded()  # a crash after this commit must find the activity recorded
        await self._write(None)

    async def _recorded(self) -> None:
        """Have the user's activity this turn processes recorded on its own, if it is not."""
        if self.unrecorded is not None:
            unrecorded, self.unrecorded = self.unrecorded, None
            if await unrecorded.record() is None:
                raise RepeatedMessage("the message repeats one recorded meanwhile")

    async def _write(self, carried: Unrecorded | None) -> None:
        """Commit what the turn holds (with ``carried``'s record), then dispatch its replies
        and run what waits for the commit."""
        changes = Changes(
            session=self.session,
            expected_version=self._version,
            transcript=self._transcript,
            decisions=self._decisions,
            outbox=self._outbox,
            inbound_done=self._inbound_done,
            inbox_done=self._inbox_done,
            outbox_done=self._outbox_done,
            outcomes=self._outcomes,
        )
        if self._codes:  # those redeemed meanwhile are gone: not stored at all
            codes, self._codes = self._codes, []
            changes.codes = [(k, r) for k, r, held in codes if held.pop(k, None) is not None]
        if carried is not None:
            entry = carried.entry
            if carried.line is not None:
                changes.transcript = [carried.line, *changes.transcript]
            changes.inbound_done = [i for i in changes.inbound_done if i != entry.id]
            changes.dedupe_key, changes.dedupe_ttl_s = entry.dedupe_key, carried.dedupe_ttl_s
        saved = await self._store.commit(changes)
        if carried is not None:
            carried.committed()  # acknowledged before its replies go out
        # Keep working on the same objects (providers hold references to its legs).
        self.session.version = self._version = saved.version
        self.session.updated_at = saved.updated_at
        outbox, after = self._outbox, self._after
        self._transcript, self._decisions, self._outbox = [], [], []
        self._inbound_done, self._inbox_done, self._after = [], [], []
        self._outbox_done, self._outcomes = [], []
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
        unrecorded, self.unrecorded = self.unrecorded, None
        if unrecorded is None:
            await self._write(None)
        else:
            async with unrecorded.committing() as carry:
                await self._write(unrecorded if carry else None)
        self.finished = self.committed = True


async def after_commit(callback: AfterCommit) -> None:
    """Run ``callback`` after the current task's turn commits, or now if there is none."""
    turn = current_turn.get()
    if turn is None or turn.finished:
        await callback()
    else:
        turn.after(callback)


class Turns:
    """Opens units of work: a session's lock held, its state read fresh, everything the block
    wrote committed at its end (nothing, if it raises)."""

    def __init__(self, store: TurnStore, locks: Lock, dispatch: Dispatch) -> None:
        self.store = store
        self.locks = locks
        self.dispatch = dispatch  # hands committed replies to the outbox

    def turn(self, session_id: str) -> AbstractAsyncContextManager[Turn]:
        """A unit of work on session ``session_id`` (``NotFound`` if there is none)."""
        return _UnitOfWork(self, session_id)

    @asynccontextmanager
    async def provider_turn(
        self, provider: str, conversation_id: str, within_s: float = 0.0
    ) -> AsyncIterator[tuple[Turn, Leg]]:
        """A unit of work on the session of ``provider``'s open conversation (``NotFound``,
        after waiting up to ``within_s`` for a leg still being opened; ``SessionClosed``
        when that leg or its session is closed)."""
        found = await self.store.by_provider(provider, conversation_id)
        if found is None and within_s > 0:
            found = await wait_for_leg(self.store, provider, conversation_id, within_s)
        if found is None:
            raise NotFound(f"no conversation {conversation_id!r} for provider {provider!r}")
        async with self.turn(found.id) as turn:
            leg = turn.session.leg_for_provider(provider, conversation_id)
            if leg is None or not leg.is_open or turn.session.status != "active":
                raise SessionClosed(f"conversation {conversation_id!r} of {provider!r} is closed")
            yield turn, leg


class _UnitOfWork:
    """One ``async with turns.turn(session_id)``: the session's lock held, its log lines
    tagged with its id, its state read, the block's writes committed at its end (nothing if
    it raises), and the session handed back to the store as committed. A plain async
    context manager: a generator-based one costs about twice as much, and every message
    opens one."""

    __slots__ = ("_hold", "_session_id", "_tokens", "_turn", "_turns")

    def __init__(self, turns: Turns, session_id: str) -> None:
        self._turns = turns
        self._session_id = session_id

    async def __aenter__(self) -> Turn:
        turns, session_id = self._turns, self._session_id
        hold = self._hold = turns.locks.hold(session_id)
        await hold.__aenter__()
        tagged = session_id_var.set(session_id)
        try:
            session = await turns.store.get(session_id)
            if session is None:
                raise NotFound(f"no session {session_id!r}")
        except BaseException as exc:
            session_id_var.reset(tagged)
            await hold.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        turn = self._turn = Turn(turns.store, session, turns.dispatch)
        self._tokens: tuple[Token[str | None], Token[Turn | None]] = (
            tagged,
            current_turn.set(turn),
        )
        return turn

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        turn, (tagged, current) = self._turn, self._tokens
        try:
            try:
                if kind is None and not turn.finished:
                    await turn.commit()
            finally:
                current_turn.reset(current)
            if turn.committed:  # as committed: the next unit of work may start from it
                self._turns.store.keep(turn.session)
        finally:
            turn.drop_codes()  # what it did not commit
            session_id_var.reset(tagged)
            await self._hold.__aexit__(kind, exc, tb)
