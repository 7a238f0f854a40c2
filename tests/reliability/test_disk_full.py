"""Disk full while writing rows or a model (see ``disk`` for what "nothing lost" means)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from tests.reliability import disk
from tests.reliability.harness import BACKGROUND, record

MODES = [
    "fsize",
    pytest.param(
        "tmpfs",
        marks=pytest.mark.skipif(
            not disk.can_mount(),
            reason="mounting a tmpfs needs root; the file-size-limit variant covers a full disk without it",
        ),
    ),
]


@pytest.fixture(scope="module", params=MODES)
def full(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    mlflow_template: Path,
) -> disk.DiskFigures:
    """Run out of space one way (file-size limit or a small tmpfs); the figures."""
    mode = request.param
    figures = BACKGROUND.result(
        f"disk {mode}", lambda: disk.run(tmp_path_factory.mktemp("disk"), mlflow_template, mode)
    )
    record(f"disk full ({request.param})", asdict(figures))
    return figures


def test_disk_full_refuses_writes_clearly_and_keeps_serving(full: disk.DiskFigures) -> None:
    """A write that does not fit is a 507 with a message; reads and predictions go on."""
    assert full.problems == []
    assert full.batches_acknowledged > 0
    assert set(full.refusals) == {507}
    assert all("nothing was stored" in m for m in full.messages), full.messages
    assert full.served_while_full == {
        "health": 200,
        "predict": 200,
        "data summary": 200,
        "model status": 200,
    }
    if full.mode == "tmpfs":  # the retrain (model files, MLflow store): refused, no 500
        assert full.retrain_while_full in (422, 503, 507), full.retrain_while_full
        # when MLflow's store is what is full, the retrain gets as far as recording its failure
        if full.retrain_while_full == 422:
            assert full.retrain_failed_event is not None
            assert "disk is full" in full.retrain_failed_event


def test_disk_full_leaves_nothing_corrupt(full: disk.DiskFigures) -> None:
    """After space returns: integrity ok, acknowledged rows all there, champion verifies."""
    assert full.integrity == "ok"
    assert (full.rows_lost, full.half_written) == (0, 0)
    assert full.champion_verifies
    assert (full.writes_after_recovery, full.retrain_after_recovery) == (200, 200)


def test_a_batch_refused_for_lack_of_space_is_stored_when_retried(full: disk.DiskFigures) -> None:
    """The refused batch, retried with its key once there is room, is stored (not 'duplicate')."""
    assert full.refused_lost_on_retry == 0
    assert full.refused_stored_on_retry == sum(full.refusals.values())
