"""A new user's first minutes with their own data: the status says only what is known, and
the first retrain after start-up says that it waits for the tracking store."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Api
from tests.own_data import CITIES, own_rows
from tests.server import Server


def metric(text: str, name: str) -> float | None:
    """One unlabelled sample's value from the Prometheus text, or ``None`` if absent."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_the_status_is_collecting_until_the_champion_has_min_samples(
    client_factory: Any,
) -> None:
    """Right after the first model: status "collecting" with the rows it has and needs (not a
    green "ok" on nothing), /ready 200 and the metrics as before; one row short it still
    collects; with CONTINUAL_MIN_SAMPLES scored rows it is judged "ok", and the change of
    status raises no degraded or recovered alert."""
    api: Api = client_factory(CONTINUAL_MIN_SAMPLES="50")
    assert api.post("/data", json={"rows": own_rows(600, 1)}).status_code == 200
    verdict = api.post("/retrain").json()
    assert verdict["promoted"] is True, verdict

    s = api.get("/model-status").json()
    assert (s["status"], s["model_version"], s["samples"], s["min_samples"]) == (
        "collecting",
        "1",
        0,
        50,
    )
    assert s["accuracy"] is None
    ready = api.get("/ready")
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")
    text = api.get("/metrics").text
    assert metric(text, "continual_model_loaded") == 1.0
    assert metric(text, "continual_window_samples") == 0.0
    assert metric(text, "continual_min_samples") == 50.0
    assert metric(text, "continual_live_accuracy") is None  # nothing measured, no number

    api.post("/data", json={"rows": own_rows(1, 2)})
    one = api.get("/model-status").json()
    assert (one["status"], one["samples"]) == ("collecting", 1)  # 0.0 or 1.0 on one row
    api.post("/data", json={"rows": own_rows(48, 3)})
    short = api.get("/model-status").json()
    assert (short["status"], short["samples"]) == ("collecting", 49)
    check = api.post("/check").json()
    assert check["decision"] == "insufficient_data", check

    api.post("/data", json={"rows": own_rows(1, 4)})
    judged = api.get("/model-status").json()
    assert judged["samples"] == 50
    assert judged["accuracy"] >= 0.8, judged
    assert judged["status"] == "ok"
    assert api.post("/check").json()["decision"] == "ok"
    kinds = {e["kind"] for e in api.get("/events").json()}
    assert not kinds & {"degraded", "recovered"}, kinds


def test_the_playground_categories_are_the_champions(client_factory: Any) -> None:
    """The categories offered for a categorical feature are those the champion was trained
    on, most frequent first; none before there is a champion."""
    api: Api = client_factory()
    monitor = api.app_.services.monitor
    rows = own_rows(300, 5) + [{"size": 1.0, "city": "Lyon", "target": 0}] * 200
    api.post("/data", json={"rows": rows})
    assert monitor.categories() == {}
    assert api.post("/retrain").json()["promoted"] is True
    categories = monitor.categories()
    assert list(categories) == ["city"]
    assert categories["city"][0] == "Lyon"
    assert sorted(categories["city"]) == sorted(CITIES)


def test_the_first_retrain_after_start_says_it_prepares_the_tracking_store(
    tmp_path: Path,
) -> None:
    """On a fresh data directory (MLflow has no tables yet) a `continual retrain` right after
    start-up shows on stderr that the tracking store is being prepared and answers how long
    that took; the next retrain waits for nothing."""
    key = "first-run-key-0123456789"
    server = Server(
        tmp_path / "data", {"API_KEY": key, "CONTINUAL_SCHEDULER": "false"}, first_run=True
    )
    server.start()
    try:
        r = httpx.post(
            server.url + "/data",
            json={"rows": own_rows(400, 6)},
            headers={"authorization": f"Bearer {key}"},
        )
        assert r.status_code == 200, r.text
        env = {
            **{k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"},
            "API_KEY": key,
            "CONTINUAL_URL": server.url,
            "CONTINUAL_DATA_DIR": str(tmp_path / "cli"),
        }

        def retrain() -> tuple[dict[str, Any], str]:
            # stderr on a terminal (a pty), where the CLI shows its progress line
            master, slave = pty.openpty()
            seen: list[bytes] = []

            def drain() -> None:
                with contextlib.suppress(OSError):
                    while chunk := os.read(master, 4096):
                        seen.append(chunk)

            reader = threading.Thread(target=drain, daemon=True)
            reader.start()
            done = subprocess.run(
                [sys.executable, "-m", "continual", "retrain", "--json"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=slave,
                text=True,
                timeout=180,
                check=False,
            )
            os.close(slave)
            reader.join(10)
            os.close(master)
            progress = b"".join(seen).decode(errors="replace")
            assert done.returncode == 0, progress
            return json.loads(done.stdout), progress

        first, progress = retrain()
        assert first["promoted"] is True, first
        assert first["tracking_prepared_seconds"] > 1, first
        assert "retraining: preparing the tracking store (first run)…" in progress
        assert "retraining: training…" in progress
        second, progress = retrain()
        assert second["tracking_prepared_seconds"] == 0.0, second
        assert "preparing the tracking store" not in progress
    finally:
        server.stop()
