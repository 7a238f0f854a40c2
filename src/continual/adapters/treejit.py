"""One row through a boosted tree ensemble, compiled by numba (the single-row predict path).

A 100-tree HistGradientBoosting has ~6,000 nodes and a row visits ~1,000 of them. Written
out as nested ``if``s in Python that took ~21 us a row; an ONNX session takes ~15 us but
releases the GIL for the call, and under load the prediction log's flush thread takes it
meanwhile (a request then cost ~85 us more CPU than a linear one's). One numba kernel,
compiled once per process for every ensemble (the trees are its array arguments, not its
code), keeps the GIL (``nogil=False``) and takes ~4 us a row with the call
(``CompiledModel.predict_one``, its input included: 5.7 us).

The walk has no branch to mispredict and overlaps the trees' memory reads: each tree's
nodes are laid out breadth first with a split's two children side by side, so a step is
``child + (x > threshold)``; a leaf points to itself (threshold +inf), so eight trees
are stepped together for as many steps as the deepest of them needs. One tree at a time,
ending at each leaf, took 5.9 us warm and 8.9 us with the caches cold; eight at once
3.75 and 6.1 us. A node's split is one 16-byte record, so a step reads one cache line:
a walk touches ~1,000 lines, not ~3,000, and leaves more of the caches to the rest of the
request (in the server, the main thread's CPU a request above a linear champion's went
from ~25 to ~20 us).

The arithmetic is scikit-learn's own (each tree's leaf value added in iteration order to
the baseline, then the link), so the answer equals ``predict_proba``'s exactly. numba is
imported on the first tree champion only: a linear one never pays its ~60 MiB.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from continual.core.onerow import logistic, softmax

GROUP = 8  # trees stepped together
# a step reads one 16-byte record, one cache line, not one line in each of three arrays
_SPLIT = np.dtype([("threshold", np.float64), ("child", np.int32), ("feature", np.int32)])


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
    numbers: Any,
    hot: Any,
    mean: Any,
    scale: Any,
    width: int,
    nodes: tuple[Any, Any],
    trees: tuple[Any, Any, Any],
    base: Any,
) -> Any:
    """The raw scores of one row: its input (``numbers`` standardised, as the pipeline's
    scaler does, then the one-hot columns ``hot``), and for each tree (in iteration order)
    the value of the leaf it reaches added to its output's sum in ``base``'s copy.
    ``nodes``: each node's split (a ``_SPLIT`` record: threshold; child, its left, the
    right next to it, a leaf its own; feature) and leaf value. ``trees``: each tree's
    root and output, and each group of ``GROUP`` trees' depth."""
    split, value = nodes
    roots, output, depth = trees
    x = np.zeros(width)
    for i in range(numbers.shape[0]):
        x[i] = (numbers[i] - mean[i]) / scale[i]
    for k in hot:
        x[k] = 1.0
    s = base.copy()
    at = np.empty(GROUP, dtype=np.int64)
    n = roots.shape[0]
    for g in range(depth.shape[0]):
        first = g * GROUP
        m = min(GROUP, n - first)
        for t in range(m):
            at[t] = roots[first + t]
        for _ in range(depth[g]):
            for t in range(m):
                node = split[at[t]]
                at[t] = node.child + (x[node.feature] > node.threshold)
        for t in range(m):
            s[output[first + t]] += value[at[t]]
    return s


@functools.cache
def _kernel() -> Callable[..., Any]:
    """The compiled walk, made on first use (cached on disk where numba can write)."""
    import numba

    try:
        return numba.njit(nogil=False, cache=True)(_walk)
    except RuntimeError:  # no writable cache location: compile in memory
        return numba.njit(nogil=False)(_walk)


_NO_HOT = np.zeros(0, dtype=np.intp)


class TreeRow:
    """A boosted ensemble's probabilities for one row, in plain Python floats."""

    def __init__(
        self,
        trees: Sequence[Sequence[Tree]],
        baseline: Sequence[float],
        link: str,
        standard: tuple[Sequence[float], Sequence[float], int] | None = None,
    ) -> None:
        """``trees``: per boosting iteration, one tree per output (``len(baseline)``
        outputs); ``link``: ``logistic`` (one output, two classes) or ``softmax``;
        ``standard``: the scaler's means and scales of the numeric inputs and the width of
        the model's input (one-hot columns after the numbers); none: the row is the input."""
        laid = _Layout()
        roots: list[int] = []
        outputs: list[int] = []
        depths: list[int] = []
        for per_output in trees:
            for k, tree in enumerate(per_output):
                roots.append(len(laid.feature))
                outputs.append(k)
                depths.append(laid.add(tree))
        if standard is None:
            width = 1 + max(laid.feature, default=0)
            standard = ([0.0] * width, [1.0] * width, width)
        mean, scale, width = standard
        self.link = link
        self._mean = np.asarray(mean, dtype=np.float64)
        self._scale = np.asarray(scale, dtype=np.float64)
        self._width = width
        split = np.empty(len(laid.feature), dtype=_SPLIT)
        split["threshold"], split["child"], split["feature"] = (
            laid.threshold,
            laid.child,
            laid.feature,
        )
        self._nodes = (split, np.asarray(laid.value, dtype=np.float64))
        group_depth = [max(depths[i : i + GROUP]) for i in range(0, len(depths), GROUP)]
        self._trees = (
            np.asarray(roots, dtype=np.int64),
            np.asarray(outputs, dtype=np.int64),
            np.asarray(group_depth, dtype=np.int64),
        )
        self._base = np.asarray(baseline, dtype=np.float64)
        self._walk = _kernel()
        self.raw(self._mean.tolist())  # compiled here, not on a request

    def raw(self, numbers: Sequence[float], hot: Sequence[int] = ()) -> list[float]:
        """The ensemble's raw scores (log-odds), one per output, of the row whose numeric
        inputs are ``numbers`` (before scaling) and whose one-hot columns ``hot`` are 1."""
        return self._walk(  # type: ignore[no-any-return]
            np.asarray(numbers, dtype=np.float64),
            np.asarray(hot, dtype=np.intp) if hot else _NO_HOT,
            self._mean,
            self._scale,
            self._width,
            self._nodes,
            self._trees,
            self._base,
        ).tolist()

    def proba(self, numbers: Sequence[float], hot: Sequence[int] = ()) -> list[float]:
        """Probabilities of each class, in the model's class order."""
        z = self.raw(numbers, hot)
        if self.link == "logistic":
            p1 = logistic(z[0])
            return [1.0 - p1, p1]
        return softmax(z)


class _Layout:
    """Every tree's nodes in one set of arrays, each tree breadth first."""

    def __init__(self) -> None:
        self.feature: list[int] = []
        self.threshold: list[float] = []
        self.child: list[int] = []
        self.value: list[float] = []

    def add(self, tree: Tree) -> int:
        """Append ``tree``'s nodes, the children of a split side by side; its depth."""
        start = len(self.feature)
        placed = 1  # nodes given a slot so far
        deepest = 0
        queue = deque([(0, 0)])
        while queue:
            node, depth = queue.popleft()
            left = tree.left[node]
            if left < 0:  # a leaf steps to itself: x > +inf is never true
                self.feature.append(0)
                self.threshold.append(math.inf)
                self.child.append(len(self.child))
                self.value.append(float(tree.value[node]))
                deepest = max(deepest, depth)
                continue
            self.feature.append(int(tree.feature[node]))
            self.threshold.append(float(tree.threshold[node]))
            self.child.append(start + placed)
            self.value.append(0.0)
            placed += 2
            queue += ((left, depth + 1), (tree.right[node], depth + 1))
        return deepest
