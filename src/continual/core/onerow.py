"""One row through a linear model in plain Python floats (the single-row predict path).

A dozen numpy calls on a one-row array (encode, standardise, the product, the link,
argmax, max) cost ~20 us of call overhead against well under 1 us of arithmetic; for a
linear champion a single-row prediction is done here instead, with the parameters the
compiled model holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from continual.core.frame import Matrix
from continual.core.types import FeatureValue


class OneRow:
    """A linear model's probabilities for one row, in plain Python floats: the arithmetic
    of ``adapters.models.CompiledModel.predict_proba`` (standardise, the dot product, the
    link), summed in input order, so it agrees with the matrix path to rounding."""

    def __init__(
        self,
        coef: Matrix,
        intercept: Matrix,
        link: str,
        numeric_at: Sequence[int],
        mean: Matrix,
        scale: Matrix,
        categorical_at: Sequence[tuple[int, Mapping[str, int]]],
    ) -> None:
        """``coef``: (inputs, outputs) as the matrix path multiplies; the numeric inputs come
        first (at ``numeric_at`` in a row), then each categorical feature's one-hot block
        (``categorical_at``: its place in a row, value -> input)."""
        self.link = link
        self.intercept: list[float] = intercept.tolist()
        rows: list[list[float]] = coef.tolist()
        self.numeric = list(
            zip(numeric_at, mean.tolist(), scale.tolist(), rows[: len(numeric_at)], strict=True)
        )
        self.categorical = [
            (at, {value: rows[k] for value, k in index.items()}) for at, index in categorical_at
        ]

    def proba(self, values: Sequence[FeatureValue]) -> list[float]:
        """Probabilities of each class, in the model's class order."""
        if len(self.intercept) == 1:  # two classes: one output, no loop over outputs
            z = 0.0
            for at, mean, scale, weights in self.numeric:
                z += (values[at] - mean) / scale * weights[0]
            for at, weights_of in self.categorical:
                one = weights_of.get(str(values[at]))
                if one is not None:
                    z += one[0]
            p1 = logistic(z + self.intercept[0])
            return [1.0 - p1, p1]
        zs = [0.0] * len(self.intercept)
        for at, mean, scale, weights in self.numeric:
            x = (values[at] - mean) / scale
            zs = [v + x * w for v, w in zip(zs, weights, strict=True)]
        for at, weights_of in self.categorical:
            one = weights_of.get(str(values[at]))
            if one is not None:
                zs = [v + w for v, w in zip(zs, one, strict=True)]
        zs = [v + b for v, b in zip(zs, self.intercept, strict=True)]  # as x @ coef + b
        if self.link == "softmax":
            return softmax(zs)
        p = [logistic(v) for v in zs]
        total = sum(p) or 1.0
        return [v / total for v in p]


def logistic(z: float) -> float:
    """The logistic link of one score (clamped where ``exp`` would overflow)."""
    return 1.0 / (1.0 + math.exp(-min(700.0, max(-700.0, z))))


def softmax(zs: Sequence[float]) -> list[float]:
    """The softmax of several scores, shifted by their largest as numpy's is."""
    top = max(zs)
    e = [math.exp(v - top) for v in zs]
    total = sum(e)
    return [v / total for v in e]
