"""The code of another git revision against this checkout's, run alternately on one machine.

Single runs of ``message_cpu.py`` spread by 20-40% on a shared machine, more than most
changes move: this runs both checkouts' ``message_cpu.py`` one after the other, several
rounds, and prints each round and the medians of server CPU per message, of midtier's cost
against the legacy adapter measured in the same run (the figure that travels), and of the
web chat's p99; with ``--instructions`` also each checkout's instructions per message,
which do not move with the machine's noise::

    .venv/bin/python benchmarks/message_cpu_ab.py REV [--rounds 6] [--messages 100]
        [--instructions]

REV is checked out in a temporary git worktree (removed at the end) and runs on this
checkout's ``.venv``, each server from its own checkout. Rows of this script need the
legacy adapter's row, so ``wrk`` and ``botbuilder-integration-aiohttp`` (``.[test]``).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROWS = "midtier-webchat,legacy-adapter"


@dataclass
class Round:
    """What one run of one checkout gave."""

    webchat_us: float
    legacy_us: float
    p99_ms: float

    @property
    def ratio(self) -> float:
        return self.webchat_us / self.legacy_us


def _cells(output: str, row: str) -> list[str]:
    for line in output.splitlines():
        if line.startswith(f"| {row} |"):
            return [c.strip() for c in line.strip().strip("|").split("|")]
    raise SystemExit(f"no {row} row in the output:\n{output}")


def parse(output: str) -> Round:
    """The figures of a ``message_cpu.py --only midtier-webchat,legacy-adapter`` table."""
    webchat, legacy = _cells(output, "midtier-webchat"), _cells(output, "legacy-adapter")
    number = re.compile(r"[\d,.]+")

    def us(cells: list[str]) -> float:
        return float(cells[5].replace(",", ""))

    p99 = [float(x.replace(",", "")) for x in number.findall(webchat[6])][-1]
    return Round(us(webchat), us(legacy), p99)


def instructions(output: str) -> float:
    """Instructions per message (M) from a ``message_cpu.py --instructions`` table."""
    return float(_cells(output, "midtier-webchat, one more message")[3].split()[0])


def run(checkout: Path, *args: str) -> str:
    """``message_cpu.py`` of ``checkout`` with this interpreter; its standard output."""
    script = checkout / "benchmarks" / "message_cpu.py"
    done = subprocess.run(
        [sys.executable, str(script), *args], cwd=checkout, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{script} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def _worktree(rev: str, where: Path) -> Path:
    path = where / "other"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), rev],
        check=True,
        capture_output=True,
    )
    return path


def _remove(path: Path) -> None:
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
        check=False,
        capture_output=True,
    )


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(rev: str, rounds: dict[str, list[Round]], counts: dict[str, float]) -> str:
    """The rounds and their medians, as markdown."""
    names = {"other": rev, "this": "this checkout"}
    lines = [
        "| code | round | web chat CPU/msg (us) | legacy CPU/msg (us) | midtier / legacy "
        "| web chat p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for key in ("other", "this"):
        for i, r in enumerate(rounds[key], 1):
            lines.append(
                f"| {names[key]} | {i} | {r.webchat_us:,.0f} | {r.legacy_us:,.0f} "
                f"| {r.ratio:.2f}x | {r.p99_ms:.1f} |"
            )
    lines += [
        "",
        "| code | web chat CPU/msg, median | midtier / legacy, median (min-max) "
        "| p99 ms, median | instructions per message |",
        "|---|---|---|---|---|",
    ]
    for key in ("other", "this"):
        got = rounds[key]
        ratios = [r.ratio for r in got]
        count = f"{counts[key]:.2f} M" if key in counts else "-"
        lines.append(
            f"| {names[key]} | {_median([r.webchat_us for r in got]):,.0f} us "
            f"| {_median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) "
            f"| {_median([r.p99_ms for r in got]):.1f} | {count} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("rev", help="the git revision to compare this checkout with")
    parser.add_argument("--rounds", type=int, default=6, help="runs of each checkout")
    parser.add_argument("--messages", type=int, default=100, help="per web chat conversation")
    parser.add_argument(
        "--instructions", action="store_true", help="also instructions per message, once each"
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    rounds: dict[str, list[Round]] = {"other": [], "this": []}
    counts: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        other = _worktree(args.rev, Path(tmp))
        try:
            checkouts = {"other": other, "this": REPO}
            for i in range(1, args.rounds + 1):
                for key, checkout in checkouts.items():
                    print(f"round {i}/{args.rounds}: {key} ...", file=sys.stderr, flush=True)
                    output = run(checkout, "--only", ROWS, "--messages", str(args.messages))
                    rounds[key].append(parse(output))
            if args.instructions:
                for key, checkout in checkouts.items():
                    print(f"instructions: {key} (about 30 s) ...", file=sys.stderr, flush=True)
                    counts[key] = instructions(run(checkout, "--instructions"))
        finally:
            _remove(other)
    print(report(args.rev, rounds, counts))


if __name__ == "__main__":
    main()
