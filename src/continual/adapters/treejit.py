"""One row through a boosted tree ensemble, compiled by numba (the single-row predict path).

A 100-tree HistGradientBoosting has ~6,000 nodes and a row visits ~800 of them. Written
out as nested ``if``s in Python that took ~21 us a row; an ONNX session takes ~15 us but
releases the GIL for the call, and under load the prediction log's flush thread takes it
meanwhile (a request then cost ~85 us more CPU than a linear one's). One numba kernel,
compiled once per process for every ensemble (the trees are its array arguments, not its
code), walks them in ~3.5 us and keeps the GIL (``nogil=False``); ~6 us a row with the
call. Each tree's nodes are laid out breadth first with the two children of a split side
by side, so a step is ``child + (x > threshold)``: no branch to mispredict.

The arithmetic is scikit-learn's own (each tree's leaf value added in iteration order to
the baseline, then the link), so the answer equals ``predict_proba``'s exactly. numba is
imported on the first tree champion only: a linear one never pays its ~60 MiB.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from continual.core.onerow import logistic, softmax


class Tree(NamedTuple):
    """A fitted tree's nodes, as parallel lists (node 0 the root): a split sends the row
    left when ``row[feature] <= threshold``; a node with ``left < 0`` is a leaf of
    ``value``."""

    feature: Sequence[int]
    threshold: Sequence[float]
    left: Sequence[int]
    right: Sequence[int]
    value: Sequence[float]


def _walk(
    x: Any, feature: Any, threshold: Any, child: Any, value: Any, roots: Any, base: Any
) -> Any:
    """The raw scores of row ``x``: ``base`` plus, per iteration and output, the value of
    the leaf the row reaches (``child[node] < 0``: a leaf; else its left child, the right
    one next to it)."""
    s = base.copy()
    for it in range(roots.shape[0]):
        for k in range(roots.shape[1]):
            node = roots[it, k]
            c = child[node]
            while c >= 0:
                node = c + (x[feature[node]] > threshold[node])
                c = child[node]
            s[k] += value[node]
    return s


@functools.cache
def _kernel() -> Callable[..., Any]:
    """The compiled walk, made on first use (cached on disk where numba can write)."""
    import numba

    try:
        return numba.njit(nogil=False, cache=True)(_walk)
    except RuntimeError:  # no writable cache location: compile in memory
        return numba.njit(nogil=False)(_walk)


class TreeRow:
    """A boosted ensemble's probabilities for one encoded row, in plain Python floats."""

    def __init__(
        self, trees: Sequence[Sequence[Tree]], baseline: Sequence[float], link: str
    ) -> None:
        """``trees``: per boosting iteration, one tree per output (``len(baseline)``
        outputs); ``link``: ``logistic`` (one output, two classes) or ``softmax``."""
        feature: list[int] = []
        threshold: list[float] = []
        child: list[int] = []
        value: list[float] = []
        roots: list[list[int]] = []
        for outputs in trees:
            roots.append([])
            for tree in outputs:
                roots[-1].append(len(feature))
                _lay_out(tree, feature, threshold, child, value)
        self.link = link
        self._arrays = (
            np.asarray(feature, dtype=np.intp),
            np.asarray(threshold, dtype=np.float64),
            np.asarray(child, dtype=np.intp),
            np.asarray(value, dtype=np.float64),
            np.asarray(roots, dtype=np.intp).reshape(len(trees), len(baseline)),
            np.asarray(baseline, dtype=np.float64),
        )
        self._walk = _kernel()
        self.raw([0.0] * (1 + max(feature, default=0)))  # compiled here, not on a request

    def raw(self, row: Sequence[float]) -> list[float]:
        """The ensemble's raw scores (log-odds), one per output."""
        return self._walk(np.asarray(row, dtype=np.float64), *self._arrays).tolist()  # type: ignore[no-any-return]

    def proba(self, row: Sequence[float]) -> list[float]:
        """Probabilities of each class, in the model's class order."""
        z = self.raw(row)
        if self.link == "logistic":
            p1 = logistic(z[0])
            return [1.0 - p1, p1]
        return softmax(z)


def _lay_out(
    tree: Tree, feature: list[int], threshold: list[float], child: list[int], value: list[float]
) -> None:
    """Append ``tree``'s nodes breadth first, the children of a split side by side."""
    start = len(feature)
    placed = 1  # nodes given a slot so far
    queue = deque([0])
    while queue:
        node = queue.popleft()
        left = tree.left[node]
        if left < 0:
            feature.append(0)
            threshold.append(0.0)
            child.append(-1)
            value.append(float(tree.value[node]))
            continue
        feature.append(int(tree.feature[node]))
        threshold.append(float(tree.threshold[node]))
        child.append(start + placed)
        value.append(0.0)
        placed += 2
        queue += (left, tree.right[node])
