"""Work done in the training worker process: fit a challenger, gate it, log it to MLflow.

These functions run in the child (see ``worker``) and take and return plain Structs.
The child opens its own database engine and is the only process that imports mlflow.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from continual.core.errors import TrainingFailed
from continual.core.types import FeatureSchema, FeatureValue, Label, ModelType, TrainStrategy

MIN_TRAIN_ROWS = 20
MIN_HOLDOUT_ROWS = 10
MIN_SEARCH_ROWS = 50
MIN_FRESH_ROWS = 20
SEARCH_DIVISORS = (1, 4, 16, 64)
# a smaller window must beat a larger one by this many standard errors of a holdout
# accuracy near 90 % (0.3 / sqrt(holdout rows)): on a stable noisy stream some small
# suffix always scores a row or two better by chance, and serves a worse model for good
SEARCH_MARGIN_SE = 1.0

_decode_rows = msgspec.json.Decoder(list[dict[str, float | str]]).decode
_decode_labels = msgspec.json.Decoder(list[int | str]).decode


class TrackingConfig(msgspec.Struct, frozen=True):
    """How the child reaches MLflow."""

    tracking_uri: str
    data_dir: str
    timeout: float
    retries: int
    experiment: str
    model_name: str


class ChampionRef(msgspec.Struct, frozen=True):
    """Enough to load the champion in the child for the gate."""

    version: str
    sha256: str


class TrainJob(msgspec.Struct, frozen=True, kw_only=True):
    """One retrain, as the parent asks for it."""

    database_url: str
    tracking: TrackingConfig
    models_dir: str
    model_type: ModelType
    seed: int
    strategy: TrainStrategy
    train_window: int
    replay_fraction: float
    holdout_fraction: float
    max_holdout: int
    min_improvement: float
    threshold: float
    champion: ChampionRef | None
    trigger: str
    fresh_from: int | None = None  # first row of the current concept, as the check located it


class TrainOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What the child produced: a registered version and the gate's verdict."""

    version: str
    run_id: str
    promoted: bool
    reason: str
    challenger_accuracy: float
    champion_accuracy: float | None
    sha256: str
    reference: dict[str, Any]
    params: dict[str, str]
    metrics: dict[str, float]
    train_rows: int
    holdout_rows: int
    fit_seconds: float
    total_seconds: float


_stores: dict[str, Any] = {}  # one engine per database URL for the child's lifetime


def _store(url: str) -> Any:
    from continual.adapters.db import Store, make_engine

    if url not in _stores:
        _stores[url] = Store(make_engine(url))
    return _stores[url]


def _rows(raw: list[tuple[int, str, str]]) -> tuple[list[dict[str, FeatureValue]], list[Label]]:
    features = _decode_rows(("[" + ",".join(f for _, f, _ in raw) + "]").encode())
    labels = _decode_labels(("[" + ",".join(lab for _, _, lab in raw) + "]").encode())
    return features, labels


def select_training_rows(
    store: Any, job: TrainJob
) -> tuple[list[tuple[int, str, str]], list[tuple[int, str, str]]]:
    """Pick (train, holdout) rows by the job's strategy; the holdout is the newest rows."""
    if job.strategy == "all":
        lo, hi = store.row_id_bounds()
        recent = store.recent_rows(hi - lo + 1)
    else:
        recent = store.recent_rows(job.train_window)
    # the holdout is the newest rows, capped so that it reflects the current concept
    # (after a drift a large holdout would be mostly rows of the old one)
    n_hold = max(MIN_HOLDOUT_ROWS, min(int(len(recent) * job.holdout_fraction), job.max_holdout))
    if job.fresh_from is not None:
        # after a located change, hold out the newest half of the rows since it: the gate
        # then judges on the new concept only, and the other half is left to train on (the
        # window search's holdout-length suffix is exactly those rows)
        fresh = sum(1 for r in recent if r[0] >= job.fresh_from)
        if fresh >= 2 * MIN_FRESH_ROWS:
            n_hold = max(MIN_HOLDOUT_ROWS, min(n_hold, fresh // 2))
    train, holdout = recent[:-n_hold], recent[-n_hold:]
    if job.strategy == "replay" and recent:
        lo, _ = store.row_id_bounds()
        oldest_recent = recent[0][0]
        pool = oldest_recent - lo
        want = int(len(train) * job.replay_fraction / max(1e-9, 1 - job.replay_fraction))
        if pool > 0 and want > 0:
            rng = np.random.default_rng(job.seed)
            ids = rng.choice(np.arange(lo, oldest_recent), size=min(want, pool), replace=False)
            train = store.rows_by_ids(int(i) for i in ids) + train
    return train, holdout


def train_challenger(job: TrainJob) -> TrainOutcome:
    """Fit a challenger, score it and the champion on the same holdout, log and register it."""
    from continual.adapters import tracking
    from continual.adapters.models import (
        accuracy,
        dumps,
        frame,
        sha256,
        write_atomic,
    )
    from continual.core import drift
    from continual.core.policy import should_promote

    started = time.perf_counter()
    store = _store(job.database_url)
    schema: FeatureSchema | None = store.get_schema()
    if schema is None:
        raise TrainingFailed("no data yet", {"rows": 0})
    train_raw, holdout_raw = select_training_rows(store, job)
    if len(train_raw) < MIN_TRAIN_ROWS:
        raise TrainingFailed(
            f"only {len(train_raw)} training rows (need {MIN_TRAIN_ROWS} besides the holdout)",
            {"rows": len(train_raw)},
        )
    x_train, y_train = _rows(train_raw)
    x_hold, y_hold = _rows(holdout_raw)
    classes = sorted({str(y) for y in y_train})
    if len(classes) < 2:
        raise TrainingFailed(
            f"the training window holds one class only ({classes[0]})", {"classes": classes}
        )
    fit_started = time.perf_counter()
    fresh = 0 if job.fresh_from is None else sum(1 for r in train_raw if r[0] >= job.fresh_from)
    pipeline, challenger, challenger_acc, fit_rows, tried = _search_windows(
        job, schema, x_train, y_train, x_hold, y_hold, fresh
    )
    fit_seconds = time.perf_counter() - fit_started
    champion_acc: float | None = None
    if job.champion is not None:
        champion_model = load_local(
            Path(job.models_dir), job.champion.version, job.champion.sha256, schema
        )
        if champion_model is not None:
            champion_acc = accuracy(champion_model, x_hold, y_hold)
    promoted, reason = should_promote(challenger_acc, champion_acc, job.min_improvement)
    blob = dumps(pipeline)
    digest = sha256(blob)
    reference = drift.reference(x_train[-min(fit_rows, 5000) :], schema, job.seed)
    params = {
        "model_type": job.model_type,
        "n_samples": str(fit_rows),
        "change_row": "" if job.fresh_from is None else str(job.fresh_from),
        "window_rows": str(len(train_raw)),
        "windows_tried": ",".join(f"{n}:{a:.3f}" for n, a in tried),
        "holdout_rows": str(len(holdout_raw)),
        "threshold": str(job.threshold),
        "seed": str(job.seed),
        "strategy": job.strategy,
        "train_window": str(job.train_window),
        "window_first_row": str(train_raw[max(0, len(train_raw) - fit_rows)][0]),
        "window_last_row": str(holdout_raw[-1][0]),
        "n_features": str(len(schema.features)),
        "classes": ",".join(classes)[:250],
        "trigger": job.trigger[:250],
    }
    metrics = {
        "challenger_accuracy": challenger_acc,
        "fit_seconds": fit_seconds,
        "train_rows": float(fit_rows),
    }
    if champion_acc is not None:
        metrics["champion_accuracy"] = champion_acc
    example = frame(x_hold[:5], schema)
    tracking.configure(
        job.tracking.tracking_uri,
        Path(job.tracking.data_dir),
        job.tracking.timeout,
        job.tracking.retries,
    )
    run_id, version = tracking.log_and_register(
        experiment=job.tracking.experiment,
        model_name=job.tracking.model_name,
        pipeline=pipeline,
        blob=blob,
        input_example=example,
        output_example=challenger.predict_rows(x_hold[:5]),
        params=params,
        metrics=metrics,
        tags={
            "continual.verdict": "promoted" if promoted else "rejected",
            "continual.reason": reason[:250],
        },
    )
    write_atomic(Path(job.models_dir) / f"{version}.pkl", blob)
    return TrainOutcome(
        version=version,
        run_id=run_id,
        promoted=promoted,
        reason=reason,
        challenger_accuracy=challenger_acc,
        champion_accuracy=champion_acc,
        sha256=digest,
        reference=reference,
        params=params,
        metrics=metrics,
        train_rows=fit_rows,
        holdout_rows=len(holdout_raw),
        fit_seconds=fit_seconds,
        total_seconds=time.perf_counter() - started,
    )


def _search_windows(
    job: TrainJob,
    schema: FeatureSchema,
    x_train: list[dict[str, FeatureValue]],
    y_train: list[Label],
    x_hold: list[dict[str, FeatureValue]],
    y_hold: list[Label],
    fresh: int = 0,
) -> tuple[Any, Any, float, int, list[tuple[int, float]]]:
    """Fit on the whole window, on its newest 1/4, 1/16 and 1/64, on the newest one and
        two holdout-lengths (each at least 50 rows), and on exactly the ``fresh`` rows since
        the located change (at least 20); keep the best on the holdout (a smaller window must
    win by about one standard error, else more data wins).

        After an abrupt drift the newest rows are the new concept, and a model of them wins
        long before they fill the whole window; on a stable stream the full window wins.

        When the rows since the change win, the winner is refitted with the holdout rows
        added (see below). Returns the pipeline, its compiled model, the holdout score of
        the choice, and how many rows it was fitted on."""
    from continual.adapters.models import CompiledModel, accuracy, fit

    n = len(x_train)
    h = len(x_hold)
    # geometric suffixes, plus the one and two holdout-lengths just before the holdout:
    # the holdout is capped to the current concept, so rows next to it likely are too
    wanted = {n // d for d in SEARCH_DIVISORS} | {h, 2 * h}
    sizes = {k for k in wanted if MIN_SEARCH_ROWS <= k <= n}
    if MIN_TRAIN_ROWS <= fresh <= n:
        # the rows of the new concept only: right after a drift they are too few for
        # the geometric sizes to hit them exactly, and any older row is of the old concept
        sizes.add(fresh)
    order = sorted(sizes, reverse=True) or [n]
    if fresh in sizes:  # a change was located: the rows before it must earn their place
        order = [fresh] + [k for k in order if k != fresh]
    margin = SEARCH_MARGIN_SE * 0.3 / max(1, h) ** 0.5
    best: tuple[Any, float, int] | None = None
    tried: list[tuple[int, float]] = []
    for size in order:
        labels = y_train[n - size :]
        if len({str(y) for y in labels}) < 2:
            continue
        try:
            pipeline = fit(job.model_type, schema, x_train[n - size :], labels, job.seed)
        except ValueError as exc:
            if best is None and size == n:
                raise TrainingFailed(f"fit failed: {exc}", None) from exc
            continue
        score = accuracy(CompiledModel(pipeline, schema), x_hold, y_hold)
        tried.append((size, score))
        if best is None or score > best[1] + margin:
            best = (pipeline, score, size)
    if best is None:
        raise TrainingFailed("no training window held two classes", None)
    pipeline, score, size = best
    model = CompiledModel(pipeline, schema)
    if size == fresh and size < n:
        # the rows since the change won: refit on them and the holdout, which is the
        # other half of them (right after a drift that doubles what the model learns
        # from). Kept only if it fits the holdout at least as well as the scored fit did,
        # which catches a degenerate refit; otherwise the scored fit is served.
        with contextlib.suppress(ValueError):
            refit = fit(
                job.model_type,
                schema,
                x_train[n - size :] + x_hold,
                y_train[n - size :] + y_hold,
                job.seed,
            )
            refit_model = CompiledModel(refit, schema)
            if accuracy(refit_model, x_hold, y_hold) >= score:
                return refit, refit_model, score, size + h, tried
    return pipeline, model, score, size, tried


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


def fetch_blob(tracking_cfg: TrackingConfig, version: str) -> bytes:
    """Download our serialised model for ``version`` from MLflow."""
    from continual.adapters import tracking

    tracking.configure(
        tracking_cfg.tracking_uri,
        Path(tracking_cfg.data_dir),
        tracking_cfg.timeout,
        tracking_cfg.retries,
    )
    return tracking.download_blob(tracking_cfg.model_name, version)


def warm_up(tracking_cfg: TrackingConfig) -> None:
    """Import the heavy libraries and create the MLflow store ahead of the first retrain.

    A fresh embedded MLflow store spends ~10 s creating its tables; doing it at start-up
    in the (niced) child keeps that off the first user-visible retrain."""
    from continual.adapters import tracking
    from continual.adapters.models import build_pipeline
    from continual.core.types import Feature, FeatureSchema

    # building a pipeline imports every estimator module the first fit would
    build_pipeline("logistic_regression", FeatureSchema((Feature("x", "numeric"),), "y", "int"), 0)
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
