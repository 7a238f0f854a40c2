"""Dependencies failing: webhook receivers, a database locked by another writer.

What "nothing lost" means for each is in the docstrings of ``outages``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from tests.reliability import outages
from tests.reliability.harness import BACKGROUND, record


def test_broken_webhook_receivers_slow_nothing_and_retries_are_bounded(
    workdir: Path, mlflow_template: Path
) -> None:
    """Hanging, 429 and down receivers: no failed prediction, checks fast, 3 attempts each."""
    figures = BACKGROUND.result(
        "webhooks", lambda: outages.run_webhooks(workdir, mlflow_template, timeout=1.0)
    )
    record("webhook receivers down, slow, 429", asdict(figures))
    assert figures.problems == []
    assert figures.predictions_failed == 0
    assert figures.predictions > 50
    assert figures.check_seconds < 1.0  # a check never waits for a delivery
    assert figures.predict_p99_ms < 1000  # nor does a prediction (timeout is 1 s)
    # two alerts (retrain_started, promoted) x three channels, each given up after 3 tries
    assert figures.alert_failed_events == {"discord": 2, "slack": 2, "webhook": 2}
    assert all(a == [3, 3] for a in figures.attempts.values()), figures.attempts
    assert figures.received == {"discord": 6, "slack": 6}  # retries bounded: 2 x 3 each


@pytest.fixture(scope="module")
def locks(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> list[Any]:
    """One server; another writer holds the lock 2 s, then 10 s (busy timeout: 5 s)."""
    figures = BACKGROUND.result(
        "locks", lambda: outages.run_db_locks(tmp_path_factory.mktemp("locks"), mlflow_template)
    )
    for f in figures:
        record(f"database locked {f.lock_seconds:g} s", asdict(f))
    return figures


def test_short_database_lock_makes_writes_wait_not_fail(locks: list[Any]) -> None:
    """A 2 s lock (under the 5 s busy timeout): writes wait and succeed; nothing lost."""
    figures = locks[0]
    assert figures.problems == []
    assert (figures.batches_503, figures.batches_500) == (0, 0)
    assert figures.batches_acknowledged == 12
    assert (figures.rows_lost, figures.rows_duplicated) == (0, 0)
    assert figures.slowest_write_seconds > 1.0  # it did wait for the lock
    assert figures.predictions_ok == figures.predictions > 0


def test_long_database_lock_answers_503_then_recovers_without_loss(locks: list[Any]) -> None:
    """A 10 s lock: 503 with a clear message after the busy timeout, never 500, no loss."""
    figures = locks[1]
    assert figures.problems == []
    assert figures.batches_500 == 0
    assert figures.batches_503 > 0
    assert figures.messages == [
        "the database is busy (locked by another writer); nothing was stored, retry shortly"
    ]
    assert figures.stored_before_retry_of_503 == 0
    assert (figures.rows_lost, figures.rows_duplicated) == (0, 0)
    # predictions: served from memory until the log is full, then shed with 503, never 500
    assert figures.predictions_shed_503 > 0
    assert figures.prediction_errors == [
        '{"error":"prediction log backlog is full; retry shortly",'
    ]
    assert figures.predictions_ok + figures.predictions_shed_503 == figures.predictions
    # bounded by its limit, the batch a blocked flush is writing included
    assert figures.max_pending <= figures.buffer_max
