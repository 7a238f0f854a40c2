"""One row through a tree ensemble as generated Python (the single-row predict path).

An ONNX session answers one row of a 100-tree HistGradientBoosting in ~15 us in process,
but it releases the GIL for the call: under load, the prediction log's flush thread takes
it, and the request waits to get it back (a single-row predict cost ~85 us of the server's
CPU more than a linear one's). Written out as nested ``if``s over the row's values, the
same trees take ~10 us of plain bytecode and never let go of the GIL. The arithmetic is
the library's own (each tree's leaf value added in order to the baseline, then the link),
so the answer equals scikit-learn's exactly, not to float32 as ONNX's does.

The source is made from numbers only (``repr`` of floats and ints), compiled in chunks of
``CHUNK_TREES`` trees (each a function taking the row's values as its arguments), so that
the serving thread runs between chunks while a new champion's are compiled; beyond
``MAX_NODES`` the ensemble is left to the batch runtime (a random forest of deep trees
would compile to megabytes of code).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

from continual.core.onerow import logistic, softmax

MAX_NODES = 20_000
MAX_DEPTH = 90
CHUNK_TREES = 25


class Tree(NamedTuple):
    """A fitted tree's nodes, as parallel lists (node 0 the root): a split sends the row
    left when ``row[feature] <= threshold``; a node with ``left < 0`` is a leaf of
    ``value``."""

    feature: Sequence[int]
    threshold: Sequence[float]
    left: Sequence[int]
    right: Sequence[int]
    value: Sequence[float]


Chunk = Callable[..., list[float]]


class TreeRow:
    """A boosted ensemble's probabilities for one encoded row, in plain Python floats."""

    def __init__(
        self, trees: Sequence[Sequence[Tree]], baseline: Sequence[float], link: str
    ) -> None:
        """``trees``: per boosting iteration, one tree per output (``len(baseline)``
        outputs); ``link``: ``logistic`` (one output, two classes) or ``softmax``."""
        self.baseline = [float(b) for b in baseline]
        self.link = link
        self._chunks: list[Chunk] = [
            _compile(trees[i : i + CHUNK_TREES], len(self.baseline), i)
            for i in range(0, len(trees), CHUNK_TREES)
        ]

    def raw(self, row: Sequence[float]) -> list[float]:
        """The ensemble's raw scores (log-odds), one per output."""
        s = list(self.baseline)
        for chunk in self._chunks:
            s = chunk(s, *row)
        return s

    def proba(self, row: Sequence[float]) -> list[float]:
        """Probabilities of each class, in the model's class order."""
        z = self.raw(row)
        if self.link == "logistic":
            p1 = logistic(z[0])
            return [1.0 - p1, p1]
        return softmax(z)


def tree_row(
    trees: Sequence[Sequence[Tree]], baseline: Sequence[float], link: str
) -> TreeRow | None:
    """A ``TreeRow``, or ``None`` when the ensemble has more than ``MAX_NODES`` nodes or a
    tree deeper than ``MAX_DEPTH`` (Python's parser takes 100 levels of indentation)."""
    every = [t for outputs in trees for t in outputs]
    if sum(len(t.left) for t in every) > MAX_NODES or any(_depth(t) > MAX_DEPTH for t in every):
        return None
    return TreeRow(trees, baseline, link)


def _compile(trees: Sequence[Sequence[Tree]], outputs: int, first: int) -> Chunk:
    """One function adding the leaf values of ``trees`` (iterations ``first``...) to the
    sums ``s``; the row's values come as arguments (locals are the cheapest names)."""
    width = 1 + max((f for its in trees for t in its for f in t.feature), default=0)
    lines = [f"def chunk(s, {', '.join(f'x{f}' for f in range(width))}, *_):"]
    sums = [f"s{k}" for k in range(outputs)]
    lines.append(f"    {', '.join(sums)}, = s")
    for its in trees:
        for k, tree in enumerate(its):
            _emit(tree, 0, 1, f"s{k}", lines)
    lines.append(f"    return [{', '.join(sums)}]")
    namespace: dict[str, object] = {"inf": math.inf}
    code = compile("\n".join(lines), f"<trees {first}..{first + len(trees) - 1}>", "exec")
    exec(code, namespace)  # noqa: S102 - source made from repr() of the model's numbers only
    return namespace["chunk"]  # type: ignore[return-value]


def _emit(tree: Tree, node: int, depth: int, total: str, lines: list[str]) -> None:
    pad = "    " * depth
    left = tree.left[node]
    if left < 0:
        lines.append(f"{pad}{total} += {_number(tree.value[node])}")
        return
    lines.append(f"{pad}if x{tree.feature[node]} <= {_number(tree.threshold[node])}:")
    _emit(tree, left, depth + 1, total, lines)
    lines.append(f"{pad}else:")
    _emit(tree, tree.right[node], depth + 1, total, lines)


def _depth(tree: Tree) -> int:
    deepest, stack = 0, [(0, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if tree.left[node] >= 0:
            stack += [(tree.left[node], depth + 1), (tree.right[node], depth + 1)]
    return deepest


def _number(value: float) -> str:
    """A float as source that reads back to the same double (``inf`` is bound by name)."""
    v = float(value)
    if math.isnan(v):
        raise ValueError("a tree threshold or leaf value is NaN")
    return repr(v)
