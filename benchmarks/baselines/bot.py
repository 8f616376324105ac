"""What the botbuilder baselines share: the bot they host and how they are started.

Each baseline hosts the default deployment's FAQ bot (``bot_configs/bots/faq.py``), the bot
midtier runs in process, with its conversation state in botbuilder's ``MemoryStorage`` as
botbuilder's samples keep it. A message turn of that bot never reads its state, so the
storage costs nothing here and nothing in midtier. The bot reads the intent from the
activity's ``channelData.midtier.intent``: midtier puts its classifier's answer there; the
load generator puts the same intent in each activity it sends to a baseline, so every row
gets the same answers to the same questions, without midtier's intent classification.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from pathlib import Path
from typing import Any

from botbuilder.core import TurnContext

REPO = Path(__file__).resolve().parents[2]


def faq_bot() -> Any:
    """The default deployment's FAQ bot, its state in ``MemoryStorage``."""
    for path in (REPO, REPO / "bot_configs"):  # as midtier run puts the config dir on the path
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    from botbuilder.core import ConversationState, MemoryStorage

    faq = importlib.import_module("bots.faq")

    class SampleFaqBot(faq.FaqBot):  # type: ignore[misc,name-defined]
        """FaqBot with the storage of botbuilder's samples in place of midtier's legs."""

        def __init__(self) -> None:
            super().__init__()
            self.conversation_state = ConversationState(MemoryStorage())
            self._state = self.conversation_state.create_property("acme")

    return SampleFaqBot()


def port_argument(description: str) -> int:
    """The ``--port`` a baseline listens on (always on 127.0.0.1)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    return int(parser.parse_args().port)


async def on_error(context: TurnContext, error: Exception) -> None:
    """The samples' turn error handler: log, and tell the user."""
    print(f"\n [on_turn_error] unhandled error: {error}", file=sys.stderr)
    traceback.print_exc()
    await context.send_activity("The bot encountered an error or bug.")
