"""Labelled streams with known drift points, their oracles, and the in-process learners.

A stream is a warm-up (the history a first model is trained on) followed by segments,
each a block of rows from one concept. An abrupt drift is a segment boundary where the
concept changes. Every segment has an oracle: the better of a logistic regression and a
gradient-boosted model fitted on 5,000 fresh rows of its concept and scored on 5,000
more; "recovered" means back within 2 points of it.

- ``generate``: the service's own ``/generate`` rows (``continual.adapters.models.synthetic``,
  the very function behind the route), concepts 0 -> 1 -> 2 -> 3.
- ``sea``: River's SEA generator, variants 0 -> 1 -> 2 -> 3 (thresholds 8, 9, 7, 9.5) with
  10 % label noise, concatenated (River's ``ConceptDriftStream`` with width 1 overflows).
- ``sea-stable``: SEA variant 0 throughout: no drift, so every retrain is a false alarm.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Row = dict[str, float]
ORACLE_ROWS = 5000
SEA_NOISE = 0.1


@dataclass(frozen=True)
class Segment:
    """Rows ``[start, end)`` of the evaluated stream, all of one concept."""

    start: int
    end: int
    concept: str
    oracle: float


@dataclass(frozen=True)
class Stream:
    """A warm-up, then the evaluated rows with their segments."""

    name: str
    seed: int
    warmup: list[tuple[Row, int]]
    rows: list[tuple[Row, int]]
    segments: list[Segment]

    @property
    def drifts(self) -> list[int]:
        """Row indices where the concept changes."""
        return [b.start for a, b in itertools.pairwise(self.segments) if a.concept != b.concept]


@dataclass
class Labels:
    """When each row's label reaches the learner: after ``delay`` rows, or never."""

    delay: int
    labelled: list[bool] = field(default_factory=list)

    def due(self, i: int) -> int | None:
        """The row whose label arrives right after row ``i`` was predicted, if any."""
        j = i - self.delay
        if j < 0 or not self.labelled[j]:
            return None
        return j


def schedule(variant: str, n: int, seed: int, delay: int) -> Labels:
    """``immediate``: every label at once; ``delayed``: every label ``delay`` rows later;
    ``half``: a seeded half of the rows get their label at once, the rest never."""
    if variant == "immediate":
        return Labels(0, [True] * n)
    if variant == "delayed":
        return Labels(delay, [True] * n)
    if variant == "half":
        rng = np.random.default_rng(seed + 7919)
        return Labels(0, [bool(v) for v in rng.random(n) < 0.5])
    raise ValueError(f"unknown variant {variant!r}")


def oracle_accuracy(
    fit_rows: Sequence[tuple[Row, int]], test_rows: Sequence[tuple[Row, int]]
) -> float:
    """The better of LogisticRegression and HistGradientBoosting, fitted on ``fit_rows``."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    names = list(fit_rows[0][0])
    x = np.array([[r[c] for c in names] for r, _ in fit_rows])
    y = np.array([t for _, t in fit_rows])
    xt = np.array([[r[c] for c in names] for r, _ in test_rows])
    yt = np.array([t for _, t in test_rows])
    best = 0.0
    for model in (
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        HistGradientBoostingClassifier(random_state=0),
    ):
        model.fit(x, y)
        best = max(best, float((model.predict(xt) == yt).mean()))
    return best


def _segments(
    name: str,
    seed: int,
    concepts: Sequence[Any],
    segment_rows: int,
    warmup_rows: int,
    draw: Callable[[Any, int, int], list[tuple[Row, int]]],
) -> Stream:
    warmup: list[tuple[Row, int]] = []
    rows: list[tuple[Row, int]] = []
    segments: list[Segment] = []
    for k, concept in enumerate(concepts):
        extra = warmup_rows if k == 0 else 0
        drawn = draw(concept, seed * 100 + k, extra + segment_rows + 2 * ORACLE_ROWS)
        warmup += drawn[:extra]
        body = drawn[extra : extra + segment_rows]
        held = drawn[extra + segment_rows :]
        oracle = oracle_accuracy(held[:ORACLE_ROWS], held[ORACLE_ROWS:])
        segments.append(Segment(len(rows), len(rows) + len(body), str(concept), oracle))
        rows += body
    return Stream(name, seed, warmup, rows, segments)


def _generate(concept: Any, seed: int, n: int) -> list[tuple[Row, int]]:
    from continual.adapters.models import synthetic

    features, labels = synthetic(n, 2, int(concept), seed)
    return list(zip(features, labels, strict=True))


def _sea(variant: Any, seed: int, n: int) -> list[tuple[Row, int]]:
    from river.datasets import synth

    out: list[tuple[Row, int]] = []
    for x, y in itertools.islice(synth.SEA(variant=int(variant), noise=SEA_NOISE, seed=seed), n):
        out.append(({f"x{i + 1}": round(float(v), 6) for i, v in x.items()}, int(y)))
    return out


STREAMS: dict[str, tuple[tuple[int, ...], Callable[[Any, int, int], list[tuple[Row, int]]]]] = {
    "generate": ((0, 1, 2, 3), _generate),
    "sea": ((0, 1, 2, 3), _sea),
    "sea-stable": ((0, 0, 0, 0), _sea),
}


def build(name: str, seed: int, segment_rows: int, warmup_rows: int) -> Stream:
    """The stream ``name`` for ``seed``: ``warmup_rows`` of history, then four segments."""
    concepts, draw = STREAMS[name]
    return _segments(name, seed, concepts, segment_rows, warmup_rows, draw)


# ---- in-process learners (run in a worker process, beside the HTTP replay) ----------------


def _river(kind: str, seed: int) -> Any:
    from river import forest, tree

    if kind == "ARF":
        return forest.ARFClassifier(n_models=10, seed=seed)
    return tree.HoeffdingAdaptiveTreeClassifier(seed=seed)


def replay_in_process(stream: Stream, labels: Labels, model_type: str) -> dict[str, list[bool]]:
    """Test-then-train the comparison learners on ``stream``, labels arriving as
    ``labels`` says; return each learner's per-row correctness.

    ``never retrained``: the service's own pipeline fitted once on the warm-up, the way
    the original design served one model forever. ARF and HAT: River, learning each
    label when (and if) it arrives."""
    from threadpoolctl import threadpool_limits

    from continual.adapters.models import CompiledModel, fit
    from continual.core.schema import infer_schema

    threadpool_limits(1)
    first, label = stream.warmup[0]
    schema = infer_schema({**first, "target": label}, "target", "warmup[0]")
    pipeline = fit(
        model_type,
        schema,
        [r for r, _ in stream.warmup],
        [y for _, y in stream.warmup],
        42,
    )
    static = CompiledModel(pipeline, schema)
    predicted = static.labels_of(static.predict_rows([r for r, _ in stream.rows]))
    out: dict[str, list[bool]] = {
        "never retrained": [p == y for p, (_, y) in zip(predicted, stream.rows, strict=True)]
    }
    for kind in ("ARF", "HAT"):
        model = _river(kind, stream.seed)
        for x, y in stream.warmup:
            model.learn_one(x, y)
        correct: list[bool] = []
        for i, (x, y) in enumerate(stream.rows):
            correct.append(model.predict_one(x) == y)
            j = labels.due(i)
            if j is not None:
                model.learn_one(*stream.rows[j])
        out[kind] = correct
    return out
