"""Server CPU per user message, side by side: midtier and the ways botbuilder hosts a bot.

One run, one row after another on the same machine, each server in its own process on
127.0.0.1, its CPU time (user + system, from /proc, so Linux only) read over the timed part
only, after a warm-up:

* ``midtier-webchat``: ``midtier run`` on the embedded default (SQLite, the FAQ bot in
  process), N web chat WebSockets each sending M messages one after another, on the
  event loop ``midtier run`` takes by default (asyncio's own);
* ``midtier-webchat-uvloop``: the same on uvloop's event loop (``--loop uvloop``);
* ``midtier-telegram``: midtier with a Telegram channel, ``wrk`` posting webhooks (each
  update unique, with the secret-token header), the replies going to a fake Bot API in its
  own process; a message counts once its reply arrived there;
* ``midtier-telegram-uvloop``: the same on uvloop's event loop;
* ``cloudadapter``: the same FAQ bot hosted as botbuilder's samples do (``CloudAdapter``);
* ``legacy-adapter``: the same bot on ``BotFrameworkHttpAdapter``;
* ``bare-aiohttp``: an aiohttp handler that parses the JSON activity and answers JSON.

The HTTP rows get the same ``wrk`` load: one thread per connection (16), a ~600-byte
activity or update, every request unique. The botbuilder rows send ``deliveryMode:
expectReplies`` (the replies come back in the HTTP answer: the bot alone); with
``--connector-replies`` the replies go to ``serviceUrl``, a fake Connector service instead.

    .venv/bin/python benchmarks/message_cpu.py [--only ROW[,ROW]] [--conversations 16]
        [--messages 100] [--duration 10] [--pause-ms 0] [--connector-replies]
        [--instructions] [--profile [--profile-raw FILE]]

``wrk`` does not wait for a webhook's reply, only for its 200: midtier-telegram is run
flat out, and its reply latency is mostly the queue; ``--pause-ms`` paces every wrk
connection (a pause after each answer) for a reply latency below saturation.

``--instructions`` runs midtier under callgrind for instructions per message
(``message_cpu_callgrind.py``); ``--profile`` samples midtier with py-spy while the web
chat load runs and prints where its time goes (``message_cpu_profile.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import math
import sys
from collections.abc import Awaitable, Callable

import message_cpu_loads as loads
import message_cpu_rows as rows

ROWS = [
    "midtier-webchat",
    "midtier-webchat-uvloop",
    "midtier-telegram",
    "midtier-telegram-uvloop",
    "cloudadapter",
    "legacy-adapter",
    "bare-aiohttp",
]
MIDTIER = tuple(name for name in ROWS if name.startswith("midtier-"))
BASELINES = {"cloudadapter": "CloudAdapter", "legacy-adapter": "legacy", "bare-aiohttp": "bare"}


def _runner(name: str, options: rows.Options) -> Callable[[], Awaitable[rows.Row]] | str:
    """How to run a row, or why it cannot run here."""
    if not name.startswith("midtier-webchat") and not loads.wrk_available():
        return loads.WRK_MISSING
    if name in ("cloudadapter", "legacy-adapter") and not _has("botbuilder.integration.aiohttp"):
        return "botbuilder-integration-aiohttp is not installed (pip install '.[test]')"
    if name == "midtier-webchat":
        return lambda: rows.midtier_webchat(options)
    if name == "midtier-webchat-uvloop":
        return lambda: rows.midtier_webchat(options, loop="uvloop")
    if name == "midtier-telegram":
        return lambda: rows.midtier_telegram(options)
    if name == "midtier-telegram-uvloop":
        return lambda: rows.midtier_telegram(options, loop="uvloop")
    if name == "bare-aiohttp":
        return lambda: rows.bare(options)
    return lambda: rows.botbuilder(name, options)


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _ms(figures: tuple[float, float, float] | None) -> str:
    return " / ".join(f"{x:.1f}" for x in figures) if figures else "-"


def table(results: list[rows.Row], skipped: dict[str, str]) -> str:
    """The markdown table of the rows, then the ratios of server CPU per message."""
    lines = [
        "| row | bot | what is measured | messages | msg/s | server CPU/msg (us) "
        "| reply p50 / p95 / p99 ms | HTTP answer p50 / p95 / p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.bot} | {r.measured} | {r.messages:,} | {r.rate:,.0f} "
            f"| {r.cpu_us:,.0f} | {_ms(r.reply_ms)} | {_ms(r.http_ms)} |"
        )
    for name, why in skipped.items():
        lines.append(f"| {name} | skipped: {why} | | | | | | |")
    notes = [f"- {r.name}: {r.note}" for r in results if r.note]
    ratios = _ratios(results)
    for extra in (notes, ratios):
        lines += ["", *extra] if extra else []
    return "\n".join(lines)


def _ratios(results: list[rows.Row]) -> list[str]:
    by_name = {r.name: r for r in results}
    ours = [by_name[n] for n in MIDTIER if n in by_name]
    theirs = [by_name[n] for n in BASELINES if n in by_name]
    if not ours or not theirs:
        return []
    lines = [
        "| server CPU per message | " + " | ".join(r.name for r in ours) + " |",
        "|---|" + "---|" * len(ours),
    ]
    for base in theirs:
        label = BASELINES[base.name]
        if base.name == "cloudadapter":  # how many times cheaper midtier is
            cells = [_x(base.cpu_us / m.cpu_us) for m in ours]
            lines.append(f"| {label} / midtier | " + " | ".join(cells) + " |")
        else:
            cells = [_x(m.cpu_us / base.cpu_us) for m in ours]
            lines.append(f"| midtier / {label} | " + " | ".join(cells) + " |")
    return lines


def _x(ratio: float) -> str:
    if not math.isfinite(ratio):
        return "-"
    return f"{ratio:.1f}x" if ratio < 10 else f"{ratio:.0f}x"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated rows of: {', '.join(ROWS)}")
    parser.add_argument("--conversations", type=int, default=16, help="also wrk's connections")
    parser.add_argument("--messages", type=int, default=100, help="per web chat conversation")
    parser.add_argument("--warmup", type=int, default=5, help="web chat messages per conversation")
    parser.add_argument("--duration", type=int, default=10, help="seconds of each wrk row")
    parser.add_argument("--warmup-duration", type=int, default=2, help="wrk seconds first")
    parser.add_argument(
        "--pause-ms",
        type=int,
        default=0,
        help="wrk rows: each connection pauses this long after an answer (default: none)",
    )
    parser.add_argument(
        "--connector-replies",
        action="store_true",
        help="botbuilder rows: replies to serviceUrl (a fake Connector) instead of expectReplies",
    )
    parser.add_argument(
        "--instructions", action="store_true", help="midtier-webchat under callgrind only"
    )
    parser.add_argument(
        "--callgrind-out",
        help="--instructions: copy the two rounds' callgrind dumps into this directory "
        "(callgrind_annotate reads them; the second minus the first is the added messages')",
    )
    parser.add_argument(
        "--profile", action="store_true", help="midtier-webchat sampled by py-spy only"
    )
    parser.add_argument("--profile-raw", help="--profile: keep py-spy's raw stacks in this file")
    return parser


async def main() -> None:
    """Run the rows asked for and print the table."""
    args = _parser().parse_args()
    options = rows.Options(
        conversations=args.conversations,
        messages=args.messages,
        warmup=args.warmup,
        duration=args.duration,
        warmup_duration=args.warmup_duration,
        connector_replies=args.connector_replies,
        pause_ms=args.pause_ms,
    )
    if args.instructions:
        import message_cpu_callgrind

        await message_cpu_callgrind.main(options, args.callgrind_out)
        return
    if args.profile:
        import message_cpu_profile

        await message_cpu_profile.main(options, args.profile_raw)
        return
    wanted = args.only.split(",") if args.only else ROWS
    unknown = [name for name in wanted if name not in ROWS]
    if unknown:
        raise SystemExit(f"unknown rows: {', '.join(unknown)} (rows: {', '.join(ROWS)})")
    results: list[rows.Row] = []
    skipped: dict[str, str] = {}
    for name in wanted:
        runner = _runner(name, options)
        if isinstance(runner, str):
            print(f"skipping {name}: {runner}", file=sys.stderr)
            skipped[name] = runner
            continue
        print(f"starting {name} ...", file=sys.stderr)
        results.append(await runner())
    print(table(results, skipped))


if __name__ == "__main__":
    asyncio.run(main())
