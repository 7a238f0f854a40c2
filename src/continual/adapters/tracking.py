"""MLflow adapter: the only module that imports mlflow; ``MlflowRegistry`` is the
registry port (``core.ports.RegistryPort``).

The server process builds an ``MlflowRegistry`` (its settings only) and hands it to the
worker processes, which import mlflow on its first call; the server never does. Timeouts and retries are bounded so an unreachable server fails a retrain in
seconds, not minutes. Besides MLflow's own model flavour (signature, input example,
pinned requirements) each run carries our exact serialised bytes, so that a model is
only ever loaded after its digest matches the one recorded in our database.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from continual.core.errors import ContinualError, TrackingUnavailable, TrainingFailed
from continual.core.types import CandidateRun, Logged

ARTIFACT_BLOB = "continual/model.pkl"
ARTIFACT_ONNX = "continual/model.onnx"
ONNX_INPUT = (
    "x: float64 (n, width), the sklearn flavour's prep step applied: numeric features "
    "standardised, then one column per known category (an unseen one all zeros)"
)
CHAMPION_ALIAS = "champion"


class TrackingConfig(msgspec.Struct, frozen=True):
    """How a worker process reaches MLflow."""

    tracking_uri: str
    data_dir: str
    timeout: float
    retries: int
    experiment: str
    model_name: str


class MlflowRegistry:
    """The registry port on MLflow: an experiment of runs, a registered model, an alias.

    It holds its ``TrackingConfig`` and nothing else, so it pickles into a worker process
    as a handful of strings. Each call configures MLflow's environment first: one worker
    may serve several services (the tests share one), each with its own store."""

    def __init__(self, config: TrackingConfig) -> None:
        self.config = config

    def _configure(self) -> None:
        c = self.config
        configure(c.tracking_uri, Path(c.data_dir), c.timeout, c.retries)

    def prepare(self) -> None:
        """Import mlflow, create (or migrate) its store and the experiment."""
        self._configure()
        ensure_experiment(self.config.experiment)

    def log_retrain(
        self,
        *,
        pipeline: Any,
        blob: bytes,
        input_example: Any,
        output_example: Any,
        params: Mapping[str, str],
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
        candidates: Sequence[CandidateRun] = (),
        onnx_blob: bytes | None = None,
    ) -> Logged:
        """Log one retrain: a parent run with the gate's verdict, a nested run per candidate
        family, the winner's with the model, which is registered.

        ``onnx_blob`` (the winner's estimator in ONNX) goes in the winner's run as our exact
        bytes and as MLflow's ``onnx`` flavour, which any ONNX server can load."""
        self._configure()
        experiment, model_name = self.config.experiment, self.config.model_name
        mlflow = _mlflow()
        try:
            import mlflow.sklearn
            from mlflow.models import infer_signature

            experiment_id = ensure_experiment(experiment)
            signature = infer_signature(input_example, output_example)
            others: list[str] = []
            with mlflow.start_run(experiment_id=experiment_id, run_name="retrain") as parent:
                mlflow.log_params(
                    {k: v for k, v in params.items() if k not in ("model_type", "windows_tried")}
                )
                mlflow.set_tags({**tags, "continual.role": "retrain"})
                for c in candidates:
                    with mlflow.start_run(
                        experiment_id=experiment_id, nested=True, run_name=c.name
                    ) as child:
                        mlflow.log_params(c.params)
                        mlflow.log_metrics(c.metrics)
                        mlflow.set_tags(
                            {"continual.role": "candidate", "continual.winner": "false"}
                        )
                        others.append(str(child.info.run_id))
                run, version = _log_winner(
                    mlflow,
                    experiment_id,
                    params,
                    metrics,
                    tags,
                    pipeline,
                    blob,
                    input_example,
                    signature,
                    model_name,
                    onnx_blob,
                )
            return Logged(str(run), str(version), str(parent.info.run_id), others)
        except ContinualError:
            raise
        except Exception as exc:
            raise _wrap(exc) from exc

    def champion(self) -> str | None:
        """The version the ``champion`` alias names, or ``None``."""
        self._configure()
        name = self.config.model_name
        try:
            return str(
                _mlflow().MlflowClient().get_model_version_by_alias(name, CHAMPION_ALIAS).version
            )
        except Exception as exc:
            if "not found" in str(exc).lower() or "RESOURCE_DOES_NOT_EXIST" in str(exc):
                return None
            raise _wrap(exc) from exc

    def point_champion(self, version: str) -> None:
        """Move the ``champion`` alias to ``version``."""
        self._configure()
        name = self.config.model_name
        try:
            _mlflow().MlflowClient().set_registered_model_alias(name, CHAMPION_ALIAS, version)
        except Exception as exc:
            raise _wrap(exc) from exc

    def count_versions(self) -> int:
        """How many versions of the model are registered."""
        self._configure()
        query = f"name='{self.config.model_name}'"
        try:
            return len(_mlflow().MlflowClient().search_model_versions(query))
        except Exception as exc:
            raise _wrap(exc) from exc

    def download(self, version: str, onnx: bool = False) -> bytes:
        """Our bytes for ``version`` (``ARTIFACT_ONNX`` with ``onnx``, else ``ARTIFACT_BLOB``)."""
        self._configure()
        artifact = ARTIFACT_ONNX if onnx else ARTIFACT_BLOB
        try:
            client = _mlflow().MlflowClient()
            run_id = client.get_model_version(self.config.model_name, version).run_id
            with tempfile.TemporaryDirectory() as tmp:
                return Path(client.download_artifacts(run_id, artifact, tmp)).read_bytes()
        except Exception as exc:
            raise _wrap(exc) from exc


def configure(tracking_uri: str, data_dir: Path, timeout: float, retries: int) -> None:
    """Set MLflow's environment before it is imported: bounded HTTP, no telemetry."""
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, int(timeout)))
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(max(0, retries))
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "1"
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"] = "0.5"
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["DO_NOT_TRACK"] = "true"
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ["CONTINUAL_ARTIFACT_ROOT"] = (data_dir / "mlartifacts").resolve().as_uri()


def _mlflow() -> Any:
    import mlflow

    return mlflow


_FULL = ("disk is full", "no space left", "disk quota exceeded")
_UNREACHABLE = ("connection", "timed out", "timeout", "max retries", "name or service", "refused")


def _wrap(exc: Exception) -> ContinualError:
    """Unreachable or slow MLflow is ``TrackingUnavailable`` (503); anything else it
    refused is a failed training run."""
    text = str(exc)
    detail = {"reason": type(exc).__name__, "message": text[:300]}
    if any(word in text.lower() for word in _FULL) or (
        isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    ):
        return TrackingUnavailable("MLflow could not write its store: the disk is full", detail)
    if any(word in text.lower() for word in _UNREACHABLE) or isinstance(exc, OSError):
        return TrackingUnavailable("MLflow did not answer", detail)
    return TrainingFailed(f"MLflow refused the run: {text[:200]}", detail)


def ensure_experiment(name: str) -> str:
    """The experiment id for ``name``, creating it with an artifact root under the data dir."""
    mlflow = _mlflow()
    try:
        found = mlflow.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        root = os.environ.get("CONTINUAL_ARTIFACT_ROOT")
        tracking = os.environ.get("MLFLOW_TRACKING_URI", "")
        location = root if tracking.startswith("sqlite") else None
        return str(mlflow.create_experiment(name, artifact_location=location))
    except Exception as exc:
        raise _wrap(exc) from exc


def _log_winner(
    mlflow: Any,
    experiment_id: str,
    params: Mapping[str, str],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    pipeline: Any,
    blob: bytes,
    input_example: Any,
    signature: Any,
    model_name: str,
    onnx_blob: bytes | None,
) -> tuple[str, str]:
    """Log the winning candidate's run with the model, and register it."""
    # nested runs name their experiment: MLflow would put them in the default one
    name = params.get("model_type", "model")
    with mlflow.start_run(experiment_id=experiment_id, nested=True, run_name=name) as run:
        mlflow.log_params(dict(params))
        mlflow.log_metrics(dict(metrics))
        mlflow.set_tags({**tags, "continual.role": "candidate", "continual.winner": "true"})
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=signature,
            input_example=input_example,
            pip_requirements=_requirements(),
            # our own digest-verified blob is the trust boundary; skops refuses
            # some estimators' internal types (HistGradientBoosting)
            serialization_format="cloudpickle",
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.pkl"
            path.write_bytes(blob)
            mlflow.log_artifact(str(path), artifact_path="continual")
            if onnx_blob is not None:
                path = Path(tmp) / "model.onnx"
                path.write_bytes(onnx_blob)
                mlflow.log_artifact(str(path), artifact_path="continual")
        if onnx_blob is not None:
            import mlflow.onnx

            mlflow.onnx.log_model(
                onnx_blob,
                name="onnx",
                pip_requirements=_requirements(("onnx", "onnxruntime")),
                save_as_external_data=False,  # one file, the bytes we verified
                onnx_execution_providers=["CPUExecutionProvider"],
                metadata={"input": ONNX_INPUT},
            )
        version = mlflow.register_model(info.model_uri, model_name)
    return str(run.info.run_id), str(version.version)


def _requirements(
    packages: tuple[str, ...] = ("scikit-learn", "numpy", "scipy", "pandas"),
) -> list[str]:
    # Explicit requirements: inferring them spawns a subprocess costing 7-12 s per run.
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in packages]
