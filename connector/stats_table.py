"""``midtier stats``'s rows: the success rates per provider and intent, each with its
provider's total and judged as the router judges it (:mod:`connector.routing.conditions`),
and the table they print as."""

from __future__ import annotations

from dataclasses import dataclass

from connector.records import OutcomeCount
from connector.routing.conditions import Judgement, judged
from connector.routing.config import RoutingConfig, SuccessRate

NONE = "(none)"  # how the intent "" (none known) reads in the table
ALL = "(all)"  # the intent column of a provider's total row


@dataclass(frozen=True)
class Row:
    """One line of the table: a provider's outcomes for an intent (``intent`` None: over
    all its intents), and how the router judges them."""

    provider: str
    intent: str | None
    outcomes: int
    successes: int
    success_rate: float | None
    switches: int
    min_success_rate: float | None
    status: Judgement | None  # None: not judged (no minimum, a total, no intent)


def totals(buckets: list[OutcomeCount]) -> list[OutcomeCount]:
    """Bucketed counts summed per provider and intent, in the order the store gives."""
    sums: dict[tuple[str, str], list[int]] = {}
    for c in buckets:
        row = sums.setdefault((c.provider, c.intent), [0, 0, 0])
        row[0] += c.successes
        row[1] += c.total
        row[2] += c.switches
    return [OutcomeCount(p, i, good, n, switched) for (p, i), (good, n, switched) in sums.items()]


def table_rows(counts: list[OutcomeCount], routing: RoutingConfig | None) -> list[Row]:
    """A row per provider and intent (as counted, ordered by provider and intent) followed
    by its provider's total, each judged as the router does."""
    enough = (routing.success_rate if routing is not None else SuccessRate()).min_outcomes
    rows: list[Row] = []
    for provider in sorted({c.provider for c in counts}):
        route = routing.routes.get(provider) if routing is not None else None
        needed = route.min_success_rate if route is not None else None
        own = [c for c in counts if c.provider == provider]
        for c in own:
            rows.append(_row(provider, c.intent, c.successes, c.total, c.switches, needed, enough))
        rows.append(
            _row(
                provider,
                None,
                sum(c.successes for c in own),
                sum(c.total for c in own),
                sum(c.switches for c in own),
                needed,
                enough,
            )
        )
    return rows


def _row(
    provider: str,
    intent: str | None,
    good: int,
    total: int,
    switches: int,
    needed: float | None,
    enough: int,
) -> Row:
    rate = good / total if total else None
    # The router judges a provider per intent, and only the intents it knows (conditions).
    status = judged(good, total, needed, enough) if needed is not None and intent else None
    return Row(provider, intent, total, good, rate, switches, needed, status)


HEADER = ("provider", "intent", "outcomes", "successes", "rate", "switches", "minimum", "")
_RIGHT = {2, 3, 4, 5, 6}  # the number columns


def render(rows: list[Row]) -> str:
    """The rows as a table of aligned columns, numbers to the right."""
    cells = [HEADER] + [
        (
            row.provider,
            ALL if row.intent is None else row.intent or NONE,
            str(row.outcomes),
            str(row.successes),
            _percent(row.success_rate),
            str(row.switches),
            _percent(row.min_success_rate),
            row.status or "",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(
            cell.rjust(width) if i in _RIGHT else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in cells
    )


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
