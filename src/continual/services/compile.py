"""Work done in the training worker: the ONNX form of the pipeline a retrain chose.

The server serves a tree ensemble through onnxruntime from these bytes (see
``adapters.onnx``); conversion never runs in the server. A conversion that fails, or
whose probabilities stray from scikit-learn's, costs the version its fast path only:
it is recorded in the version's params and the version serves through scikit-learn.
"""

from __future__ import annotations

import time
from typing import Any

import structlog

from continual.core.frame import Rows
from continual.core.types import FeatureSchema

TOLERANCE = 1e-6  # the largest difference from sklearn's predict_proba allowed to serve

log = structlog.get_logger("continual.compile")


def onnx_for(
    pipeline: Any,
    schema: FeatureSchema,
    rows: Rows,
    params: dict[str, str],
) -> bytes | None:
    """The checked ONNX bytes of ``pipeline``, or ``None``; records ``onnx_sha256`` (or
    ``onnx_error``) and ``onnx_seconds`` in ``params`` before they are logged.

    ``rows`` (the holdout) are scored both ways: the bytes are kept only if every
    probability is within ``TOLERANCE`` of ``pipeline.predict_proba``."""
    import numpy as np

    from continual.adapters.models import CompiledModel, frame, sha256
    from continual.adapters.onnx import Session, export

    started = time.perf_counter()
    worst = 0.0
    try:
        encoder = CompiledModel.of(pipeline, schema)
        blob = export(pipeline.named_steps["model"], encoder.width)
        if len(rows):
            got = Session(blob).predict_proba(encoder.encode(rows))
            want = np.asarray(pipeline.predict_proba(frame(rows, schema)), dtype=np.float64)
            worst = float(np.abs(got - want).max())
    except Exception as exc:  # noqa: BLE001 - any converter or runtime failure: serve through sklearn
        _failed(params, f"{type(exc).__name__}: {exc}")
        return None
    finally:
        params["onnx_seconds"] = f"{time.perf_counter() - started:.3f}"
    if not worst <= TOLERANCE:
        _failed(params, f"probabilities differ from sklearn's by {worst:.2e}")
        return None
    params["onnx_sha256"] = sha256(blob)
    return blob


def _failed(params: dict[str, str], error: str) -> None:
    params["onnx_error"] = error[:250]
    log.warning("onnx_export_failed", error=params["onnx_error"])
