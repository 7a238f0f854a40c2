"""Labelled streams with known drift points, their oracles, and label schedules.

A stream is a warm-up (the history a first model is trained on) followed by segments,
each a block of rows from one concept, or (a *moving* segment) a concept that changes a
little on every row. A drift starts where the concept changes: abrupt at a boundary
into a fixed concept, gradual over a moving segment. Every fixed segment has an oracle:
the better of the service's LogisticRegression and HistGradientBoosting pipelines
fitted on 5,000 fresh rows of its concept and scored on 5,000 more; "recovered" means
back within 2 points of it. A moving segment has no fixed concept and so no oracle.

The generators themselves are in ``_synth.py``; ``STREAMS`` lists every stream.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

Row = dict[str, float | str]
Rows = list[tuple[Row, int]]
ORACLE_ROWS = 5000
ORACLE_FAMILIES = ("logistic_regression", "hist_gradient_boosting")
CACHE = Path(__file__).resolve().parent / ".cache"  # gitignored: oracles and peers


@dataclass(frozen=True)
class Segment:
    """Rows ``[start, end)`` of the evaluated stream, all of one concept (or moving)."""

    start: int
    end: int
    concept: str
    oracle: float
    moving: bool = False


@dataclass(frozen=True)
class Drift:
    """A change of concept: it starts at row ``start`` and is complete at ``end``
    (``end == start`` for an abrupt drift); ``target`` is the fixed segment after it."""

    start: int
    end: int
    target: Segment

    @property
    def abrupt(self) -> bool:
        """Whether the concept changed at one row."""
        return self.end == self.start


@dataclass(frozen=True)
class Stream:
    """A warm-up, then the evaluated rows with their segments."""

    name: str
    seed: int
    warmup: Rows
    rows: Rows
    segments: list[Segment]

    @property
    def changes(self) -> list[Drift]:
        """Every drift, in order: a boundary into a new concept starts one; a moving
        segment is one drift, complete at the fixed segment that follows it."""
        out: list[Drift] = []
        for k, (a, b) in enumerate(itertools.pairwise(self.segments)):
            if a.concept == b.concept or a.moving:
                continue  # no change, or the end of a gradual drift already counted
            target = next((s for s in self.segments[k + 1 :] if not s.moving), b)
            out.append(Drift(b.start, target.start if b.moving else b.start, target))
        return out

    @property
    def drifts(self) -> list[int]:
        """Row indices where a drift starts."""
        return [d.start for d in self.changes]


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
    """The better of the service's LogisticRegression and HistGradientBoosting pipelines
    (scaled numbers, one-hot categories), fitted on ``fit_rows``."""
    from continual.adapters.models import CompiledModel, fit
    from continual.core.schema import infer_schema

    first, label = fit_rows[0]
    schema = infer_schema({**first, "target": label}, "target", "oracle")
    best = 0.0
    for family in ORACLE_FAMILIES:
        model = CompiledModel.of(
            fit(family, schema, [r for r, _ in fit_rows], [y for _, y in fit_rows], 0), schema
        )
        got = model.labels_of(model.predict_rows([r for r, _ in test_rows]))
        best = max(best, sum(p == y for p, (_, y) in zip(got, test_rows, strict=True)) / len(got))
    return best


def digest(*parts: Any) -> str:
    """A short hash of JSON-able ``parts`` (a cache key)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically (a rename), so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def cached_oracle(held: Rows) -> float:
    """``oracle_accuracy`` on ``held`` (fit on the first half, score on the rest),
    remembered on disk by a hash of the rows: it costs seconds per concept."""
    import sklearn

    key = digest(ORACLE_FAMILIES, sklearn.__version__, held)
    path = CACHE / "oracles" / f"{key}.json"
    if path.exists():
        return float(json.loads(path.read_text()))
    value = oracle_accuracy(held[:ORACLE_ROWS], held[ORACLE_ROWS:])
    write_json(path, value)
    return value


@dataclass(frozen=True)
class Part:
    """What a generator hands back for one segment: its rows and 2 x ORACLE_ROWS fresh
    rows of its concept (none for a moving segment)."""

    concept: str
    rows: Rows
    held: Rows
    moving: bool = False


def assemble(name: str, seed: int, warmup: Rows, parts: Sequence[Part]) -> Stream:
    """Concatenate the parts into a stream; an oracle per concept, fitted once."""
    rows: Rows = []
    segments: list[Segment] = []
    oracles: dict[str, float] = {}
    for part in parts:
        if part.moving:
            oracle = math.nan
        elif part.concept not in oracles:
            oracles[part.concept] = cached_oracle(part.held)
            oracle = oracles[part.concept]
        else:
            oracle = oracles[part.concept]
        segments.append(
            Segment(len(rows), len(rows) + len(part.rows), part.concept, oracle, part.moving)
        )
        rows += part.rows
    return Stream(name, seed, warmup, rows, segments)


Draw = Callable[[object, int, int], Rows]


def concepts(
    draw: Draw, sequence: Sequence[object]
) -> Callable[[int, int, int], tuple[Rows, list[Part]]]:
    """A stream of abrupt switches between fixed concepts: segment ``k`` draws its rows
    (and, first, the warm-up) from ``draw(concept, sample seed, n)``."""

    def make(seed: int, segment_rows: int, warmup_rows: int) -> tuple[Rows, list[Part]]:
        warmup: Rows = []
        parts: list[Part] = []
        for k, concept in enumerate(sequence):
            extra = warmup_rows if k == 0 else 0
            drawn = draw(concept, seed * 100 + k, extra + segment_rows + 2 * ORACLE_ROWS)
            warmup += drawn[:extra]
            parts.append(
                Part(
                    str(concept), drawn[extra : extra + segment_rows], drawn[extra + segment_rows :]
                )
            )
        return warmup, parts

    return make


@dataclass(frozen=True)
class Spec:
    """One stream: how to make it, what it tests, and server settings it runs with."""

    make: Callable[[int, int, int], tuple[Rows, list[Part]]]
    about: str
    env: dict[str, str] = field(default_factory=dict)


def build(name: str, seed: int, segment_rows: int, warmup_rows: int) -> Stream:
    """The stream ``name`` for ``seed``: ``warmup_rows`` of history, then its segments."""
    from _synth import STREAMS

    warmup, parts = STREAMS[name].make(seed, segment_rows, warmup_rows)
    return assemble(name, seed, warmup, parts)
