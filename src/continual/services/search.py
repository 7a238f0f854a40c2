"""The training window and its search (run in the worker): which rows train and which
judge, and, for each family of the pool, which suffix of the window fits best.

After an abrupt drift the newest rows are the new concept, and a model of them wins long
before they fill the whole window; on a stable stream the largest window wins.
"""

from __future__ import annotations

import contextlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
import numpy as np

from continual.core.errors import TrainingFailed
from continual.core.frame import Frame, Labelled
from continual.core.ports import TrainingRowsPort
from continual.core.types import FeatureSchema, Label, ModelType
from continual.services.trainjob import TrainJob

MIN_TRAIN_ROWS = 20
MIN_HOLDOUT_ROWS = 10
MIN_SEARCH_ROWS = 50
MIN_FRESH_ROWS = 20
SEARCH_DIVISORS = (1, 4, 16, 64)
# a smaller window must beat a larger one by this many standard errors of a holdout
# accuracy near 90 % (0.3 / sqrt(holdout rows)): on a stable noisy stream some small
# suffix always scores a row or two better by chance, and serves a worse model for good
SEARCH_MARGIN_SE = 1.0


def select_training_rows(
    rows: TrainingRowsPort, schema: FeatureSchema, job: TrainJob
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


def tried(search: Search) -> str:
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


def search_pool(job: TrainJob, data: Window, deadline: float) -> list[Search]:
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
    the winner is refitted with the holdout rows added (see below).

    Strategy ``all`` asked for a model of all the history: it is fitted once, on all of
    it, with no search (a search there cost three times the fit at a million rows and
    could serve a model of 1/64 of the history that the operator did not ask for)."""
    from continual.adapters.models import CompiledModel, accuracy, fit

    x_train, y_train, x_hold, y_hold = data.x_train, data.y_train, data.x_hold, data.y_hold
    n, h = len(x_train), len(x_hold)
    order = [n] if job.strategy == "all" else _sizes(data)
    # fit the base window first: its time prices the longer ones
    schedule = sorted(order, key=lambda k: (k > data.base, k if k > data.base else -k))
    margin = SEARCH_MARGIN_SE * 0.3 / max(1, h) ** 0.5
    fits: dict[int, tuple[Any, Any, float, list[bool]]] = {}
    spent = 0.0
    rate: float | None = None
    for size in schedule:
        labels = y_train[n - size :]
        if len(set(labels)) < 2:  # labels are of one type (the schema's): no str() per row
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
        model = CompiledModel.of(pipeline, data.schema)
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
            refit_model = CompiledModel.of(refit, data.schema)
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
