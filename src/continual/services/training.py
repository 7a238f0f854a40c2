"""Work done in the training worker process: fit a challenger, gate it, log it to the
registry.

These functions run in the child (see ``worker``) and take and return plain Structs, and
the registry port the composition root built (see ``artifacts``). The child opens its own
database engine and is the only process that imports mlflow.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from continual.core.errors import TrainingFailed
from continual.core.ports import RegistryPort
from continual.core.types import Candidate, CandidateRun, FeatureSchema
from continual.services.artifacts import load_local
from continual.services.pool import PoolCache
from continual.services.search import (
    MIN_TRAIN_ROWS,
    Window,
    choose,
    search_pool,
    select_training_rows,
    tried,
)
from continual.services.trainjob import ChampionRef, TrainJob, TrainOutcome

__all__ = ["ChampionRef", "TrainJob", "TrainOutcome", "train_challenger", "warm_pool"]

# per database URL, for the child's lifetime: one engine, and the pool's rows as arrays
# (a retrain then reads the rows that arrived since the last one, see ``pool``)
_databases: dict[str, tuple[Any, PoolCache]] = {}


def _database(url: str) -> tuple[Any, PoolCache]:
    from continual.adapters.db import open_database

    if url not in _databases:
        database = open_database(url, migrate_now=False)  # the parent migrated
        _databases[url] = (database, PoolCache(database.rows))
    return _databases[url]


def warm_pool(job: TrainJob) -> int:
    """Read the rows a retrain of ``job`` would into this worker's copy of the pool;
    return how many."""
    database, pool = _database(job.database_url)
    schema: FeatureSchema | None = database.meta.get_schema()
    if schema is None:
        return 0
    train, holdout = select_training_rows(pool, schema, job)
    return len(train) + len(holdout)


def calibrate(model: Any, x_hold: Any, y_hold: list[Any], classes: int) -> dict[str, Any]:
    """The isotonic map from the model's confidence to its share right, on the holdout."""
    import msgspec

    from continual.core.estimate import fit_calibration

    proba = model.predict_rows(x_hold)
    predicted = model.labels_of(proba)
    hits = [p == t for p, t in zip(predicted, y_hold, strict=True)]
    cal = fit_calibration(proba.max(axis=1), hits, classes)
    return dict(msgspec.to_builtins(cal))


def train_challenger(job: TrainJob, registry: RegistryPort) -> TrainOutcome:
    """Fit every family of the pool, keep the best on the holdout, score it and the
    champion on the same holdout, log every candidate and register the best."""
    from continual.adapters.models import accuracy, dumps, frame, sha256, write_atomic
    from continual.core import drift
    from continual.core.policy import should_promote
    from continual.services.compile import onnx_for

    started = time.perf_counter()
    database, pool = _database(job.database_url)
    schema: FeatureSchema | None = database.meta.get_schema()
    if schema is None:
        raise TrainingFailed("no data yet", {"rows": 0})
    train_raw, holdout_raw = select_training_rows(pool, schema, job)
    read_seconds = time.perf_counter() - started
    if len(train_raw) < MIN_TRAIN_ROWS:
        raise TrainingFailed(
            f"only {len(train_raw)} training rows (need {MIN_TRAIN_ROWS} besides the holdout)",
            {"rows": len(train_raw)},
        )
    x_train, y_train = train_raw.x, train_raw.y
    x_hold, y_hold = holdout_raw.x, holdout_raw.y
    classes = sorted(str(y) for y in set(y_train))  # a set first: no str() per row
    if len(classes) < 2:
        raise TrainingFailed(
            f"the training window holds one class only ({classes[0]})", {"classes": classes}
        )
    fresh = 0 if job.fresh_from is None else int(np.count_nonzero(train_raw.ids >= job.fresh_from))
    data = Window(
        schema, x_train, y_train, x_hold, y_hold, fresh, min(len(x_train), job.train_window)
    )
    searches = search_pool(job, data, started + job.search_seconds)
    best = choose(searches)
    fit_seconds = sum(r.fit_seconds for r in searches)
    champion_acc: float | None = None
    if job.champion is not None:
        champion_model = load_local(
            Path(job.models_dir), job.champion.version, job.champion.sha256, schema
        )
        if champion_model is not None:
            champion_acc = accuracy(champion_model, x_hold, y_hold)
    promoted, reason = should_promote(best.score, champion_acc, job.min_improvement)
    if len(searches) > 1:
        reason = f"{best.model_type} (best of {len(searches)} families): {reason}"
    blob = dumps(best.pipeline)
    digest = sha256(blob)
    first_row = int(train_raw.ids[max(0, len(train_raw) - best.fit_rows)])
    reference = {
        **drift.reference(x_train[-min(best.fit_rows, 5000) :], schema, job.seed),
        # the calibration of the estimate (core.estimate), kept with the version's reference
        "calibration": calibrate(best.model, x_hold, y_hold, len(classes)),
    }
    common = {
        "change_row": str(job.fresh_from if job.fresh_from is not None else int(train_raw.ids[0])),
        "window_rows": str(len(train_raw)),
        "holdout_rows": str(len(holdout_raw)),
        "threshold": str(job.threshold),
        "seed": str(job.seed),
        "strategy": job.strategy,
        "train_window": str(job.train_window),
        "history_rows": str(job.history_rows),
        "window_last_row": str(int(holdout_raw.ids[-1])),
        "n_features": str(len(schema.features)),
        "classes": ",".join(classes)[:250],
        "trigger": job.trigger[:250],
        "model_types": ",".join(job.model_types),
        "candidates": ",".join(f"{r.model_type}:{r.score:.4f}" for r in searches)[:250],
        "calibration_rows": str(len(holdout_raw)),
    }
    params = {
        **common,
        "model_type": best.model_type,
        "n_samples": str(best.fit_rows),
        "windows_tried": tried(best),
        "window_first_row": str(first_row),
    }
    metrics = {
        "challenger_accuracy": best.score,
        "fit_seconds": fit_seconds,
        "read_seconds": read_seconds,
        "train_rows": float(best.fit_rows),
        **{f"{r.model_type}_accuracy": r.score for r in searches},
    }
    if champion_acc is not None:
        metrics["champion_accuracy"] = champion_acc
    onnx_blob = onnx_for(best.pipeline, schema, x_hold, params)
    verdict = "promoted" if promoted else "rejected"
    others = [
        CandidateRun(
            name=r.model_type,
            params={
                **common,
                "model_type": r.model_type,
                "n_samples": str(r.fit_rows),
                "windows_tried": tried(r),
            },
            metrics={"holdout_accuracy": r.score, "fit_seconds": r.fit_seconds},
        )
        for r in searches
        if r is not best
    ]
    logged = registry.log_retrain(
        pipeline=best.pipeline,
        blob=blob,
        input_example=frame(x_hold[:5], schema),
        output_example=best.model.predict_rows(x_hold[:5]),
        params=params,
        metrics=metrics,
        tags={"continual.verdict": verdict, "continual.reason": reason[:250]},
        candidates=others,
        onnx_blob=onnx_blob,
    )
    write_atomic(Path(job.models_dir) / f"{logged.version}.pkl", blob)
    if onnx_blob is not None:
        write_atomic(Path(job.models_dir) / f"{logged.version}.onnx", onnx_blob)
    run_ids = {c.name: c_id for c, c_id in zip(others, logged.candidate_run_ids, strict=True)}
    return TrainOutcome(
        version=logged.version,
        run_id=logged.run_id,
        promoted=promoted,
        reason=reason,
        challenger_accuracy=best.score,
        champion_accuracy=champion_acc,
        sha256=digest,
        reference=reference,
        params=params,
        metrics=metrics,
        train_rows=best.fit_rows,
        holdout_rows=len(holdout_raw),
        fit_seconds=fit_seconds,
        total_seconds=time.perf_counter() - started,
        model_type=best.model_type,
        candidates=[
            Candidate(
                model_type=r.model_type,
                accuracy=r.score,
                train_rows=r.fit_rows,
                fit_seconds=round(r.fit_seconds, 4),
                windows_tried=tried(r),
                run_id=logged.run_id if r is best else run_ids.get(r.model_type, ""),
            )
            for r in searches
        ],
    )
