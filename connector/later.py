"""Calls made a fixed delay after they were asked for, unless withdrawn first, on one timer.

The typing indicator is shown for a turn that runs past ``session.typing_after_s``, which
almost no turn does. A timer per turn (``loop.call_later``) was created, pushed on the
loop's heap, cancelled and popped again for every message; here a turn costs an entry in a
dict. With one delay for all, calls come due in the order they were asked for, so the one
timer waits for the oldest entry still waiting.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable


class Later:
    """Runs each call ``delay`` seconds after ``start``, unless ``stop`` came first."""

    def __init__(self, delay: float) -> None:
        self._delay = delay
        self._waiting: dict[int, tuple[float, Callable[[], None]]] = {}  # oldest first
        self._keys = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, call: Callable[[], None]) -> int:
        """Run ``call`` after the delay, in the running loop; returns what ``stop`` takes."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # another loop (tests): what waited on the old one is gone
            self._waiting.clear()
            self._loop, self._timer = loop, None
        key = next(self._keys)
        due = loop.time() + self._delay
        self._waiting[key] = (due, call)
        if self._timer is None:
            self._timer = loop.call_at(due, self._due, loop)
        return key

    def stop(self, key: int) -> None:
        """Withdraw a call that has not run yet (one that ran, or was withdrawn, is ignored)."""
        self._waiting.pop(key, None)

    def _due(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        waiting = self._waiting
        calls = []
        while waiting:
            key = next(iter(waiting))
            due, call = waiting[key]
            if due > now:  # the oldest still waiting: nothing after it is due either
                self._timer = loop.call_at(due, self._due, loop)
                break
            del waiting[key]
            calls.append(call)
        for call in calls:
            call()


class Deadline:
    """``asyncio.timeout(delay)`` on a shared :class:`Later`: the block's task is cancelled
    when the delay has passed, and the block raises ``TimeoutError``. One per block.

    ``asyncio.timeout`` pushes a timer on the loop's heap for every block and cancels it
    again; a provider's every delivery runs in one, and almost none runs out.
    """

    __slots__ = ("_cancelling", "_fired", "_key", "_later", "_task")

    def __init__(self, later: Later) -> None:
        self._later = later
        self._fired = False

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadline must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._key = self._later.start(self._fire)

    def _fire(self) -> None:
        self._fired = True
        self._task.cancel()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        self._later.stop(self._key)
        # As asyncio.timeout: our cancel becomes TimeoutError, one from outside stays.
        cancelled = kind is not None and issubclass(kind, asyncio.CancelledError)
        if self._fired and self._task.uncancel() <= self._cancelling and cancelled:
            raise TimeoutError from exc
