"""Headless Chromium (Debian's, through Playwright) for the page tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright
from support.chromium import CHROMIUM_ARGS, executable


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=executable(), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()
