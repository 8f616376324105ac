"""A user's activity taken for processing before it was recorded (:mod:`connector.inbound`
says when and why): what the unit of work that processes it and the channel waiting for
its acknowledgement share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Literal

from connector.activity import Activity
from connector.errors import MidtierError
from connector.records import InboundEntry
from connector.sessions import TranscriptEntry

Put = Callable[[InboundEntry], Awaitable[InboundEntry | None]]


class Unrecorded:
    """A user's activity taken for processing before it was recorded.

    The unit of work that processes it writes its dedupe key and transcript line (``line``)
    with everything else (``committing``, ``committed``). Before that unit of work commits
    anything else, reads the transcript, or when the channel has waited ``ack_within_s``, it
    is recorded on its own (``record``), as :meth:`UserInbound.record` does; the unit of work
    then consumes that record like any other. ``acked`` resolves once it is recorded either
    way: with its record, or None for a repeat.
    """

    def __init__(
        self,
        entry: InboundEntry,
        put: Put,
        dedupe_ttl_s: float,
        activity: Activity | None = None,
    ) -> None:
        self.entry = entry  # its ``session_id`` set: the session it is processed in
        self.activity = activity  # the entry's activity, parsed (None: parse it when needed)
        self.dedupe_ttl_s = dedupe_ttl_s
        self.line: TranscriptEntry | None = None  # set by the unit of work that processes it
        self.acked: asyncio.Future[InboundEntry | None] = asyncio.get_running_loop().create_future()
        self._put = put
        self._lock = asyncio.Lock()
        self._state: Literal["unrecorded", "recorded", "committed", "repeat"] = "unrecorded"

    async def record(self) -> InboundEntry | None:
        """Have it recorded (once): its record, None if recording found it a repeat."""
        async with self._lock:
            if self._state == "unrecorded":
                try:
                    recorded = await self._put(self.entry)
                except Exception as exc:
                    self._ack(exc)
                    raise
                if recorded is None:
                    self._state = "repeat"
                else:  # its session may be a new one: the one it had was closed meanwhile
                    self._state, self.entry = "recorded", recorded
                self._ack(recorded)
            return None if self._state == "repeat" else self.entry

    def committing(self) -> AbstractAsyncContextManager[bool]:
        """Around the final commit of its unit of work: True while it is still unrecorded,
        so that this commit carries it (then call ``committed`` right after the commit)."""
        return _Committing(self)

    def carried(self) -> bool:
        """Still unrecorded, so that the commit about to be made carries it."""
        return self._state == "unrecorded"

    def committed(self) -> None:
        """Its unit of work, carrying it, was committed."""
        self._state = "committed"
        self._ack(self.entry)

    def give_up(self) -> None:
        """Its processing ended: a channel still waiting hears that it was not recorded."""
        self._ack(MidtierError("the message could not be recorded; send it again"))

    def _ack(self, outcome: InboundEntry | BaseException | None) -> None:
        if self.acked.done():
            return
        if isinstance(outcome, BaseException):
            self.acked.set_exception(outcome)
            self.acked.exception()  # retrieved: nobody may be waiting any more
        else:
            self.acked.set_result(outcome)


class _Committing:
    """``Unrecorded.committing``: its lock held around the commit (a plain async context
    manager, cheaper than a generator-based one, once per message)."""

    __slots__ = ("_unrecorded",)

    def __init__(self, unrecorded: Unrecorded) -> None:
        self._unrecorded = unrecorded

    async def __aenter__(self) -> bool:
        await self._unrecorded._lock.acquire()
        return self._unrecorded.carried()

    async def __aexit__(self, *exc_info: object) -> None:
        self._unrecorded._lock.release()
