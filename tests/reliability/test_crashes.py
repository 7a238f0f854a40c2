"""kill -9 during ingest and during retrains (the two scenarios run side by side).

What "nothing lost" means for each is in the docstrings of ``crash_ingest`` and
``crash_retrain``. Both scenarios spend most of their time restarting processes, one
core each, so they run at the same time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability import crash_ingest, crash_retrain
from tests.reliability.crashes import run as crashes_run
from tests.reliability.harness import (
    BACKGROUND,
    RelServer,
    descendants,
    record,
    scale,
    wait_until,
)


@pytest.fixture(scope="module")
def crashes(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> dict[str, Any]:
    """Both crash scenarios (run in the background if the session started them)."""
    out: dict[str, Any] = BACKGROUND.result(
        "crashes", lambda: crashes_run(tmp_path_factory.mktemp("crashes"), mlflow_template)
    )
    record("kill -9 during ingest", asdict(out["ingest"]))
    record("kill -9 during retrain", asdict(out["retrain"]))
    return out


@pytest.mark.timeout(1500)  # the first test pays for both scenarios (~1 min on an idle box)
def test_kill_9_during_ingest_loses_no_acknowledged_row(crashes: dict[str, Any]) -> None:
    """20 SIGKILLs at random moments: no acknowledged row lost or doubled, no half batch."""
    figures: crash_ingest.IngestFigures = crashes["ingest"]
    assert figures.problems == []
    assert figures.trials == scale(20)
    assert figures.rows_acknowledged > 0
    assert (figures.rows_lost, figures.rows_duplicated, figures.half_written_batches) == (0, 0, 0)
    assert figures.integrity_failures == 0


def test_kill_9_never_leaves_a_key_without_its_rows(crashes: dict[str, Any]) -> None:
    """No batch answered 'duplicate' on retry is missing: its key and rows commit together."""
    figures: crash_ingest.IngestFigures = crashes["ingest"]
    assert figures.rows_lost_to_claimed_keys == 0


def test_kill_9_at_each_retrain_step_leaves_one_verified_champion(crashes: dict[str, Any]) -> None:
    """A SIGKILL at every step: after restart DB, registry and memory agree on one champion."""
    figures: crash_retrain.RetrainFigures = crashes["retrain"]
    assert figures.problems == []
    assert figures.trials == len(crash_retrain.STEPS) * scale(1)
    assert figures.champions_checked == figures.trials
    assert (figures.split_brain, figures.unverified_loads, figures.integrity_failures) == (0, 0, 0)
    assert figures.retrains_after_restart_ok == 1
    # the kills landed on at least five distinct steps ("finished" would mean too late)
    assert len(set(figures.interrupted) & set(crash_retrain.STEPS)) >= 5, figures.interrupted


@pytest.fixture(scope="module")
def killed_mid_retrain(
    tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path
) -> dict[str, Any]:
    """Default settings; SIGKILL to the server's PID alone while a retrain runs; restart.

    What is left running and what the restarted server answers to a retrain."""
    server = RelServer(tmp_path_factory.mktemp("midretrain") / "data", template=mlflow_template)
    out: dict[str, Any] = {}
    server.start()
    try:
        with server.client() as http:
            http.post("/generate", json={"n_samples": 600, "seed": 1})
        offset = len(server.log())
        threading.Thread(target=_retrain_quietly, args=(server,), daemon=True).start()
        assert wait_until(lambda: "retrain_started" in server.log()[offset:], 60, 0.01)
        children = descendants(server.pid)
        assert server.proc is not None
        server.proc.kill()  # the server only, as `kill -9 <pid>` does
        server.proc.wait(20)
        wait_until(lambda: not any(Path(f"/proc/{p}").exists() for p in children), 5, 0.2)
        out["left_running"] = [p for p in children if Path(f"/proc/{p}").exists()]
        for pid in out["left_running"]:  # ours: started by the server we started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        server.start()
        with server.client() as http:
            r = http.post("/retrain")
        out["retrain_after_restart"] = (r.status_code, r.text[:200])
    finally:
        server.stop()
    record("kill -9 of the server alone, mid-retrain", out)
    return out


def _retrain_quietly(server: RelServer) -> None:
    with server.client() as http, contextlib.suppress(httpx.HTTPError):
        http.post("/retrain")


def test_a_restarted_server_can_retrain_after_a_kill_during_a_retrain(
    killed_mid_retrain: dict[str, Any],
) -> None:
    """kill -9 mid-retrain, restart with default settings: the next retrain is not a 409."""
    assert killed_mid_retrain["retrain_after_restart"][0] != 409


def test_the_training_worker_does_not_outlive_a_killed_server(
    killed_mid_retrain: dict[str, Any],
) -> None:
    """SIGKILL to the server's PID alone: its worker processes exit within 5 s."""
    assert killed_mid_retrain["left_running"] == []
