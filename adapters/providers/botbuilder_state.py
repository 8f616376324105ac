"""botbuilder state kept with midtier's legs, committed with each turn (kind ``botbuilder``).

A bot that keeps its ``ConversationState`` / ``UserState`` in :class:`LegStorage` (instead
of ``MemoryStorage``) has it stored with the leg it serves, in the same commit as the replies
of the turn that changed it: it survives restarts, and a turn that a crash interrupted leaves
no trace in it, so a message processed again after a crash is, for the bot, a message it sees
once. Values must be JSON (dicts, lists, strings, numbers).
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from copy import deepcopy
from typing import Any

from botbuilder.core import Storage

from connector.sessions import Leg

STATE_KEY = "botbuilder_state"  # where LegStorage keeps a bot's state in ``leg.data``

# The leg whose turn the bot runs now (LegStorage reads and writes its data).
_turn_leg: ContextVar[Leg | None] = ContextVar("midtier_botbuilder_leg", default=None)


class LegStorage(Storage):  # type: ignore[misc]
    """botbuilder ``Storage`` kept in the data of the leg the bot is serving.

    It needs no configuration: ``ConversationState(LegStorage())``. Reads and writes apply
    to the leg of the turn in progress, which the core saves with the turn.
    """

    @staticmethod
    def _data() -> dict[str, Any]:
        leg = _turn_leg.get()
        if leg is None:
            raise RuntimeError(
                "LegStorage is used outside a turn that midtier runs; send proactive "
                "messages through adapter.continue_conversation(reference, callback)"
            )
        stored: dict[str, Any] = leg.data.setdefault(STATE_KEY, {})
        return stored

    async def read(self, keys: list[str]) -> dict[str, Any]:
        stored = self._data()
        return {key: deepcopy(stored[key]) for key in keys if key in stored}

    async def write(self, changes: dict[str, Any]) -> None:
        stored = self._data()
        for key, value in changes.items():
            try:  # only JSON goes into the store; a copy, so later changes do not leak in
                stored[key] = json.loads(json.dumps(value))
            except (TypeError, ValueError) as exc:
                raise TypeError(f"bot state under {key!r} is not JSON: {exc}") from exc

    async def delete(self, keys: list[str]) -> None:
        stored = self._data()
        for key in keys:
            stored.pop(key, None)


class serving:  # named as the function it was: ``with serving(leg):``
    """The bot's turn in the block serves ``leg``: LegStorage reads and writes its data.

    A plain context manager (one per turn): a generator-based one costs twice as much."""

    __slots__ = ("_leg", "_token")

    def __init__(self, leg: Leg) -> None:
        self._leg = leg

    def __enter__(self) -> None:
        self._token = _turn_leg.set(self._leg)

    def __exit__(self, *exc_info: object) -> None:
        _turn_leg.reset(self._token)


__all__ = ["STATE_KEY", "LegStorage", "serving"]
