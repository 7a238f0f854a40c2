"""Regenerate the dashboard screenshots in docs/screenshots/.

    uv run python scripts/screenshots.py            # or: .venv/bin/python scripts/screenshots.py

Starts a real ``continual serve`` on a free port over a temporary data directory, lives
through a drift and a recovery (data streamed over the REST API, the scheduler doing the
rest), then photographs every page with Debian's chromium (``apt-get install chromium``;
no browser is downloaded) at 1280x800 and at phone width. Takes a minute or two; only the
server this script started is stopped.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the browser harness lives with the tests

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from tests.ui.harness import (  # noqa: E402
    DESKTOP,
    LIVE_ENV,
    PHONE,
    drive_story,
    launch_chromium,
    log_in,
    start_dashboard,
)

PAGES = {"overview": "/", "models": "/models", "events": "/events", "playground": "/playground"}


def shoot(page: Page, path: Path) -> None:
    """One full-page screenshot, once the page's content has settled."""
    expect(page.get_by_test_id("logout").or_(page.get_by_test_id("login"))).to_be_visible()
    page.wait_for_timeout(800)  # charts animate in; tables measure themselves
    page.screenshot(path=str(path), full_page=True)
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> None:
    """Start a server, live through a drift, photograph every page twice."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="continual-shots-") as tmp:
        server = start_dashboard(Path(tmp) / "data", env=LIVE_ENV)
        try:
            # concept 2 is a quarter turn away: the inputs drift too, not only the labels
            drive_story(server, drift_to=2, tail=6)
            with sync_playwright() as pw:
                browser = launch_chromium(pw)
                for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
                    page = context.new_page()
                    page.set_default_timeout(30_000)
                    page.goto(f"{server.url}/dashboard/")
                    shoot(page, out / f"login-{size}.png")
                    log_in(page, server.url)
                    for name, route in PAGES.items():
                        page.goto(f"{server.url}/dashboard{route}")
                        if name == "playground":
                            page.get_by_test_id("run-check").click()
                            expect(page.get_by_test_id("loop-result")).to_contain_text("Check: ")
                            page.get_by_test_id("predict").click()
                            expect(page.get_by_test_id("predict-result")).to_contain_text("by v")
                        shoot(page, out / f"{name}-{size}.png")
                    context.close()
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
