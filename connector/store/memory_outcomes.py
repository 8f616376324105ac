"""The in-process store's outcomes: how each leg ended for its provider, in a dict by leg.

It knows nothing of the rest of :class:`~connector.store.memory.MemoryStore`, whose unit of
work hands it the outcomes of a commit (``_keep_outcomes``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from connector.records import OutcomeCount, OutcomeEntry
from connector.store.common import as_utc

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def merged(old: OutcomeEntry | None, new: OutcomeEntry) -> OutcomeEntry:
    """What the store keeps of a leg's outcome when ``new`` comes (``OutcomeEntry``): an
    explicit one replaces, one that is not never replaces an explicit one; switched stays."""
    if old is None:
        return new
    kept = new if new.explicit or not old.explicit else old
    return kept.model_copy(
        update={"explicit": old.explicit or new.explicit, "switched": old.switched or new.switched}
    )


class MemoryOutcomes:
    """The :class:`~connector.store_protocol.OutcomeStore` part of the in-process store."""

    def __init__(self) -> None:
        self._outcomes: dict[str, OutcomeEntry] = {}

    def _keep_outcomes(self, outcomes: Iterable[OutcomeEntry]) -> None:
        for outcome in outcomes:
            found = self._outcomes.get(outcome.leg_id)
            self._outcomes[outcome.leg_id] = merged(found, outcome.model_copy(deep=True))

    async def outcome_counts(
        self, since: datetime, *, bucket_s: int | None = None
    ) -> list[OutcomeCount]:
        """Successes, totals and switches since ``since`` per provider and intent (and
        bucket of ``bucket_s`` seconds since the epoch)."""
        since = as_utc(since)
        sums: dict[tuple[str, str, datetime | None], list[int]] = defaultdict(lambda: [0, 0, 0])
        for o in self._outcomes.values():
            at = as_utc(o.at)
            if at < since:
                continue
            start = None
            if bucket_s is not None:
                seconds = (at - _EPOCH) // timedelta(seconds=bucket_s) * bucket_s
                start = _EPOCH + timedelta(seconds=seconds)
            row = sums[(o.provider, o.intent, start)]
            row[0] += o.success
            row[1] += 1
            row[2] += o.switched
        return [
            OutcomeCount(provider, intent, good, total, switches, start)
            for (provider, intent, start), (good, total, switches) in sorted(
                sums.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or _EPOCH)
            )
        ]

    async def outcomes_purge(self, before: datetime) -> int:
        """Forget the outcomes older than ``before``; return how many."""
        before = as_utc(before)
        old = [k for k, o in self._outcomes.items() if as_utc(o.at) < before]
        for key in old:
            del self._outcomes[key]
        return len(old)
