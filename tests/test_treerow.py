"""A boosted ensemble's single row, as generated Python: the trees' own arithmetic."""

from __future__ import annotations

import math

import numpy as np

from continual.core import treerow
from continual.core.treerow import Tree, tree_row

LEAF = -1


def stump(feature: int, threshold: float, low: float, high: float) -> Tree:
    return Tree([feature, 0, 0], [threshold, 0.0, 0.0], [1, LEAF, LEAF], [2, 0, 0], [0, low, high])


def chain(depth: int) -> Tree:
    """A tree going right ``depth`` times: node 2k splits, node 2k+1 is a leaf."""
    feature, threshold, left, right, value = [], [], [], [], []
    for k in range(depth):
        feature += [0, 0]
        threshold += [float(k), 0.0]
        left += [2 * k + 1, LEAF]
        right += [2 * k + 2, 0]
        value += [0.0, float(k)]
    return Tree([*feature, 0], [*threshold, 0.0], [*left, LEAF], [*right, 0], [*value, 99.0])


def test_leaf_values_add_to_the_baseline_in_tree_order_through_every_chunk() -> None:
    rng = np.random.default_rng(0)
    n = treerow.CHUNK_TREES * 3 + 1  # several chunks and a short last one
    params = [(int(rng.integers(3)), rng.normal(), rng.normal(), rng.normal()) for _ in range(n)]
    trees = [[stump(*p)] for p in params]
    trees[5] = [stump(1, math.inf, 0.25, -7.0)]  # every row goes left
    params[5] = (1, math.inf, 0.25, -7.0)
    model = tree_row(trees, [0.3], "logistic")
    assert model is not None
    for row in rng.normal(size=(50, 3)).tolist():
        z = 0.3
        for f, t, low, high in params:
            z += low if row[f] <= t else high
        assert model.raw(row) == [z]
        p1 = 1.0 / (1.0 + math.exp(-z))
        assert model.proba(row) == [1.0 - p1, p1]


def test_several_outputs_are_a_softmax_of_their_own_trees() -> None:
    trees = [[stump(0, 0.0, 1.0, -1.0), stump(0, 0.0, -2.0, 2.0), stump(1, 5.0, 0.5, 0.0)]]
    model = tree_row(trees, [0.1, 0.2, 0.3], "softmax")
    assert model is not None
    z = np.array([0.1 + 1.0, 0.2 - 2.0, 0.3 + 0.5])  # row (-1, 1): left, left, left
    want = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert np.abs(np.array(model.proba([-1.0, 1.0])) - want).max() <= 1e-15
    assert model.raw([3.0, 9.0]) == [0.1 - 1.0, 0.2 + 2.0, 0.3 + 0.0]


def test_deep_or_large_ensembles_are_left_to_the_batch_runtime() -> None:
    deep = chain(treerow.MAX_DEPTH)
    model = tree_row([[deep]], [0.0], "logistic")
    assert model is not None
    assert model.raw([2.5]) == [3.0]  # right of 0, 1, 2; leaf of 3
    assert model.raw([1e9]) == [99.0]
    assert tree_row([[chain(treerow.MAX_DEPTH + 1)]], [0.0], "logistic") is None
    many = [[stump(0, 0.0, 1.0, 2.0)]] * (treerow.MAX_NODES // 3 + 1)
    assert tree_row(many, [0.0], "logistic") is None
