"""What a check answers and what ``GET /model-status`` shows (the dashboard reads both)."""

from __future__ import annotations

import msgspec

from continual.core import drift
from continual.core.types import Decision, RetrainResult, ServiceStatus
from continual.services.capacity import CapacityView
from continual.services.quality import QualityReport
from continual.services.trials import TrialOutcome


class CheckResult(msgspec.Struct, frozen=True, kw_only=True):
    """One check's decision with its reason and numbers (and the retrain's verdict)."""

    decision: Decision
    reason: str
    accuracy: float | None
    threshold: float
    samples: int
    min_samples: int
    window: int
    model_version: str | None
    detector_fired: bool
    drift: drift.DriftReport | None
    retrain: RetrainResult | None = None
    retrain_error: str | None = None
    at: str | None = None
    duration_seconds: float = 0.0
    capacity: CapacityView | None = None  # held when retraining could not beat the champion
    # before the labels come: the champion's accuracy estimated from its calibrated
    # confidence on its newest predictions, and how many it rests on
    estimated_accuracy: float | None = None
    estimated_samples: int = 0
    quality: QualityReport | None = None  # data quality of the rows since the last check
    trial: TrialOutcome | None = None  # what the check did about a shadow or canary


class ModelStatusView(msgspec.Struct, frozen=True, kw_only=True):
    """What ``GET /model-status`` shows."""

    status: ServiceStatus
    model_version: str | None
    model_type: str | None
    run_id: str | None
    champion_since: str | None
    accuracy: float | None
    threshold: float
    samples: int
    window: int
    min_samples: int
    last_check_at: str | None
    last_check_decision: str | None
    last_retrain_at: str | None
    next_check_at: str | None
    cooldown_seconds: float
    cooldown_remaining_seconds: float
    retrain_running: bool
    drift: drift.DriftReport | None
    capacity: CapacityView | None = None
    runtime: str | None = None  # what computes the champion's probabilities: onnx, numpy, sklearn
    single_row_runtime: str | None = None  # what scores one row: python, numba, or as runtime
    # a retrain waits for the tracking store (the first after start-up, MLflow's tables)
    retrain_preparing: bool = False
    estimated_accuracy: float | None = None  # see CheckResult
    estimated_samples: int = 0
    calibration_rows: int = 0  # holdout rows the estimate's calibration was fitted on
    quality: QualityReport | None = None  # as the last check counted it
    trial_kind: str | None = None  # shadow or canary, while one runs
    trial_version: str | None = None
