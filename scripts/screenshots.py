"""Regenerate the dashboard screenshots in docs/screenshots/.

    uv run python scripts/screenshots.py            # or: .venv/bin/python scripts/screenshots.py
    uv run python scripts/screenshots.py --only overview-collecting,playground-own-data

Starts a real ``continual serve`` on a free port over a temporary data directory, lives
through a drift and a recovery (data streamed over the REST API, the scheduler doing the
rest), then photographs every page with Debian's chromium (``apt-get install chromium``;
no browser is downloaded) at 1280x800 and at phone width. A second server holds a new
user's own data (a number and a city) and a first champion that has scored only a few
rows: its overview (status "collecting") and playground (no generator, the champion's
categories) are photographed too. ``--only`` names the shots to write (without the size
suffix); the servers it does not need are not started. Takes a minute or two; only the
servers this script started are stopped.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the browser harness lives with the tests

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from tests.own_data import own_rows  # noqa: E402
from tests.server import Server  # noqa: E402
from tests.ui.harness import (  # noqa: E402
    DESKTOP,
    LIVE_ENV,
    PHONE,
    drive_story,
    launch_chromium,
    log_in,
    start_dashboard,
    start_own_data,
)

PAGES = {"overview": "/", "models": "/models", "events": "/events", "playground": "/playground"}
OWN_DATA_PAGES = {"overview-collecting": "/", "playground-own-data": "/playground"}
SIZES = (("desktop", DESKTOP), ("phone", PHONE))


def shoot(page: Page, path: Path) -> None:
    """One full-page screenshot, once the page's content has settled."""
    expect(page.get_by_test_id("logout").or_(page.get_by_test_id("login"))).to_be_visible()
    page.wait_for_timeout(800)  # charts animate in; tables measure themselves
    page.screenshot(path=str(path), full_page=True)
    print(f"wrote {path.relative_to(ROOT)}")


def story_server(tmp: Path) -> Server:
    """A server that lived through a drift and a recovery."""
    server = start_dashboard(tmp / "story", env=LIVE_ENV)
    # concept 2 is a quarter turn away: the inputs drift too, not only the labels
    drive_story(server, drift_to=2, tail=6)
    return server


def own_data_server(tmp: Path) -> Server:
    """A server with a user's own rows and a first champion that has scored 35 of them."""
    server = start_dashboard(tmp / "own", env={"CONTINUAL_SCHEDULER": "false"})
    start_own_data(server)
    with server.client() as c:
        c.post("/data", json={"rows": own_rows(35, 2)})
        c.post("/check")  # insufficient data: one point on the chart, nothing judged
    return server


def photograph(server: Server, pages: dict[str, str], out: Path, login: bool) -> None:
    """Every page of ``pages`` at both sizes (and the login page, if ``login``)."""
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        for size, viewport in SIZES:
            context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"{server.url}/dashboard/")
            if login:
                shoot(page, out / f"login-{size}.png")
            log_in(page, server.url)
            for name, route in pages.items():
                page.goto(f"{server.url}/dashboard{route}")
                if name.startswith("playground"):
                    page.get_by_test_id("run-check").click()
                    expect(page.get_by_test_id("loop-result")).to_contain_text("Check: ")
                    page.get_by_test_id("predict").click()
                    expect(page.get_by_test_id("predict-result")).to_contain_text("by v")
                shoot(page, out / f"{name}-{size}.png")
            context.close()
        browser.close()


def main() -> None:
    """Start the servers, photograph every page twice (or the shots ``--only`` names)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--only", default="", help="comma-separated shot names, e.g. overview")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    wanted = {n.strip() for n in args.only.split(",") if n.strip()}
    known = {"login", *PAGES, *OWN_DATA_PAGES}
    if wanted - known:
        parser.error(f"unknown shots {sorted(wanted - known)}; known: {sorted(known)}")
    with tempfile.TemporaryDirectory(prefix="continual-shots-") as tmp:
        for make, pages, login in (
            (story_server, PAGES, True),
            (own_data_server, OWN_DATA_PAGES, False),
        ):
            chosen = {k: v for k, v in pages.items() if not wanted or k in wanted}
            shoot_login = login and (not wanted or "login" in wanted)
            if not chosen and not shoot_login:
                continue
            server = make(Path(tmp))
            try:
                photograph(server, chosen, out, shoot_login)
            finally:
                server.stop()


if __name__ == "__main__":
    main()
