"""Bot Framework Web Chat (the official bundle, served by midtier) in real headless Chromium
against midtier's Direct Line: a bot answers, an agent on the desk takes over and hands back,
under the page's Content-Security-Policy with no violation.

Screenshots of each step go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from support.directline import SECRET, directline_midtier
from support.server import REPO, Running, agent

pytestmark = pytest.mark.browser

SHOTS = REPO / "test-artifacts" / "browser"
# Every CSP violation the page meets is reported to the console, to fail the test.
WATCH_CSP = """document.addEventListener('securitypolicyviolation', (e) =>
  console.error('CSP violation', e.violatedDirective, e.blockedURI));"""


async def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"bf-webchat-{name}.png"), full_page=True)


async def _open(browser: Browser, run: Running, problems: list[str]) -> Page:
    page = await browser.new_page(viewport={"width": 1100, "height": 800})
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    await page.add_init_script(WATCH_CSP)
    await page.goto(f"{run.base}/directline/")
    return page


async def _say(page: Page, text: str) -> None:
    box = page.get_by_label("Message input box")
    await box.fill(text)
    await box.press("Enter")


async def test_web_chat_talks_to_a_bot_then_an_agent_then_the_bot_again(
    tmp_path: Path, browser: Browser
) -> None:
    problems: list[str] = []
    async with directline_midtier(tmp_path) as run:
        page = await _open(browser, run, problems)
        await expect(page).to_have_title("Acme Pay support")
        others = page.locator(".webchat__bubble:not(.webchat__bubble--from-user)")
        mine = page.locator(".webchat__bubble--from-user")

        await _say(page, "hi")
        await expect(others.last).to_contain_text("Acme Pay help assistant")
        await expect(mine).to_have_count(1)
        await _say(page, "someone used my card without my permission")
        await expect(others.filter(has_text="passing you to")).to_have_count(1)
        await _shot(page, "1-switched")

        async with agent(run) as desk:
            queued = await desk.expect("queue", lambda f: bool(f["conversations"]))
            [item] = queued["conversations"]
            assert item["user"]["claims"] == {
                "sub": item["user"]["claims"]["sub"],
                "channel": "directline",
                "verified": False,
            }
            await desk.send(type="accept", conversation=item["conversation"])
            await expect(others.last).to_contain_text("Dana")
            await desk.send(
                type="send", conversation=item["conversation"], text="I've frozen your card."
            )
            # Web Chat renders markdown with typographic quotes (a curly apostrophe).
            await expect(others.last).to_contain_text(re.compile("I.ve frozen your card."))
            await _shot(page, "2-agent")
            await desk.send(type="resolve", conversation=item["conversation"])
            await expect(others.last).to_contain_text(re.compile("You.re back with"))
            await desk.expect("closed")

        await _say(page, "how do I reset my password")
        await expect(others.last).to_contain_text("Forgot password")
        # Web Chat marked every message sent: it saw each come back with its client id.
        await expect(mine).to_have_count(3)
        await expect(page.get_by_text("Send failed")).to_have_count(0)
        await expect(page.get_by_text("Sending")).to_have_count(0)
        await _shot(page, "3-back-with-the-bot")

        [session] = [s for s in await run.engine.store.list_sessions() if s.channel == "directline"]
        assert [leg.provider for leg in session.legs] == ["faq", "agents", "faq"]
        assert session.legs[1].close_reason == "resolved by agent Dana"
        assert session.user_id.startswith("dl_") and session.claims["verified"] is False
        transcript = await run.engine.store.transcript(session.id)
        assert [e.text for e in transcript if e.speaker == "user"] == [
            "hi",
            "someone used my card without my permission",
            "how do I reset my password",
        ]
        assert {"user", "bot", "agent", "system"} <= {e.speaker for e in transcript}
        assert SECRET not in await page.content()
    assert problems == []
