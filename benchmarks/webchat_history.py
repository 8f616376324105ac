"""How long the web chat page takes to show a long conversation when it is opened again.

Starts midtier in process (the default deployment, SQLite in a temporary directory), writes
a conversation of N lines straight into its store, then opens the page in headless Chromium
with that conversation's resume token and times, in the page, from navigation start until
the newest line is on screen; then how long one page of older history takes to appear.

    .venv/bin/python benchmarks/webchat_history.py [--lines 1000] [--rounds 5]

Prints one table (milliseconds, median and worst of the rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from playwright.async_api import async_playwright  # noqa: E402
from support.chromium import CHROMIUM_ARGS, executable  # noqa: E402
from support.server import AGENT_TOKEN, Chatter, chat, serve  # noqa: E402

from connector.sessions import TranscriptEntry  # noqa: E402

SHOWN = """(text) => new Promise((done) => {
  const seen = () => [...document.querySelectorAll('[data-testid="chat-message"] .bubble')]
    .some((b) => b.textContent === text);
  if (seen()) return done(performance.now());
  new MutationObserver((_, observer) => {
    if (seen()) { observer.disconnect(); done(performance.now()); }
  }).observe(document.body, { childList: true, subtree: true });
})"""


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("MIDTIER_AGENT_TOKEN", AGENT_TOKEN)
    data = Path(tempfile.mkdtemp(prefix="midtier-bench-"))
    try:
        async with serve(data_dir=data) as run:
            async with chat(run) as (user, welcome):
                await Chatter(user).say("hi")
                await user.expect("message", lambda f: f["speaker"] == "bot")
            session = await run.engine.store.by_channel("webchat", welcome["conversation"])
            assert session is not None
            print(f"writing {args.lines} lines ...", file=sys.stderr)
            for n in range(1, args.lines + 1):
                await run.engine.store.append_transcript(
                    session.id,
                    TranscriptEntry(
                        speaker="user" if n % 2 else "bot",
                        text=f"line {n}",
                        activity={"id": f"bench-{n}", "from": {"name": "the Acme Pay assistant"}},
                    ),
                )
            opened: list[float] = []
            older: list[float] = []
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(
                    executable_path=executable(),
                    args=CHROMIUM_ARGS,
                )
                for _ in range(args.rounds):
                    page = await browser.new_page()
                    await page.add_init_script(
                        f"localStorage.setItem('midtier.webchat.resume', {welcome['resume']!r})"
                    )
                    await page.goto(f"{run.base}/", wait_until="commit")
                    opened.append(await page.evaluate(SHOWN, f"line {args.lines}"))
                    started = await page.evaluate("performance.now()")
                    await page.get_by_test_id("chat-earlier").click()
                    done = await page.evaluate(SHOWN, f"line {args.lines - 99}")
                    older.append(done - started)
                    await page.close()
                await browser.close()
    finally:
        shutil.rmtree(data, ignore_errors=True)
    print("| lines | newest line on screen (median / worst) | one older page (median / worst) |")
    print("|---|---|---|")
    print(
        f"| {args.lines} | {statistics.median(opened):.0f} / {max(opened):.0f} ms "
        f"| {statistics.median(older):.0f} / {max(older):.0f} ms |"
    )


if __name__ == "__main__":
    asyncio.run(main())
