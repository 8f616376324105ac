"""Try a channel locally, with no account on the platform: ``scripts/try-channel <kind>``.

Starts a fake platform on 127.0.0.1 (the platform's send API, recording what midtier sends)
and midtier (the default deployment plus the channel, pointed at the fake platform), then
posts webhooks signed exactly as the platform signs them, one per message given on the
command line (or typed, one per line), and prints what midtier sent back through the
platform's API. It uses the same kits as the channel contract suite.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from support.channel_kits import KITS
from support.channel_world import World, channel_world


async def _conversation(world: World, messages: list[str], user: str) -> None:
    print(f"midtier: {world.run.base}   webhook: {world.url}")
    print(f"fake {world.kit.kind} API: {world.platform.base_url}\n")
    shown = 0
    for text in messages:
        print(f"you> {text}")
        status, body, _ = await world.post(world.message(text, user=user))
        if not 200 <= status < 300:
            print(f"   webhook answered {status}: {body.decode(errors='replace')}")
            continue
        await world.run.engine.inbound.idle()
        # Replies leave through the outbox; give it a moment to reach the fake platform.
        for _ in range(40):
            replies = world.kit.replies(world.platform)
            if len(replies) > shown:
                break
            await asyncio.sleep(0.05)
        for reply in world.kit.replies(world.platform)[shown:]:
            print(f"  {world.kit.kind} <- {reply.text}")
        shown = len(world.kit.replies(world.platform))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/try-channel", description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=sorted(KITS), help="the channel to try")
    parser.add_argument("messages", nargs="*", help="what the user says (default: read stdin)")
    parser.add_argument("--user", default="user-1", help="the platform user id")
    args = parser.parse_args(argv)
    messages = args.messages or [line.strip() for line in sys.stdin if line.strip()]
    if not messages:
        messages = ["hi", "what's my balance?"]
    kit = KITS[args.kind]()

    async def run() -> None:
        with tempfile.TemporaryDirectory(prefix="midtier-try-") as tmp:
            async with channel_world(Path(tmp), kit) as world:
                await _conversation(world, messages, args.user)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
