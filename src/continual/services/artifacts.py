"""Work on model artifacts done in the training worker: the verified local copy, MLflow's
champion alias, downloads, and the warm-up that imports the heavy libraries first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from continual.core.types import FeatureSchema
from continual.services.trainjob import TrackingConfig


def load_local(models_dir: Path, version: str, digest: str, schema: FeatureSchema) -> Any:
    """The verified local copy of a version, compiled; ``None`` if missing or tampered."""
    from continual.adapters.models import CompiledModel, loads_verified

    path = models_dir / f"{version}.pkl"
    try:
        return CompiledModel(loads_verified(path.read_bytes(), digest), schema)
    except (OSError, ValueError):
        return None


def set_alias(tracking_cfg: TrackingConfig, version: str) -> str | None:
    """Point MLflow's ``champion`` alias at ``version``; return where it pointed before."""
    from continual.adapters import tracking

    tracking.configure(
        tracking_cfg.tracking_uri,
        Path(tracking_cfg.data_dir),
        tracking_cfg.timeout,
        tracking_cfg.retries,
    )
    before = tracking.champion_version(tracking_cfg.model_name)
    if before != version:
        tracking.set_champion(tracking_cfg.model_name, version)
    return before


def prepare_download(tracking_cfg: TrackingConfig) -> None:
    """Import and configure MLflow in a download worker (``fetch_blob`` is then quick)."""
    from continual.adapters import tracking

    tracking.configure(
        tracking_cfg.tracking_uri,
        Path(tracking_cfg.data_dir),
        tracking_cfg.timeout,
        tracking_cfg.retries,
    )


def fetch_blob(tracking_cfg: TrackingConfig, version: str, onnx: bool = False) -> bytes:
    """Download our serialised model (or its ONNX form) for ``version`` from MLflow."""
    from continual.adapters import tracking

    prepare_download(tracking_cfg)
    artifact = tracking.ARTIFACT_ONNX if onnx else tracking.ARTIFACT_BLOB
    return tracking.download_blob(tracking_cfg.model_name, version, artifact)


def warm_up(tracking_cfg: TrackingConfig) -> None:
    """Import the heavy libraries and create the MLflow store ahead of the first retrain.

    A fresh embedded MLflow store spends ~10 s creating its tables; doing it at start-up
    in the (niced) child keeps that off the first user-visible retrain."""
    from continual.adapters import onnx, tracking
    from continual.adapters.models import build_pipeline
    from continual.core.types import Feature, FeatureSchema

    # building a pipeline imports every estimator module the first fit would
    build_pipeline("logistic_regression", FeatureSchema((Feature("x", "numeric"),), "y", "int"), 0)
    onnx.prepare()  # and skl2onnx, which the first export would (1.4 s)
    tracking.configure(
        tracking_cfg.tracking_uri,
        Path(tracking_cfg.data_dir),
        tracking_cfg.timeout,
        tracking_cfg.retries,
    )
    tracking.ensure_experiment(tracking_cfg.experiment)


def registry_state(tracking_cfg: TrackingConfig) -> tuple[str | None, int]:
    """(version MLflow's champion alias names, number of registered versions)."""
    from continual.adapters import tracking

    tracking.configure(
        tracking_cfg.tracking_uri,
        Path(tracking_cfg.data_dir),
        tracking_cfg.timeout,
        tracking_cfg.retries,
    )
    return tracking.champion_version(tracking_cfg.model_name), tracking.version_count(
        tracking_cfg.model_name
    )
