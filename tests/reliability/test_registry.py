"""MLflow as a dependency and as a trust boundary, against one real MLflow server."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from tests.reliability import registry
from tests.reliability.harness import BACKGROUND, record


@pytest.fixture(scope="module")
def both(
    tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path
) -> tuple[registry.MlflowFigures, registry.TrustFigures]:
    """Both scenarios against one MLflow tracking server (run in the background if started)."""
    outage, trust = BACKGROUND.result(
        "registry", lambda: registry.run_both(tmp_path_factory.mktemp("registry"), mlflow_template)
    )
    record("MLflow outage", asdict(outage))
    record("trust boundary", asdict(trust))
    return outage, trust


def test_mlflow_hanging_or_stopped_fails_retrains_in_bound_and_recovers(
    both: tuple[registry.MlflowFigures, registry.TrustFigures],
) -> None:
    """MLflow hangs, then refuses: predictions all succeed, retrains fail fast; then recover."""
    figures = both[0]
    assert figures.problems == []
    assert figures.predictions > 50
    assert figures.predictions_failed == 0
    assert figures.retrain_status == {"hang": 503, "refuse": 503, "back": 200}
    # bound: one MLflow call times out (2 s, no retry) and the worker gives up; with margin
    assert max(figures.retrain_seconds.values()) < 20, figures.retrain_seconds
    assert figures.failure_events == 2
    assert figures.failure_alerts == 2
    assert figures.recovered_version is not None
    assert figures.alias_after_recovery == figures.recovered_version


def test_a_model_the_service_did_not_produce_is_never_loaded(
    both: tuple[registry.MlflowFigures, registry.TrustFigures],
) -> None:
    """A foreign registry version and a tampered artifact: refused, with an event, never run."""
    figures = both[1]
    assert figures.problems == []
    assert figures.foreign_version == "2"
    assert figures.served_while_foreign_alias == "1"
    assert figures.promote_foreign == 404
    assert figures.alias_after_restart == "1"
    assert (figures.ready_after_tamper, figures.ready_reason) == (503, "no model is loaded")
    assert figures.predict_after_tamper == 409  # no model: nothing is served
    assert len(figures.refused_events) == 1
    assert "version 1 refused" in figures.refused_events[0]
    assert not figures.command_ran
