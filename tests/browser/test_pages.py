"""The two pages in real headless Chromium: a customer and an agent hand a conversation around.

Screenshots of each step go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from support.readme import quickstart_conversation
from support.server import AGENT_TOKEN, REPO, Running, serve

from adapters.channels.webchat import HISTORY_PAGE
from connector.sessions import TranscriptEntry

pytestmark = pytest.mark.browser

SHOTS = REPO / "test-artifacts" / "browser"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(autouse=True)
def _agent_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIDTIER_AGENT_TOKEN", AGENT_TOKEN)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def _say(page: Page, text: str) -> None:
    await page.get_by_test_id("chat-input").fill(text)
    await page.get_by_test_id("chat-input").press("Enter")


async def test_customer_and_agent_pages_hand_a_conversation_around(
    tmp_path: Path, browser: Browser
) -> None:
    errors: list[str] = []
    async with serve(data_dir=tmp_path) as run:
        user = await browser.new_page(viewport={"width": 1280, "height": 800})
        user.on("pageerror", lambda exc: errors.append(str(exc)))
        await user.goto(f"{run.base}/")
        await expect(user.get_by_test_id("chat-status")).to_have_text("Connected")
        bot = user.locator('[data-testid="chat-message"][data-speaker="bot"]')
        system = user.locator('[data-testid="chat-message"][data-speaker="system"]')
        agent_said = user.locator('[data-testid="chat-message"][data-speaker="agent"]')

        await _say(user, "hi")
        await expect(bot.last).to_contain_text("Acme Pay help assistant")
        await _say(user, "someone used my card without my permission")
        await expect(system.last).to_contain_text("passing you to a support agent")
        await _shot(user, "1-customer-switched")
        resume = await user.evaluate("localStorage.getItem('midtier.webchat.resume')")
        conversation = resume.split(".")[0]
        session = await run.engine.store.by_channel("webchat", conversation)
        assert session is not None and [leg.provider for leg in session.legs] == ["faq", "agents"]

        desk = await browser.new_page(viewport={"width": 1280, "height": 800})
        desk.on("pageerror", lambda exc: errors.append(str(exc)))
        await desk.goto(f"{run.base}/agent")
        await desk.get_by_test_id("agent-token").fill(AGENT_TOKEN)
        await desk.get_by_test_id("agent-name").fill("Dana")
        await desk.get_by_test_id("agent-signin").click()
        waiting = desk.locator('[data-testid="queue-item"][data-status="waiting"]')
        await expect(waiting).to_have_count(1)
        await expect(waiting).to_contain_text("reported fraud")
        await _shot(desk, "2-agent-queue")
        await waiting.get_by_test_id("accept-button").click()
        await expect(agent_said.last).to_contain_text("Dana")
        view = desk.get_by_test_id("conversation-view")
        await expect(view.get_by_test_id("transcript")).to_contain_text(
            "someone used my card without my permission"
        )
        await desk.get_by_test_id("agent-input").fill("I've frozen your card.")
        await desk.get_by_test_id("agent-send").click()
        await expect(agent_said.last).to_contain_text("I've frozen your card.")
        await _say(user, "thank you so much")
        await expect(
            view.locator('[data-testid="transcript-entry"][data-speaker="user"]').last
        ).to_contain_text("thank you so much")
        await _shot(desk, "3-agent-chatting")

        # A reload resumes the same mid-tier session with its history.
        shown = await user.get_by_test_id("chat-message").count()
        await user.reload()
        await expect(user.get_by_test_id("chat-status")).to_have_text("Connected")
        await expect(user.get_by_test_id("chat-message")).to_have_count(shown)
        assert await user.evaluate("localStorage.getItem('midtier.webchat.resume')") == resume
        await _shot(user, "4-customer-reloaded")

        await desk.get_by_test_id("resolve-button").click()
        await expect(system.last).to_contain_text("You're back with the Acme Pay assistant")
        await _say(user, "how do I reset my password")
        await expect(bot.last).to_contain_text("Forgot password")
        await _shot(user, "5-customer-back-with-bot")
        await _shot(desk, "6-agent-resolved")

        session = await run.engine.store.by_channel("webchat", conversation)
        assert session is not None
        assert [leg.provider for leg in session.legs] == ["faq", "agents", "faq"]
        assert session.legs[1].close_reason == "resolved by agent Dana"
    assert errors == []


async def test_agent_page_refuses_a_wrong_token(tmp_path: Path, browser: Browser) -> None:
    async with serve(data_dir=tmp_path) as run:
        desk = await browser.new_page()
        await desk.goto(f"{run.base}/agent")
        await desk.get_by_test_id("agent-token").fill("not-the-token")
        await desk.get_by_test_id("agent-signin").click()
        await expect(desk.get_by_test_id("agent-error")).to_contain_text("Invalid or missing token")
        await _shot(desk, "7-agent-bad-token")


async def test_the_readme_conversation_reaches_the_agent_desk(
    tmp_path: Path, browser: Browser
) -> None:
    """What README.md's Quickstart tells a new user to try, typed into the page as written.

    Only ``data-testid``s and visible text drive the pages.
    """
    balance, dispute, fraud = quickstart_conversation()
    errors: list[str] = []
    async with serve(data_dir=tmp_path) as run:
        user = await browser.new_page(viewport={"width": 1280, "height": 800})
        user.on("pageerror", lambda exc: errors.append(str(exc)))
        await user.goto(f"{run.base}/")
        await expect(user.get_by_test_id("chat-status")).to_have_text("Connected")
        said = user.get_by_test_id("chat-message")

        await _say(user, balance)
        await expect(said.filter(has_text="Home tab")).to_have_count(1)
        await _say(user, dispute)
        await expect(said.filter(has_text="Which merchant is the charge from?")).to_have_count(1)
        await _say(user, fraud)
        await expect(said.filter(has_text="passing you to a support agent")).to_have_count(1)
        await expect(said.filter(has_text="How much was the charge")).to_have_count(0)
        await _shot(user, "8-readme-customer")

        desk = await browser.new_page(viewport={"width": 1280, "height": 800})
        desk.on("pageerror", lambda exc: errors.append(str(exc)))
        await desk.goto(f"{run.base}/agent")
        await desk.get_by_test_id("agent-token").fill(AGENT_TOKEN)
        await desk.get_by_test_id("agent-name").fill("Dana")
        await desk.get_by_test_id("agent-signin").click()
        waiting = desk.get_by_test_id("queue-waiting").get_by_test_id("queue-item")
        await expect(waiting).to_have_count(1)
        # its reason, written for people (the router's rule stays in the leg)
        await expect(waiting).to_contain_text("reported fraud")
        await _shot(desk, "9-readme-agent-queue")
    assert errors == []


async def _long_conversation(run: Running, page: Page, entries: int) -> None:
    """A conversation of ``entries`` more lines, written straight into the store."""
    await page.goto(f"{run.base}/")
    await expect(page.get_by_test_id("chat-status")).to_have_text("Connected")
    await _say(page, "hi")
    await expect(page.locator('[data-testid="chat-message"][data-speaker="bot"]')).to_have_count(1)
    resume = await page.evaluate("localStorage.getItem('midtier.webchat.resume')")
    session = await run.engine.store.by_channel("webchat", resume.split(".")[0])
    assert session is not None
    for n in range(1, entries + 1):
        await run.engine.store.append_transcript(
            session.id,
            TranscriptEntry(
                speaker="user" if n % 2 else "bot",
                text=f"line {n}",
                activity={"id": f"seeded-{n}", "from": {"name": "the Acme Pay assistant"}},
            ),
        )


async def test_a_long_conversation_opens_on_its_last_page_and_pages_back(
    tmp_path: Path, browser: Browser
) -> None:
    errors: list[str] = []
    async with serve(data_dir=tmp_path) as run:
        page = await browser.new_page(viewport={"width": 1000, "height": 800})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await _long_conversation(run, page, 1000)
        await page.reload()
        await expect(page.get_by_test_id("chat-status")).to_have_text("Connected")
        shown = page.get_by_test_id("chat-message")
        await expect(shown).to_have_count(HISTORY_PAGE)
        await expect(shown.last.locator(".bubble")).to_have_text("line 1000")
        earlier = page.get_by_test_id("chat-earlier")
        await expect(earlier).to_be_visible()
        log = page.get_by_test_id("chat-log")
        # Scrolling to the top loads the page before, above what the user was reading.
        await expect(shown.first.locator(".bubble")).to_have_text(f"line {1000 - HISTORY_PAGE + 1}")
        await log.evaluate("log => { log.scrollTop = 0; }")
        await expect(shown).to_have_count(2 * HISTORY_PAGE)
        await expect(shown.first.locator(".bubble")).to_have_text(
            f"line {1000 - 2 * HISTORY_PAGE + 1}"
        )
        was_first = shown.nth(HISTORY_PAGE)
        await expect(was_first.locator(".bubble")).to_have_text(f"line {1000 - HISTORY_PAGE + 1}")
        view = await log.bounding_box()
        box = await was_first.bounding_box()
        assert view is not None and box is not None
        assert view["y"] <= box["y"] < view["y"] + view["height"]  # still in sight
        # The button does the same.
        await earlier.click()
        await expect(shown).to_have_count(3 * HISTORY_PAGE)
        await _shot(page, "10-long-conversation")
    assert errors == []
