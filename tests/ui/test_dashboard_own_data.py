"""The dashboard in a real browser on a new user's own data (a number and a city), not the
generator's: the status before there is evidence, and a playground that offers only what
works with that schema."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.own_data import own_rows
from tests.server import Server
from tests.ui.harness import log_in, start_dashboard, start_own_data, status, wait_for

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> Iterator[Server]:
    """A real server, scheduler off, its first champion trained on the user's own rows."""
    data = tmp_path_factory.mktemp("own-data") / "data"
    srv = start_dashboard(
        data, mlflow_template, {"CONTINUAL_SCHEDULER": "false", "CONTINUAL_MIN_SAMPLES": "50"}
    )
    try:
        start_own_data(srv)
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def page(server: Server, new_page: Callable[..., Page]) -> Page:
    """A desktop page, logged in."""
    p = new_page()
    log_in(p, server.url)
    return p


def test_the_status_card_says_collecting_until_min_samples_then_ok(
    server: Server, page: Page
) -> None:
    """Right after the first model the card reads "collecting" (neither green nor red) with
    the rows it has and needs, as /model-status does; once the champion has scored
    CONTINUAL_MIN_SAMPLES rows the open page turns "ok", without a reload."""
    live = status(server)
    assert (live["status"], live["samples"]) == ("collecting", 0)
    badge = page.get_by_test_id("status")
    expect(badge).to_have_text("collecting")
    expect(page.get_by_test_id("status-note")).to_have_text("not judged yet: 0 of 50 rows scored")
    classes = badge.get_attribute("class") or ""
    assert "bg-blue-grey-6" in classes, classes
    assert "bg-positive" not in classes
    assert "bg-negative" not in classes

    page.evaluate("window.__not_reloaded = true")
    with server.client() as c:
        c.post("/data", json={"rows": own_rows(20, 2)})
        expect(page.get_by_test_id("status-note")).to_have_text(
            "not judged yet: 20 of 50 rows scored", timeout=10_000
        )
        c.post("/data", json={"rows": own_rows(30, 3)})
    wait_for(lambda: status(server)["status"] == "ok", 10, "the champion judged ok")
    expect(badge).to_have_text("ok", timeout=10_000)
    assert "bg-positive" in (badge.get_attribute("class") or "")
    expect(page.get_by_test_id("status-note")).to_have_text("")
    assert page.evaluate("window.__not_reloaded") is True


def test_the_playground_offers_no_generator_for_the_users_schema(
    server: Server, page: Page
) -> None:
    """With the user's schema the playground shows no concept switch or Generate button,
    and says why, naming the schema's columns."""
    page.goto(f"{server.url}/dashboard/playground")
    note = page.get_by_test_id("generate-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text("Generating data is not offered here")
    expect(note).to_contain_text("size (numeric), city (categorical); label target")
    expect(page.get_by_test_id("generate")).to_be_hidden()
    expect(page.get_by_test_id("concept")).to_be_hidden()
    expect(page.get_by_test_id("stream")).to_be_hidden()


def test_the_predict_form_offers_the_champions_categories_and_free_text(
    server: Server, page: Page
) -> None:
    """The city field lists the cities the champion was trained on, most frequent first;
    picking one predicts, and so does a city it never saw, typed in."""
    page.goto(f"{server.url}/dashboard/playground")
    city = page.get_by_test_id("feature-city")  # the select's input
    expect(city).to_have_value("Lyon")  # the most frequent, preselected
    city.click()
    options = page.get_by_role("option")
    expect(options).to_have_text(["Lyon", "Berlin", "Oslo"])
    options.filter(has_text="Oslo").click()
    page.get_by_label("size", exact=True).fill("7.5")
    page.get_by_test_id("predict").click()
    result = page.get_by_test_id("predict-result")
    expect(result).to_contain_text("by v1")
    expect(result).to_contain_text("Prediction 0")  # a size above 5, flipped in Oslo
    first = result.inner_text()

    city.fill("Tromsø")  # a city the champion never saw: valid input, not an error
    city.press("Enter")
    expect(city).to_have_value("Tromsø")
    page.get_by_test_id("predict").click()
    expect(result).not_to_have_text(first)  # a new prediction (its own id)
    expect(result).to_contain_text("by v1")
