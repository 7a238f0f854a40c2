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


_NODE = np.dtype([("threshold", np.float64), ("child", np.int32), ("feature", np.int32)])


def _walk(
    numbers: Any, hot: Any, mean: Any, scale: Any, width: int, nodes: Any, roots: Any, base: Any
) -> Any:
    """The raw scores of one row: its input (``numbers`` standardised, as the pipeline's
    scaler does, then the one-hot columns ``hot``), and per iteration and output the value
    of the leaf it reaches added to ``base``. A node with ``child < 0`` is a leaf, its value
    in ``threshold``; else the row goes to ``child`` (left) or the node next to it."""
    x = np.zeros(width)
    for i in range(numbers.shape[0]):
        x[i] = (numbers[i] - mean[i]) / scale[i]
    for k in hot:
        x[k] = 1.0
    s = base.copy()
    for it in range(roots.shape[0]):
        for k in range(roots.shape[1]):
            node = nodes[roots[it, k]]
            while node.child >= 0:
                node = nodes[node.child + (x[node.feature] > node.threshold)]
            s[k] += node.threshold
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
        records: list[tuple[float, int, int]] = []
        roots: list[list[int]] = []
        for outputs in trees:
            roots.append([])
            for tree in outputs:
                roots[-1].append(len(records))
                _lay_out(tree, records)
        if standard is None:
            width = 1 + max((r[2] for r in records), default=0)
            standard = ([0.0] * width, [1.0] * width, width)
        mean, scale, width = standard
        self.link = link
        self._mean = np.asarray(mean, dtype=np.float64)
        self._scale = np.asarray(scale, dtype=np.float64)
        self._width = width
        self._nodes = np.array(records, dtype=_NODE)
        self._roots = np.asarray(roots, dtype=np.intp).reshape(len(trees), len(baseline))
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
            self._roots,
            self._base,
        ).tolist()

    def proba(self, numbers: Sequence[float], hot: Sequence[int] = ()) -> list[float]:
        """Probabilities of each class, in the model's class order."""
        z = self.raw(numbers, hot)
        if self.link == "logistic":
            p1 = logistic(z[0])
            return [1.0 - p1, p1]
        return softmax(z)


def _lay_out(tree: Tree, records: list[tuple[float, int, int]]) -> None:
    """Append ``tree``'s nodes breadth first, the children of a split side by side."""
    start = len(records)
    placed = 1  # nodes given a slot so far
    queue = deque([0])
    while queue:
        node = queue.popleft()
        left = tree.left[node]
        if left < 0:
            records.append((float(tree.value[node]), -1, 0))
            continue
        records.append((float(tree.threshold[node]), start + placed, int(tree.feature[node])))
        placed += 2
        queue += (left, tree.right[node])
