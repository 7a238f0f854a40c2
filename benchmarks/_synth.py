"""The benchmark's streams: the service's own ``/generate`` rows and River's synthetic
generators (``river.datasets.synth``), each turned into rows the service accepts
(string feature names; categories as strings; booleans as 0/1).

- ``generate``: the service's ``/generate`` rows (``continual.adapters.models.synthetic``,
  the function behind the route), concepts 0 -> 1 -> 2 -> 3 (a mirror, quarter turns).
- ``sea``: SEA variants 0 -> 1 -> 2 -> 3 (thresholds 8, 9, 7, 9.5), 10 % label noise.
- ``sea-stable``: SEA variant 0 throughout: no drift.
- ``randomtree``: a random tree concept over 5 numeric and 5 categorical features (River's
  defaults), a new tree (seed) per segment.
- ``stagger``: three categorical attributes, STAGGER's concepts 0 -> 1 -> 2.
- ``mixed``: two boolean and two numeric attributes, its functions 0 -> 1 -> 0 (each the
  other's complement).
- ``sine``: SINE1 -> reversed SINE1 -> SINE2 -> reversed SINE2.
- ``rbf-gradual``: 50 Gaussian centroids over 10 features (``RandomRBFDrift``): fixed,
  then every centroid moving 0.001 a row for one segment (a gradual drift), then fixed.
- ``covariate``: a fixed noisy concept (``P(y=1|x) = sigmoid(4 (x0 + x1))``) whose
  inputs move: two clusters away from the boundary, then about the boundary, then away
  again (covariate shift alone: the labelling rule never changes).
- ``waveform``: Waveform's 3 classes, stationary; the best reachable accuracy is about
  0.86, and the run sets ``PERFORMANCE_THRESHOLD=0.9`` so that the threshold is out of
  reach: every retrain there is one without a drift.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Iterator
from typing import Any

from _streams import ORACLE_ROWS, Part, Rows, Spec, concepts

SEA_NOISE = 0.1
RBF_SPEED = 0.001


def _rows(
    samples: Iterable[tuple[dict[Any, Any], Any]], n: int, categorical: Iterable[Any] = ()
) -> Rows:
    """``n`` samples as service rows: names ``x<i>`` for integer keys, categories as
    strings, numbers as floats rounded to 6 digits (what a client would send)."""
    cats = set(categorical)
    out: Rows = []
    for x, y in itertools.islice(samples, n):
        row: dict[str, float | str] = {}
        for k, v in x.items():
            name = k if isinstance(k, str) else f"x{k}"
            row[name] = str(v) if k in cats else round(float(v), 6)
        out.append((row, int(y)))
    return out


def _generate(concept: object, seed: int, n: int) -> Rows:
    from continual.adapters.models import synthetic

    features, labels = synthetic(n, 2, int(str(concept)), seed)
    return [(dict(f), int(y)) for f, y in zip(features, labels, strict=True)]


def _sea(variant: object, seed: int, n: int) -> Rows:
    from river.datasets import synth

    return _rows(synth.SEA(variant=int(str(variant)), noise=SEA_NOISE, seed=seed), n)


def _randomtree(_: object, seed: int, n: int) -> Rows:
    from river.datasets import synth

    # the tree follows the segment's seed: a new concept per segment and per stream seed
    gen = synth.RandomTree(seed_tree=seed + 1000, seed_sample=seed)
    return _rows(gen, n, gen.features_cat)


def _stagger(function: object, seed: int, n: int) -> Rows:
    from river.datasets import synth

    gen = synth.STAGGER(classification_function=int(str(function)), seed=seed)
    names = {"size": gen.size_labels, "color": gen.color_labels, "shape": gen.shape_labels}
    return [({k: names[k][v] for k, v in x.items()}, int(y)) for x, y in itertools.islice(gen, n)]


def _mixed(function: object, seed: int, n: int) -> Rows:
    from river.datasets import synth

    return _rows(synth.Mixed(classification_function=int(str(function)), seed=seed), n)


def _sine(function: object, seed: int, n: int) -> Rows:
    from river.datasets import synth

    return _rows(synth.Sine(classification_function=int(str(function)), seed=seed), n)


def _covariate(where: object, seed: int, n: int) -> Rows:
    import numpy as np

    rng = np.random.default_rng(seed)
    if where == "near":
        x = rng.normal(0.0, 0.4, (n, 2))
    else:
        side = rng.choice([-1.0, 1.0], n)[:, None]
        x = side * 1.2 + rng.normal(0.0, 0.6, (n, 2))
    p = 1.0 / (1.0 + np.exp(-4.0 * (x[:, 0] + x[:, 1])))
    y = rng.random(n) < p
    return [
        ({"x0": round(float(a), 6), "x1": round(float(b), 6)}, int(c))
        for (a, b), c in zip(x, y, strict=True)
    ]


def _waveform(_: object, seed: int, n: int) -> Rows:
    from river.datasets import synth

    return _rows(synth.Waveform(seed=seed), n)


def _rbf_gradual(seed: int, segment_rows: int, warmup_rows: int) -> tuple[Rows, list[Part]]:
    """Fixed centroids, then moving for one segment, then fixed again. The fresh rows of
    a fixed concept are drawn from the generator's centroids as they are then, with
    their own random source (River's ``_generate_sample``: the generator's one sampler)."""
    from river.datasets import synth

    gen = synth.RandomRBFDrift(
        seed_model=seed, seed_sample=seed * 100, change_speed=0.0, n_drift_centroids=50
    )
    stream: Iterator[Any] = iter(gen)

    def held(k: int) -> Rows:
        rng = random.Random(seed * 100 + 50 + k)
        n = 2 * ORACLE_ROWS
        return _rows((gen._generate_sample(rng) for _ in range(n)), n)

    warmup = _rows(stream, warmup_rows)
    first = Part("fixed A", _rows(stream, segment_rows), held(0))
    gen.change_speed = RBF_SPEED  # read on every row: the centroids move from here on
    moving = Part("moving", _rows(stream, segment_rows), [], moving=True)
    gen.change_speed = 0.0
    last = Part("fixed B", _rows(stream, segment_rows), held(2))
    return warmup, [first, moving, last]


STREAMS: dict[str, Spec] = {
    "generate": Spec(concepts(_generate, (0, 1, 2, 3)), "the service's /generate, abrupt"),
    "sea": Spec(concepts(_sea, (0, 1, 2, 3)), "SEA thresholds, abrupt, 10 % noise"),
    "sea-stable": Spec(concepts(_sea, (0, 0, 0, 0)), "SEA, stationary"),
    "randomtree": Spec(
        concepts(_randomtree, ("tree 1", "tree 2", "tree 3")), "random tree, a new tree per segment"
    ),
    "stagger": Spec(concepts(_stagger, (0, 1, 2)), "STAGGER, categorical, abrupt"),
    "mixed": Spec(concepts(_mixed, (0, 1, 0)), "Mixed, function switched, abrupt"),
    "sine": Spec(concepts(_sine, (0, 1, 2, 3)), "Sine, function switched, abrupt"),
    "covariate": Spec(
        concepts(_covariate, ("far", "near", "far")), "fixed concept, inputs moved, covariate"
    ),
    "rbf-gradual": Spec(_rbf_gradual, "RBF centroids moving for one segment, gradual"),
    "waveform": Spec(
        concepts(_waveform, (0, 0, 0)),
        "Waveform, stationary, threshold out of reach",
        {"PERFORMANCE_THRESHOLD": "0.9"},
    ),
}
STATIONARY = ("sea-stable", "waveform")
