"""The web chat page shows the choices routing asks the user to make as buttons; a click
sends that choice, the chosen provider answers, and the buttons are retired."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect
from support.server import DEFAULT_CONFIG, REPO, serve

pytestmark = pytest.mark.browser

SHOTS = REPO / "test-artifacts" / "browser"
ASK = "\nnext_best_action:\n  by_intent: {fees: ask}\n  titles: {fees: Our fees}\n"


async def test_choices_are_buttons_and_a_click_routes_the_question(
    tmp_path: Path, browser: Browser
) -> None:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config, ignore=shutil.ignore_patterns("__pycache__"))
    with (config / "routing.yaml").open("a") as routing:
        routing.write(ASK)
    errors: list[str] = []
    async with serve(config, data_dir=tmp_path / "data") as run:
        page = await browser.new_page(viewport={"width": 1000, "height": 800})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{run.base}/")
        await expect(page.get_by_test_id("chat-status")).to_have_text("Connected")
        await page.get_by_test_id("chat-input").fill("what fees do you charge?")
        await page.get_by_test_id("chat-input").press("Enter")
        choices = page.get_by_test_id("chat-choices").last
        await expect(choices).to_be_visible()
        await expect(choices).to_have_attribute("role", "group")
        buttons = choices.get_by_role("button")
        assert await buttons.count() >= 2
        await expect(buttons.first).to_have_text("Our fees")
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / "choices-asked.png"), full_page=True)
        await buttons.first.click()
        user = page.locator('[data-testid="chat-message"][data-speaker="user"]')
        await expect(user.last).to_contain_text("Our fees")
        bot = page.locator('[data-testid="chat-message"][data-speaker="bot"]')
        await expect(bot.last).to_contain_text("Sending money to friends in the same currency")
        for n in range(await buttons.count()):
            await expect(buttons.nth(n)).to_be_disabled()
        await page.screenshot(path=str(SHOTS / "choices-answered.png"), full_page=True)
    assert errors == []
