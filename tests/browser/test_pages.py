"""The two pages in real headless Chromium: a customer and an agent hand a conversation around.

Screenshots of each step go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

import pytest
import yaml
from playwright.async_api import Browser, Page, expect
from support.readme import quickstart_conversation
from support.server import AGENT_TOKEN, DEFAULT_CONFIG, REPO, Chatter, Frames, Running, chat, serve

from adapters.channels.webchat_frames import HISTORY_PAGE
from connector.sessions import TranscriptEntry

pytestmark = pytest.mark.browser

SHOTS = REPO / "test-artifacts" / "browser"


@pytest.fixture(autouse=True)
def _agent_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIDTIER_AGENT_TOKEN", AGENT_TOKEN)


async def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def _chat_page(browser: Browser, run: Running, errors: list[str]) -> Page:
    """The web chat page, connected; its script errors go to ``errors``."""
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{run.base}/")
    await expect(page.get_by_test_id("chat-status")).to_have_text("Connected")
    return page


async def _say(page: Page, text: str) -> None:
    await page.get_by_test_id("chat-input").fill(text)
    await page.get_by_test_id("chat-input").press("Enter")


async def test_customer_and_agent_pages_hand_a_conversation_around(
    tmp_path: Path, browser: Browser
) -> None:
    errors: list[str] = []
    async with serve(data_dir=tmp_path) as run:
        user = await _chat_page(browser, run, errors)
        bot = user.locator('[data-testid="chat-message"][data-speaker="bot"]')
        system = user.locator('[data-testid="chat-message"][data-speaker="system"]')
        agent_said = user.locator('[data-testid="chat-message"][data-speaker="agent"]')

        await _say(user, "hi")
        await expect(bot.last).to_contain_text("Acme Pay help assistant")
        # The user rates the bot's answer; the bar thanks them, and asks again of whoever
        # answers next.
        rating = user.get_by_test_id("chat-rating")
        await expect(rating).to_be_visible()
        await expect(rating).to_contain_text("Was this helpful?")
        await _shot(user, "0-customer-asked-to-rate")
        await user.get_by_test_id("rate-up").click()
        await expect(rating).to_contain_text("Thanks for telling us.")
        await expect(user.get_by_test_id("rate-up")).to_be_hidden()
        await _say(user, "someone used my card without my permission")
        await expect(system.filter(has_text="passing you to a support agent")).to_have_count(1)
        await expect(system.last).to_contain_text("No agent is signed in")
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

        await expect(user.get_by_test_id("rate-down")).to_be_visible()  # an agent answered
        await desk.get_by_test_id("disposition").select_option("not_resolved")
        await desk.get_by_test_id("resolve-button").click()
        await expect(system.last).to_contain_text("You're back with the Acme Pay assistant")
        await _say(user, "how do I reset my password")
        await expect(bot.last).to_contain_text("Forgot password")
        await _shot(user, "5-customer-back-with-bot")
        await _shot(desk, "6-agent-resolved")

        session = await run.engine.store.by_channel("webchat", conversation)
        assert session is not None
        assert [leg.provider for leg in session.legs] == ["faq", "agents", "faq"]
        assert session.legs[1].close_reason == "resolved by agent Dana (not_resolved)"
        counts = {
            (c.provider, c.intent): (c.successes, c.total)
            for c in await run.engine.store.outcome_counts(session.legs[0].opened_at)
        }
        assert counts == {("faq", "greet"): (1, 1), ("agents", "report_fraud"): (0, 1)}
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
        user = await _chat_page(browser, run, errors)
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
        # The button does the same. Its click is dispatched where it is: a click by pointer
        # would first scroll it into view, and reaching the top loads a page by itself.
        await earlier.dispatch_event("click")
        await expect(shown).to_have_count(3 * HISTORY_PAGE)
        await _shot(page, "10-long-conversation")


GREETING = "from the support team"


async def _desk_page(browser: Browser, run: Running, name: str, errors: list[str]) -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{run.base}/agent")
    await page.get_by_test_id("agent-token").fill(AGENT_TOKEN)
    await page.get_by_test_id("agent-name").fill(name)
    await page.get_by_test_id("agent-signin").click()
    await expect(page.get_by_test_id("agent-status")).to_have_text("Connected")
    return page


async def _to_the_desk(user: Frames) -> Chatter:
    me = Chatter(user)
    await me.say("hi")
    await user.expect("message", lambda f: f["speaker"] == "bot")
    await me.say("I need to talk to a person")
    await user.expect("message", lambda f: f["speaker"] == "system")
    return me


# Clicks Accept at the wall-clock time ``at`` (ms), so that two pages click together.
_CLICK_ACCEPT_AT = """(at) => new Promise((resolve) => {
  setTimeout(() => {
    const button = document.querySelector('[data-testid="accept-button"]');
    if (!button || button.disabled) { resolve(false); return; }
    button.click();
    resolve(true);
  }, Math.max(0, at - Date.now()));
})"""


async def test_two_agents_accept_the_same_conversation_and_exactly_one_gets_it(
    tmp_path: Path, browser: Browser
) -> None:
    errors: list[str] = []
    async with serve(data_dir=tmp_path) as run:
        pages = [await _desk_page(browser, run, name, errors) for name in ("Ann", "Bob")]
        async with chat(run) as (user, _):
            await _to_the_desk(user)
            for page in pages:
                card = page.locator('[data-testid="queue-item"][data-status="waiting"]')
                await expect(card).to_have_count(1)
                await expect(card.get_by_test_id("last-message")).to_have_text(
                    "I need to talk to a person"
                )
                await expect(card.get_by_test_id("accept-button")).to_be_enabled()
            # Both click Accept at the same moment, before either hears of the other.
            at = time.time() * 1000 + 300
            clicked = await asyncio.gather(*(page.evaluate(_CLICK_ACCEPT_AT, at) for page in pages))
            assert clicked == [True, True]
            for page in pages:
                assigned = page.locator('[data-testid="queue-item"][data-status="assigned"]')
                await expect(assigned).to_have_count(1)
            mine = [
                await page.get_by_test_id("my-conversations").get_by_test_id("queue-item").count()
                for page in pages
            ]
            assert sorted(mine) == [0, 1]
            (winner, winner_name), (loser, _) = sorted(
                zip(pages, ("Ann", "Bob"), strict=True),
                key=lambda p: -mine[pages.index(p[0])],
            )
            await expect(loser.get_by_test_id("agent-notice")).to_contain_text(
                f"{winner_name} already took this conversation."
            )
            taken = loser.get_by_test_id("queue-others").get_by_test_id("queue-item")
            await expect(taken).to_contain_text(f"With {winner_name}")
            await expect(loser.get_by_test_id("accept-button")).to_have_count(0)
            await _shot(loser, "8-agent-lost-the-race")
            await _shot(winner, "9-agent-won-the-race")

            await winner.get_by_test_id("agent-input").fill("How can I help?")
            await winner.get_by_test_id("agent-send").click()
            await user.expect("message", lambda f: f["text"] == "How can I help?")
            greetings = [f for f in user.of("message") if GREETING in f["text"]]
            assert len(greetings) == 1 and winner_name in greetings[0]["text"]
            assert not any("No agent is signed in" in f["text"] for f in user.of("message"))
    assert errors == []


async def test_the_desk_shows_the_customer_typing_and_passes_the_agent_typing_on(
    tmp_path: Path, browser: Browser
) -> None:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config)
    providers = yaml.safe_load((config / "providers.yaml").read_text())
    providers["providers"]["agents"]["agent_typing"] = True
    (config / "providers.yaml").write_text(yaml.safe_dump(providers))
    errors: list[str] = []
    async with serve(config, data_dir=tmp_path / "data") as run, chat(run) as (user, _):
        me = await _to_the_desk(user)
        desk = await _desk_page(browser, run, "Dana", errors)
        card = desk.get_by_test_id("queue-item")
        await card.get_by_test_id("accept-button").click()
        await user.expect("message", lambda f: GREETING in f["text"])

        # The customer types: the card and the open conversation say so, until they send.
        indicator = desk.get_by_test_id("typing-indicator")
        await expect(indicator).to_be_hidden()
        await user.send(type="typing")  # what the page sends while the customer types
        await expect(indicator).to_have_text("Customer is typing…")
        await expect(card.locator('[data-role="typing"]')).to_be_visible()
        await _shot(desk, "10-agent-sees-customer-typing")
        await me.say("are you still there?")
        await expect(indicator).to_be_hidden()
        await expect(card.get_by_test_id("last-message")).to_have_text("are you still there?")

        # The agent types: the customer's channel gets a typing activity from Dana.
        await desk.get_by_test_id("agent-input").press_sequentially("Yes, one moment")
        typing = await user.expect("typing", lambda f: f["speaker"] == "agent")
        assert typing["from"]["name"] == "Dana"

        # A reload signs back in with the session alone: same agent, same conversations.
        stored = await desk.evaluate("JSON.stringify(Object.assign({}, sessionStorage))")
        assert AGENT_TOKEN not in stored and "midtier.agent.session" in json.loads(stored)
        await desk.reload()
        await expect(desk.get_by_test_id("agent-status")).to_have_text("Connected")
        await expect(
            desk.get_by_test_id("my-conversations").get_by_test_id("queue-item")
        ).to_have_count(1)
    assert errors == []


async def test_both_pages_show_that_the_other_side_is_typing(
    tmp_path: Path, browser: Browser
) -> None:
    errors: list[str] = []
    async with serve(data_dir=tmp_path) as run:
        user = await _chat_page(browser, run, errors)
        await _say(user, "I need to talk to a person")
        await expect(user.get_by_test_id("chat-message").last).to_contain_text("No agent")
        desk = await _desk_page(browser, run, "Dana", errors)
        await desk.get_by_test_id("queue-item").get_by_test_id("accept-button").click()
        await expect(user.get_by_test_id("chat-message").last).to_contain_text(GREETING)

        # The agent types: the customer's page says who is typing, until the message comes.
        typing = user.get_by_test_id("chat-typing")
        await expect(typing).to_be_hidden()
        await desk.get_by_test_id("agent-input").press_sequentially("Let me check")
        await expect(typing).to_be_visible()
        await expect(typing).to_have_text("Dana is typing")
        await _shot(user, "11-customer-sees-agent-typing")
        await desk.get_by_test_id("agent-input").press("Enter")
        await expect(user.get_by_test_id("chat-message").last).to_contain_text("Let me check")
        await expect(typing).to_be_hidden()

        # The customer types: the desk says so.
        indicator = desk.get_by_test_id("typing-indicator")
        await expect(indicator).to_be_hidden()
        await user.get_by_test_id("chat-input").press_sequentially("my card ends in")
        await expect(indicator).to_have_text("Customer is typing…")
    assert errors == []
