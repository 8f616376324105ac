"""``midtier stats --plot FILE.png``: each provider's success rate and switches away over
time, one point per time bucket, in two panels sharing the time axis.

A bucket without outcomes has no rate: its point is left out and the line breaks there
(it has no switches either: zero). matplotlib (``pip install 'midtier[plots]'``) is
imported when drawing, so ``ImportError`` says it is missing; the PNG replaces ``path``
whole (:func:`connector.files.replacing_bytes`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connector.files import replacing_bytes
from connector.records import OutcomeCount

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def bucket_starts(since: datetime, until: datetime, bucket_s: int) -> list[datetime]:
    """The start of every bucket from the one holding ``since`` to the one holding
    ``until`` (buckets start at multiples of ``bucket_s`` since the epoch, as the store's)."""
    step = timedelta(seconds=bucket_s)
    start = _EPOCH + (since.astimezone(UTC) - _EPOCH) // step * step
    starts = []
    while start <= until:
        starts.append(start)
        start += step
    return starts


def series(
    buckets: list[OutcomeCount], starts: list[datetime]
) -> dict[str, tuple[list[float | None], list[int]]]:
    """Per provider (over all the intents counted), the success rate in each bucket of
    ``starts`` (None: no outcomes) and the switches away."""
    sums: dict[str, dict[datetime, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    for c in buckets:
        if c.start is None:
            continue
        row = sums[c.provider][c.start.astimezone(UTC)]
        row[0] += c.successes
        row[1] += c.total
        row[2] += c.switches
    found = {}
    for provider in sorted(sums):
        rates: list[float | None] = []
        switches: list[int] = []
        for start in starts:
            good, total, switched = sums[provider].get(start, (0, 0, 0))
            rates.append(good / total if total else None)
            switches.append(switched)
        found[provider] = (rates, switches)
    return found


def draw(
    buckets: list[OutcomeCount], since: datetime, until: datetime, bucket_s: int, path: Path
) -> None:
    """The PNG at ``path``: success rate (top) and switches away (bottom) per bucket."""
    import io

    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    starts = bucket_starts(since, until, bucket_s)
    found = series(buckets, starts)
    step = timedelta(seconds=bucket_s)
    middles = [start + step / 2 for start in starts]
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6), height_ratios=(3, 2))
    width = step / max(1, len(found) + 1) / timedelta(days=1)  # bar width in days
    for n, (provider, (rates, switches)) in enumerate(found.items()):
        line = top.plot(
            middles, [float("nan") if r is None else 100 * r for r in rates], marker="o"
        )
        line[0].set_label(provider)
        offset = (n - (len(found) - 1) / 2) * step / max(1, len(found) + 1)
        bottom.bar(
            [m + offset for m in middles],
            switches,
            width=width,
            color=line[0].get_color(),
            label=provider,
        )
    top.set_ylim(-5, 105)
    top.set_ylabel("success rate (%)")
    top.grid(True, alpha=0.3)
    bottom.set_ylabel("switches away")
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.grid(True, axis="y", alpha=0.3)
    bottom.set_xlim(starts[0], starts[-1] + step)
    hours = bucket_s / 3600
    every = f"{hours:g} h" if hours < 24 else f"{hours / 24:g} d"
    top.set_title(f"outcomes per {every} (UTC)" if found else "no outcomes in this window")
    if found:
        top.legend(loc="best", fontsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    data = io.BytesIO()
    figure.savefig(data, format="png", dpi=100)
    plt.close(figure)
    with replacing_bytes(path, prefix=f".{path.name}.") as f:
        f.write(data.getvalue())
