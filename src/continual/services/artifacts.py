"""Work on model artifacts done in a worker process: the verified local copy, the
registry's champion alias, downloads, and the warm-up that imports the heavy libraries.

The functions that reach the registry take it as their first argument
(``core.ports.RegistryPort``), built by the composition root and pickled into the worker
with the call. A module-level registry set by the worker's initializer was the other way:
but one worker process may serve several services, each with its own MLflow store (the
tests share one across the session, as the training worker is keyed by database URL
already), and an argument keeps the function callable in-process with a fake registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from continual.core.ports import RegistryPort
from continual.core.types import FeatureSchema

if TYPE_CHECKING:
    from continual.adapters.models import ServingForm


def load_local(models_dir: Path, version: str, digest: str, schema: FeatureSchema) -> Any:
    """The verified local copy of a version, compiled; ``None`` if missing or tampered."""
    from continual.adapters.models import CompiledModel, loads_verified

    path = models_dir / f"{version}.pkl"
    try:
        return CompiledModel.of(loads_verified(path.read_bytes(), digest), schema)
    except (OSError, ValueError):
        return None


def serving_form(blob: bytes, digest: str) -> ServingForm:
    """A version's verified pickle as the ``ServingForm`` a server compiles (with a boosted
    ensemble's trees): unpickled here, in the download worker, so that the server never
    imports scikit-learn to serve it."""
    from continual.adapters.models import form_of, loads_verified

    return form_of(loads_verified(blob, digest), trees=True, portable=True)


def set_alias(registry: RegistryPort, version: str) -> str | None:
    """Point the registry's champion alias at ``version``; return where it pointed before."""
    before = registry.champion()
    if before != version:
        registry.point_champion(version)
    return before


def prepare_download(registry: RegistryPort) -> None:
    """Start a download worker ahead of its first fetch: the process, its imports and the
    registry's adapter (unpickled with the call). Nothing more: ``registry.prepare`` would
    create the store, which the training worker's warm-up does at the same time."""
    del registry  # the call's work is having crossed to the worker, and this import:
    import sklearn.pipeline  # noqa: F401 - the first ``serving_form`` unpickles a pipeline


def fetch_blob(registry: RegistryPort, version: str, onnx: bool = False) -> bytes:
    """Download our serialised model (or its ONNX form) for ``version`` from the registry."""
    return registry.download(version, onnx)


def warm_up(registry: RegistryPort) -> None:
    """Import the heavy libraries and create the registry's store ahead of the first retrain.

    A fresh embedded MLflow store spends ~10 s creating its tables; doing it at start-up
    in the (niced) child keeps that off the first user-visible retrain."""
    from continual.adapters import onnx
    from continual.adapters.models import build_pipeline
    from continual.core.types import Feature, FeatureSchema

    # building a pipeline imports every estimator module the first fit would
    build_pipeline("logistic_regression", FeatureSchema((Feature("x", "numeric"),), "y", "int"), 0)
    onnx.prepare()  # and skl2onnx, which the first export would (1.4 s)
    registry.prepare()
