"""Load: predictions during hot swaps, and a sustained mixed load (see ``load``)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from tests.reliability import load
from tests.reliability.harness import record, scale
from tests.reliability.load import Observation, stale_reads

INF = float("-inf")


def test_the_stale_read_check_catches_a_connection_going_back() -> None:
    """The checker itself: a connection that sees 2 then 1 (before the swap back) is stale."""
    epochs = [("1", INF, INF), ("2", 10.0, 11.0), ("1", 20.0, 21.0)]
    fine = [
        Observation(0, 1.0, 2.0, 200, "1"),
        Observation(0, 10.5, 10.6, 200, "1"),  # during the swap to 2: either is right
        Observation(0, 12.0, 13.0, 200, "2"),
        Observation(0, 20.5, 20.7, 200, "1"),
    ]
    assert stale_reads(fine, epochs) == []
    back = [Observation(1, 12.0, 13.0, 200, "2"), Observation(1, 14.0, 15.0, 200, "1")]
    assert stale_reads(back, epochs) == [back[1]]


def test_hot_swaps_under_load_fail_nothing_and_never_go_back(
    workdir: Path, mlflow_template: Path
) -> None:
    """8 connections predict through 10 swaps: 0 failures, no stale version, p99 reported."""
    figures = load.run_swaps(workdir, mlflow_template, connections=8, swaps=10)
    record("predictions during 10 hot swaps", asdict(figures))
    assert figures.problems == []
    assert figures.swaps == 10
    assert figures.requests > 500
    assert (figures.failed, figures.stale) == (0, 0)
    assert set(figures.versions_seen) == {"1", "2"}


def test_sustained_mixed_load_keeps_memory_flat_and_the_log_bounded(
    workdir: Path, mlflow_template: Path
) -> None:
    """Predict, feedback, data and checks for a while: no failure, flat RSS, bounded log."""
    figures = load.run_mixed(workdir, mlflow_template, seconds=20 * scale(1))
    record("sustained mixed load", asdict(figures))
    assert figures.problems == []
    assert figures.failures == {}
    assert set(figures.requests) == {"predict", "feedback", "data", "check"}
    assert figures.rows_stored == figures.rows_acknowledged > 0
    assert figures.max_pending <= figures.buffer_max
    # flat: the server grows less than 25 MB after its warm-up (first-touch allocations)
    assert figures.rss_end_mb - figures.rss_start_mb < 25, figures
