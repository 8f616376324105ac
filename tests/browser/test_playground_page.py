"""The routing playground page in real headless Chromium, against a real server.

Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from support.server import AGENT_TOKEN, REPO, Running, serve

from connector.sessions import MidTierSession

pytestmark = pytest.mark.browser

SHOTS = REPO / "test-artifacts" / "browser"
FRAUD = "someone used my card without my permission"
SESSION_KEY = "midtier.playground.session"


@pytest.fixture(autouse=True)
def _agent_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIDTIER_AGENT_TOKEN", AGENT_TOKEN)


async def _playground(browser: Browser, run: Running, errors: list[str]) -> Page:
    page = await browser.new_page(viewport={"width": 1200, "height": 900})
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{run.base}/agent/playground")
    return page


async def _explain(page: Page, text: str, token: str | None = None) -> None:
    if token is not None:
        await page.get_by_test_id("playground-token").fill(token)
    await page.get_by_test_id("playground-text").fill(text)
    await page.get_by_test_id("playground-submit").click()


async def _provider_for(run: Running, text: str) -> str:
    """Who the server's own router picks for ``text`` in a new conversation."""
    intent = await run.engine.understanding.read(text)
    session = MidTierSession(user_id="u", channel="webchat", channel_conversation_id="c")
    provider = run.engine.router.decide(session, intent).provider
    assert provider is not None
    return provider


async def test_a_designer_sees_the_ranking_decision_and_every_condition_of_each_route(
    tmp_path: Path, browser: Browser
) -> None:
    errors: list[str] = []
    async with serve(data_dir=tmp_path) as run:
        page = await _playground(browser, run, errors)
        await _explain(page, FRAUD, token=AGENT_TOKEN)
        result = page.get_by_test_id("playground-result")
        await expect(result.get_by_test_id("decision-provider")).to_have_text(
            await _provider_for(run, FRAUD)
        )
        await expect(result.get_by_test_id("decision-action")).to_have_text("open")
        await expect(result.get_by_test_id("decision-summary")).to_have_text("reported fraud")
        await expect(result.get_by_test_id("decision-reason")).to_contain_text("report_fraud")
        await expect(result.get_by_test_id("explained-intent")).to_contain_text("report_fraud")
        await expect(result.get_by_test_id("ranking-row").first).to_contain_text("report_fraud")
        routes = result.get_by_test_id("route")
        await expect(routes).to_have_count(len(run.engine.config.routing.routes))
        disputes = result.locator('[data-testid="route"][data-provider="disputes"]')
        await expect(disputes).to_contain_text("not eligible")
        min_conf = disputes.locator('[data-testid="condition"][data-name="min_confidence"]')
        await expect(min_conf).to_contain_text("ok")
        health = result.locator('[data-testid="condition"][data-name="health"]')
        await expect(health).to_have_count(len(run.engine.config.routing.routes))
        await expect(health.first).to_contain_text("healthy")
        await expect(page.get_by_test_id("playground-error")).to_be_empty()
        await page.screenshot(path=str(_shot("playground-1-fraud")), full_page=True)
    assert not errors


async def test_later_questions_go_without_the_token_and_show_failing_conditions_as_text(
    tmp_path: Path, browser: Browser
) -> None:
    errors: list[str] = []
    async with serve(data_dir=tmp_path) as run:
        page = await _playground(browser, run, errors)
        await _explain(page, FRAUD, token=AGENT_TOKEN)
        result = page.get_by_test_id("playground-result")
        await expect(result.get_by_test_id("decision-provider")).to_have_count(1)
        # The token is not kept; the signed session the answer brought is, for this tab.
        kept = await page.evaluate(f"sessionStorage.getItem('{SESSION_KEY}')")
        assert kept.startswith("v1.") and AGENT_TOKEN not in kept
        stored = await page.evaluate("JSON.stringify({...localStorage, ...sessionStorage})")
        assert AGENT_TOKEN not in stored
        await expect(page.get_by_test_id("playground-token")).to_be_hidden()

        # The disputes bot's circuit opens: the next answer shows its health failing, and
        # what the server sends back is shown as text, never as markup.
        pool = run.engine.pool
        for _ in range(pool.breakers.failures):
            pool.mark_failure("disputes")
        tricky = 'I want to dispute a charge <img src=x onerror="window.hacked=1">'
        await _explain(page, tricky)
        await expect(result.get_by_test_id("decision-provider")).to_have_text(
            await _provider_for(run, tricky)
        )
        disputes = result.locator('[data-testid="route"][data-provider="disputes"]')
        health = disputes.locator('[data-testid="condition"][data-name="health"]')
        await expect(health).to_have_attribute("data-holds", "false")
        await expect(health).to_contain_text("fail")
        await expect(health).to_contain_text("circuit open")
        await expect(disputes).to_contain_text("not eligible")
        await expect(result).to_contain_text('<img src=x onerror="window.hacked=1">')
        assert await result.locator("img").count() == 0
        assert await page.evaluate("window.hacked === undefined")
        await page.screenshot(path=str(_shot("playground-2-circuit-open")), full_page=True)
        assert await run.engine.store.list_sessions() == []
    assert not errors


async def test_a_wrong_token_shows_a_clear_error_on_the_page(
    tmp_path: Path, browser: Browser
) -> None:
    errors: list[str] = []
    async with serve(data_dir=tmp_path) as run:
        page = await _playground(browser, run, errors)
        await _explain(page, FRAUD, token="not-the-agent-token-0000")
        await expect(page.get_by_role("alert")).to_have_text(
            "Not signed in: invalid agent token or session"
        )
        await expect(page.get_by_test_id("decision-provider")).to_have_count(0)
        await expect(page.get_by_test_id("playground-token")).to_be_visible()
        assert await page.evaluate(f"sessionStorage.getItem('{SESSION_KEY}')") is None
        await page.screenshot(path=str(_shot("playground-3-wrong-token")), full_page=True)

        # A bad question is said plainly too, and the right token then works.
        await _explain(page, "hello", token=AGENT_TOKEN)
        await expect(page.get_by_test_id("decision-provider")).to_have_count(1)
        await page.get_by_test_id("playground-channel").fill("fax")
        await _explain(page, "hello")
        await expect(page.get_by_role("alert")).to_contain_text(
            "Could not explain: no channel named 'fax'"
        )
    assert not errors


def _shot(name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS / f"{name}.png"
