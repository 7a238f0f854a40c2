"""Fixtures for the dashboard's browser tests: one chromium per module, one context per test.

Both are module-scoped on purpose: Playwright's sync API keeps an event loop running
while it is open, which would break the ``asyncio.run`` of other test modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.ui.harness import DESKTOP, launch_chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless, for the whole module."""
    with sync_playwright() as pw:
        b = launch_chromium(pw)
        yield b
        b.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """Open pages in fresh browser contexts (own cookies); all closed after the test."""
    contexts: list[BrowserContext] = []

    def make(viewport: dict[str, int] | None = None, **kwargs: Any) -> Page:
        context = browser.new_context(viewport=viewport or DESKTOP, **kwargs)  # type: ignore[arg-type]
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield make
    for context in contexts:  # closing them ends their websockets before the server stops
        context.close()
