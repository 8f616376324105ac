"""CPU of one in-process bot delivery: the default deployment's FAQ bot on ``BotbuilderProvider``.

A web chat message as the core hands it to the provider (the channel's fields, an id, the
intent in ``channelData.midtier``) goes through ``deliver`` several thousand times; the bot
answers each with one text. Also timed apart: the message converted for the bot
(``to_botbuilder``) and its reply converted back (``to_midtier``)::

    .venv/bin/python benchmarks/bot_turn.py [--deliveries 3000] [--rounds 7]

Prints one table: process CPU time per delivery, the best and the median round.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bot_configs")]

from adapters.providers.botbuilder_inproc import BotbuilderProvider, to_botbuilder  # noqa: E402
from connector.activity import Activity, new_activity_id, now  # noqa: E402
from connector.config import ProviderConfig  # noqa: E402
from connector.context import SharedHttp  # noqa: E402
from connector.provider_protocol import HandoffContext  # noqa: E402
from connector.registry import provider_context  # noqa: E402
from connector.sessions import Leg, MidTierSession  # noqa: E402


class QuietHost:
    """The provider's host: the FAQ bot's message turns call nothing on it."""

    async def redeem(self, code: str, provider: str) -> dict[str, Any]:
        return {}


def delivered(text: str) -> Activity:
    """A web chat message as the core delivers it to the bot's leg."""
    activity = Activity(
        type="message",
        id=new_activity_id(),
        timestamp=now(),
        channel_id="webchat",
        from_={"id": "u1", "role": "user"},
        recipient={"id": "midtier", "role": "bot"},
        conversation={"id": "wc_conversation"},
        text=text,
    )
    meta = {"intent": "fees", "confidence": 0.91}
    return activity.model_copy(update={"channel_data": {"midtier": meta}})


def per_call_us(fn: Callable[[], object], count: int, rounds: int) -> list[float]:
    figures = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(count):
            fn()
        figures.append((time.process_time() - start) / count * 1e6)
    return figures


async def main(deliveries: int, rounds: int) -> None:
    config = ProviderConfig.model_validate({"kind": "botbuilder", "bot": "bots.faq:FaqBot"})
    context = provider_context(
        BotbuilderProvider,
        "faq",
        config,
        QuietHost(),
        data_dir=Path("data"),
        public_url="http://127.0.0.1:3978",
        http=SharedHttp(),
    )
    provider = BotbuilderProvider(context)
    await provider.start()
    session = MidTierSession(user_id="u1", channel="webchat", channel_conversation_id="wc_c")
    leg = Leg(channel="webchat", channel_conversation_id="wc_c", provider="faq")
    handoff = HandoffContext(session_id=session.id, user_id="u1", channel="webchat", reason="b")
    leg.provider_conversation_id = await provider.open(session, leg, handoff)
    messages = [delivered("how much are the fees?") for _ in range(deliveries)]
    for message in messages[: min(300, deliveries)]:  # warm-up
        await provider.deliver(leg, message)
    figures = []
    for _ in range(rounds):
        gc.collect()
        start = time.process_time()
        for message in messages:
            await provider.deliver(leg, message)
        figures.append((time.process_time() - start) / deliveries * 1e6)
    one = messages[0]
    [reply] = await provider._turn(leg, to_botbuilder(one))
    conversation_id = leg.provider_conversation_id
    rows = [
        ("one delivery", figures),
        (
            "the message for the bot (to_botbuilder)",
            per_call_us(lambda: to_botbuilder(one), deliveries, rounds),
        ),
        (
            "its reply back (to_midtier)",
            per_call_us(
                lambda: provider.adapter.to_midtier(reply, conversation_id), deliveries, rounds
            ),
        ),
    ]
    print("| what | CPU us, best round | median round |")
    print("|---|---|---|")
    for what, found in rows:
        print(f"| {what} | {min(found):.1f} | {statistics.median(found):.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(max(1, args.deliveries), max(1, args.rounds)))
