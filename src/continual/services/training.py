"""Work done in the training worker process: fit a challenger, gate it, log it to MLflow.

These functions run in the child (see ``worker``) and take and return plain Structs.
The child opens its own database engine and is the only process that imports mlflow.
"""

from __future__ import annotations

import contextlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from continual.core.errors import TrainingFailed
from continual.core.frame import Frame, Labelled
from continual.core.ports import RowsPort
from continual.core.types import (
    Candidate,
    FeatureSchema,
    Label,
    ModelType,
    TrainStrategy,
)

MIN_TRAIN_ROWS = 20
MIN_HOLDOUT_ROWS = 10
MIN_SEARCH_ROWS = 50
MIN_FRESH_ROWS = 20
SEARCH_DIVISORS = (1, 4, 16, 64)
# a smaller window must beat a larger one by this many standard errors of a holdout
# accuracy near 90 % (0.3 / sqrt(holdout rows)): on a stable noisy stream some small
# suffix always scores a row or two better by chance, and serves a worse model for good
SEARCH_MARGIN_SE = 1.0


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
    model_types: tuple[ModelType, ...]
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
    history_rows: int = 0  # how far back the window search may look (0: train_window)
    history_from: int | None = None  # the last located change: no row before it beyond the window
    search_seconds: float = 60.0


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
    model_type: str
    candidates: list[Candidate]


_databases: dict[str, Any] = {}  # one engine per database URL for the child's lifetime


def _database(url: str) -> Any:
    from continual.adapters.db import open_database

    if url not in _databases:
        _databases[url] = open_database(url, migrate_now=False)  # the parent migrated
    return _databases[url]


def select_training_rows(
    rows: RowsPort, schema: FeatureSchema, job: TrainJob
) -> tuple[Labelled, Labelled]:
    """Pick (train, holdout) rows by the job's strategy; the holdout is the newest rows."""
    if job.strategy == "all":
        lo, hi = rows.row_id_bounds()
        recent = rows.recent_rows(schema, hi - lo + 1)
    else:
        recent = rows.recent_rows(schema, max(job.train_window, job.history_rows))
        if job.history_from is not None and len(recent) > job.train_window:
            # beyond the window, only rows since the last located change: older ones are
            # of a concept the data has left
            first = int(np.searchsorted(recent.ids, job.history_from))
            recent = recent[min(first, len(recent) - job.train_window) :]
    # the holdout is the newest rows, capped so that it reflects the current concept
    # (after a drift a large holdout would be mostly rows of the old one)
    n_hold = max(MIN_HOLDOUT_ROWS, min(int(len(recent) * job.holdout_fraction), job.max_holdout))
    if job.fresh_from is not None:
        # after a located change, hold out the newest half of the rows since it: the gate
        # then judges on the new concept only, and the other half is left to train on (the
        # window search's holdout-length suffix is exactly those rows)
        fresh = int(np.count_nonzero(recent.ids >= job.fresh_from))
        if fresh >= 2 * MIN_FRESH_ROWS:
            n_hold = max(MIN_HOLDOUT_ROWS, min(n_hold, fresh // 2))
    train, holdout = recent[:-n_hold], recent[-n_hold:]
    if job.strategy == "replay" and len(recent):
        lo, _ = rows.row_id_bounds()
        oldest_recent = int(recent.ids[0])
        pool = oldest_recent - lo
        want = int(len(train) * job.replay_fraction / max(1e-9, 1 - job.replay_fraction))
        if pool > 0 and want > 0:
            rng = np.random.default_rng(job.seed)
            ids = rng.choice(np.arange(lo, oldest_recent), size=min(want, pool), replace=False)
            train = rows.rows_by_ids(schema, (int(i) for i in ids)) + train
    return train, holdout


class Search(msgspec.Struct, frozen=True, kw_only=True):
    """One family's window search: the chosen fit and its holdout score."""

    model_type: ModelType
    pipeline: Any
    model: Any
    score: float
    fit_rows: int
    tried: list[tuple[int, float]]
    fit_seconds: float
    hits: list[bool]  # per holdout row: did the chosen fit predict it right


def train_challenger(job: TrainJob) -> TrainOutcome:
    """Fit every family of the pool, keep the best on the holdout, score it and the
    champion on the same holdout, log every candidate and register the best."""
    from continual.adapters import tracking
    from continual.adapters.models import accuracy, dumps, frame, sha256, write_atomic
    from continual.core import drift
    from continual.core.policy import should_promote
    from continual.services.compile import onnx_for

    started = time.perf_counter()
    database = _database(job.database_url)
    schema: FeatureSchema | None = database.meta.get_schema()
    if schema is None:
        raise TrainingFailed("no data yet", {"rows": 0})
    train_raw, holdout_raw = select_training_rows(database.rows, schema, job)
    if len(train_raw) < MIN_TRAIN_ROWS:
        raise TrainingFailed(
            f"only {len(train_raw)} training rows (need {MIN_TRAIN_ROWS} besides the holdout)",
            {"rows": len(train_raw)},
        )
    x_train, y_train = train_raw.x, train_raw.y
    x_hold, y_hold = holdout_raw.x, holdout_raw.y
    classes = sorted({str(y) for y in y_train})
    if len(classes) < 2:
        raise TrainingFailed(
            f"the training window holds one class only ({classes[0]})", {"classes": classes}
        )
    fresh = 0 if job.fresh_from is None else int(np.count_nonzero(train_raw.ids >= job.fresh_from))
    data = Window(
        schema, x_train, y_train, x_hold, y_hold, fresh, min(len(x_train), job.train_window)
    )
    searches = _search_pool(job, data, started + job.search_seconds)
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
    reference = drift.reference(x_train[-min(best.fit_rows, 5000) :], schema, job.seed)
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
    }
    params = {
        **common,
        "model_type": best.model_type,
        "n_samples": str(best.fit_rows),
        "windows_tried": _tried(best),
        "window_first_row": str(first_row),
    }
    metrics = {
        "challenger_accuracy": best.score,
        "fit_seconds": fit_seconds,
        "train_rows": float(best.fit_rows),
        **{f"{r.model_type}_accuracy": r.score for r in searches},
    }
    if champion_acc is not None:
        metrics["champion_accuracy"] = champion_acc
    onnx_blob = onnx_for(best.pipeline, schema, x_hold, params)
    tracking.configure(
        job.tracking.tracking_uri,
        Path(job.tracking.data_dir),
        job.tracking.timeout,
        job.tracking.retries,
    )
    verdict = "promoted" if promoted else "rejected"
    others = [
        tracking.CandidateRun(
            name=r.model_type,
            params={
                **common,
                "model_type": r.model_type,
                "n_samples": str(r.fit_rows),
                "windows_tried": _tried(r),
            },
            metrics={"holdout_accuracy": r.score, "fit_seconds": r.fit_seconds},
        )
        for r in searches
        if r is not best
    ]
    logged = tracking.log_and_register(
        experiment=job.tracking.experiment,
        model_name=job.tracking.model_name,
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
                windows_tried=_tried(r),
                run_id=logged.run_id if r is best else run_ids.get(r.model_type, ""),
            )
            for r in searches
        ],
    )


def _tried(search: Search) -> str:
    return ",".join(f"{n}:{a:.3f}" for n, a in search.tried)[:250]


def choose(searches: list[Search]) -> Search:
    """The pool's winner: families in the configured order, a later one replacing the
    current best only when it is right on more holdout rows than it is wrong by more
    than one standard error of that paired difference (a sign test on the rows where the
    two disagree). Near-ties keep the earlier, usually simpler, family."""
    best = searches[0]
    for other in searches[1:]:
        wins = sum(o and not b for o, b in zip(other.hits, best.hits, strict=True))
        losses = sum(b and not o for o, b in zip(other.hits, best.hits, strict=True))
        if wins - losses > (wins + losses) ** 0.5:
            best = other
    return best


class Window(msgspec.Struct, frozen=True):
    """The rows a retrain searches over: training rows (oldest first), the holdout, how
    many of the training rows are since the located change, and the base window size."""

    schema: FeatureSchema
    x_train: Frame
    y_train: list[Label]
    x_hold: Frame
    y_hold: list[Label]
    fresh: int
    base: int


def _search_pool(job: TrainJob, data: Window, deadline: float) -> list[Search]:
    """Run the window search for each family; in parallel threads where the cores allow
    (one core is left to the server), each within the retrain's search budget."""
    families = list(job.model_types)
    workers = max(1, min(len(families), (os.cpu_count() or 1) - 1))
    results: dict[str, Search | TrainingFailed] = {}

    def run(family: ModelType) -> None:
        try:
            results[family] = _search_windows(job, family, data, deadline)
        except TrainingFailed as exc:
            results[family] = exc

    if workers == 1:
        for family in families:
            run(family)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, families))
    found = [r for f in families if isinstance(r := results[f], Search)]
    if not found:
        raise next(r for r in results.values() if isinstance(r, TrainingFailed))
    return found


def _sizes(data: Window) -> list[int]:
    """Window sizes in order of preference: the rows since a located change first, then
    largest to smallest. Beyond the base window, doublings back into the history; within
    it its newest 1/4, 1/16 and 1/64 and the newest one and two holdout-lengths."""
    n, h, base, fresh = len(data.x_train), len(data.x_hold), data.base, data.fresh
    wanted = {base // d for d in SEARCH_DIVISORS} | {h, 2 * h, n}
    size = base * 2
    while size < n:
        wanted.add(size)
        size *= 2
    sizes = {k for k in wanted if MIN_SEARCH_ROWS <= k <= n}
    order = sorted(sizes, reverse=True) or [n]
    if MIN_TRAIN_ROWS <= fresh <= n:
        # the rows of the new concept only: right after a drift they are too few for
        # the geometric sizes to hit them exactly, and any older row is of the old concept
        order = [fresh] + [k for k in order if k != fresh]
    return order


def _search_windows(job: TrainJob, family: ModelType, data: Window, deadline: float) -> Search:
    """Fit ``family`` on each window of ``_sizes`` and keep the best on the holdout (a
    window later in the order of preference must win by about one standard error, else
    the earlier one, which has more data or is the located concept, wins).

    After an abrupt drift the newest rows are the new concept, and a model of them wins
    long before they fill the whole window; on a stable stream the largest window wins.
    Windows beyond the base are fitted only while the estimated fit time (from the
    base window's) stays within the search budget. When the rows since the change win,
    the winner is refitted with the holdout rows added (see below)."""
    from continual.adapters.models import CompiledModel, accuracy, fit

    x_train, y_train, x_hold, y_hold = data.x_train, data.y_train, data.x_hold, data.y_hold
    n, h = len(x_train), len(x_hold)
    order = _sizes(data)
    # fit the base window first: its time prices the longer ones
    schedule = sorted(order, key=lambda k: (k > data.base, k if k > data.base else -k))
    margin = SEARCH_MARGIN_SE * 0.3 / max(1, h) ** 0.5
    fits: dict[int, tuple[Any, Any, float, list[bool]]] = {}
    spent = 0.0
    rate: float | None = None
    for size in schedule:
        labels = y_train[n - size :]
        if len({str(y) for y in labels}) < 2:
            continue
        if size > data.base and rate is not None and time.perf_counter() + rate * size > deadline:
            continue
        t0 = time.perf_counter()
        try:
            pipeline = fit(family, data.schema, x_train[n - size :], labels, job.seed)
        except ValueError as exc:
            if not fits and size == schedule[0]:
                raise TrainingFailed(f"fit failed: {exc}", None) from exc
            continue
        took = time.perf_counter() - t0
        spent += took
        if rate is None:  # the base window: the price per row of the longer ones
            rate = took / size
        model = CompiledModel(pipeline, data.schema)
        predicted = model.labels_of(model.predict_rows(x_hold))
        hits = [p == t for p, t in zip(predicted, y_hold, strict=True)]
        fits[size] = (pipeline, model, sum(hits) / max(1, h), hits)
    if not fits:
        raise TrainingFailed("no training window held two classes", None)
    tried = [(k, fits[k][2]) for k in order if k in fits]
    chosen = tried[0][0]
    for size, score in tried[1:]:
        if score > fits[chosen][2] + margin:
            chosen = size
    pipeline, model, score, hits = fits[chosen]
    fit_rows = chosen
    if chosen == data.fresh and chosen < n:
        # the rows since the change won: refit on them and the holdout, which is the
        # other half of them (right after a drift that doubles what the model learns
        # from). Kept only if it fits the holdout at least as well as the scored fit did,
        # which catches a degenerate refit; otherwise the scored fit is served.
        with contextlib.suppress(ValueError):
            t0 = time.perf_counter()
            refit = fit(
                family,
                data.schema,
                x_train[n - chosen :] + x_hold,
                y_train[n - chosen :] + y_hold,
                job.seed,
            )
            spent += time.perf_counter() - t0
            refit_model = CompiledModel(refit, data.schema)
            if accuracy(refit_model, x_hold, y_hold) >= score:
                pipeline, model, fit_rows = refit, refit_model, chosen + h
    return Search(
        model_type=family,
        pipeline=pipeline,
        model=model,
        score=score,
        fit_rows=fit_rows,
        tried=tried,
        fit_seconds=spent,
        hits=hits,
    )


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


def fetch_blob(tracking_cfg: TrackingConfig, version: str, onnx: bool = False) -> bytes:
    """Download our serialised model (or its ONNX form) for ``version`` from MLflow."""
    from continual.adapters import tracking

    tracking.configure(
        tracking_cfg.tracking_uri,
        Path(tracking_cfg.data_dir),
        tracking_cfg.timeout,
        tracking_cfg.retries,
    )
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
