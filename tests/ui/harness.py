"""Driving the dashboard in a real browser: the server, Debian's chromium, login, a story.

Shared by the browser tests and by ``scripts/screenshots.py``. The server is the real
``continual serve`` process (``tests.server.Server``, which also drops
``PYTEST_CURRENT_TEST``: NiceGUI changes behaviour under pytest); the browser is the
system's chromium driven by Playwright, never a downloaded one.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, Playwright, expect

from tests.own_data import own_rows
from tests.server import Server

API_KEY = "ui-test-key-0123456789abcdef"
PASSWORD = "correct horse battery"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# the scheduler on and quick, small windows: a few hundred rows tell the whole story; the
# cooldown keeps a fall on screen for a few seconds before the retrain that ends it
LIVE_ENV = {
    "CONTINUAL_SCHEDULER": "true",
    "CHECK_INTERVAL_SECONDS": "1",
    "CONTINUAL_COOLDOWN_SECONDS": "8",
    "CONTINUAL_MIN_SAMPLES": "50",
    "CONTINUAL_EVAL_WINDOW": "100",
    "CONTINUAL_TRAIN_WINDOW": "1000",
}


def start_dashboard(
    data_dir: Path, mlflow_db: Path | None = None, env: Mapping[str, str] | None = None
) -> Server:
    """Start ``continual serve`` with the dashboard on, a password and the API key set."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if mlflow_db is not None:  # a migrated MLflow store saves the first retrain ~15 s
        shutil.copy(mlflow_db, data_dir / "mlflow.db")
    return Server(
        data_dir,
        {
            "API_KEY": API_KEY,
            "CONTINUAL_DASHBOARD": "true",
            "CONTINUAL_DASHBOARD_PASSWORD": PASSWORD,
            # the default pool, as a user's dashboard has it (tests.server fits one family)
            "CONTINUAL_MODELS": "logistic_regression,hist_gradient_boosting",
            **(env or {}),
        },
    ).start()


def launch_chromium(pw: Playwright) -> Browser:
    """Debian's chromium, headless (``apt-get install chromium``; no browser download)."""
    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError("chromium is not installed: apt-get install -y chromium")
    return pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)


def log_in(page: Page, url: str, password: str = PASSWORD, path: str = "/") -> None:
    """Open a dashboard page, get sent to the login page, log in, land on the page."""
    page.goto(f"{url}/dashboard{path}")
    expect(page).to_have_url(re.compile(r"/dashboard/login\?redirect_to="))
    page.get_by_test_id("password").fill(password)
    page.get_by_test_id("login").click()
    expect(page).to_have_url(f"{url}/dashboard{path}")


def status(server: Server) -> dict[str, Any]:
    """``GET /model-status``, the REST view the dashboard must agree with."""
    return dict(httpx.get(server.url + "/model-status", timeout=30).json())


def drive_story(
    server: Server, rows: int = 25, every: float = 0.5, drift_to: int = 1, tail: float = 0.0
) -> None:
    """Through the REST API: stream concept 0 until a champion is good, then concept
    ``drift_to`` until the scheduler has retrained and a new champion is good again, then
    ``tail`` seconds more. Needs a server with the scheduler on (``LIVE_ENV``)."""
    with server.client() as c:

        def stream_until(concept: int, done: Callable[[dict[str, Any]], bool], what: str) -> None:
            deadline = time.monotonic() + 180
            while True:
                r = c.post("/generate", json={"n_samples": rows, "concept": concept})
                assert r.status_code == 200, r.text
                if done(status(server)):
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out waiting for {what}")
                time.sleep(every)

        def good(s: dict[str, Any], not_version: str | None = None) -> bool:
            return (
                s["status"] == "ok"
                and s["model_version"] not in (None, not_version)
                and s["accuracy"] is not None
                and s["samples"] >= s["min_samples"]
                and s["accuracy"] >= s["threshold"]
            )

        stream_until(0, good, "a first champion")
        first = status(server)["model_version"]
        stream_until(drift_to, lambda s: good(s, first), "a retrained champion")
        stop = time.monotonic() + tail
        while time.monotonic() < stop:
            c.post("/generate", json={"n_samples": rows, "concept": drift_to})
            time.sleep(every)


def start_own_data(server: Server, rows: int = 600) -> dict[str, Any]:
    """Through the REST API: store the user's own rows and train a first champion on them
    (its status is then "collecting": it has scored none of its own yet)."""
    with server.client() as c:
        r = c.post("/data", json={"rows": own_rows(rows, 1)})
        assert r.status_code == 200, r.text
        r = c.post("/retrain")
        assert r.status_code == 200, r.text
        return dict(r.json())


def chart_points(page: Page, series: int = 0) -> int:
    """How many points the ECharts instance behind the accuracy chart holds."""
    chart = page.get_by_test_id("accuracy-chart")
    expect(chart.locator("canvas")).to_have_count(1)
    return int(
        chart.evaluate(
            "(el, i) => getElement(el.id.slice(1)).chart.getOption().series[i].data.length",
            series,
        )
    )


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds, or fail saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
