"""A boosted ensemble's single row, compiled by numba: the trees' own arithmetic."""

from __future__ import annotations

import math

import numpy as np

from continual.adapters.treejit import Tree, TreeRow

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


def lopsided() -> Tree:
    """Nodes numbered depth first, as scikit-learn numbers them: 0 splits to 1 and 4, 1
    splits to 2 and 3 (on another feature)."""
    return Tree(
        [0, 1, 0, 0, 0],
        [0.0, 10.0, 0.0, 0.0, 0.0],
        [1, 2, LEAF, LEAF, LEAF],
        [4, 3, 0, 0, 0],
        [0.0, 0.0, -1.0, -2.0, 5.0],
    )


def test_leaf_values_add_to_the_baseline_in_tree_order() -> None:
    rng = np.random.default_rng(0)
    params = [(int(rng.integers(3)), rng.normal(), rng.normal(), rng.normal()) for _ in range(76)]
    trees = [[stump(*p)] for p in params]
    trees[5] = [stump(1, math.inf, 0.25, -7.0)]  # every row goes left
    params[5] = (1, math.inf, 0.25, -7.0)
    trees.append([lopsided()])
    model = TreeRow(trees, [0.3], "logistic")
    rows = rng.normal(size=(50, 3)) * 20
    for row in [*rows.tolist(), [0.0, 10.0, 0.0], [0.0, 10.5, 0.0]]:
        z = 0.3
        for f, t, low, high in params:
            z += low if row[f] <= t else high
        z += (-1.0 if row[1] <= 10.0 else -2.0) if row[0] <= 0.0 else 5.0
        assert model.raw(row) == [z]
        p1 = 1.0 / (1.0 + math.exp(-z))
        assert model.proba(row) == [1.0 - p1, p1]


def test_several_outputs_are_a_softmax_of_their_own_trees() -> None:
    trees = [[stump(0, 0.0, 1.0, -1.0), stump(0, 0.0, -2.0, 2.0), stump(1, 5.0, 0.5, 0.0)]]
    model = TreeRow(trees, [0.1, 0.2, 0.3], "softmax")
    z = np.array([0.1 + 1.0, 0.2 - 2.0, 0.3 + 0.5])  # row (-1, 1): left, left, left
    want = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert np.abs(np.array(model.proba([-1.0, 1.0])) - want).max() <= 1e-15
    assert model.raw([3.0, 9.0]) == [0.1 - 1.0, 0.2 + 2.0, 0.3 + 0.0]


def test_deep_and_large_ensembles_are_walked_whole() -> None:
    """No size limit: a 300-level tree, and 10,000 trees in one ensemble."""
    model = TreeRow([[chain(300)]], [0.0], "logistic")
    assert model.raw([2.5]) == [3.0]  # right of 0, 1, 2; leaf of 3
    assert model.raw([1e9]) == [99.0]
    many = TreeRow([[stump(0, 0.0, 1.0, 2.0)]] * 10_000, [0.0], "logistic")
    assert many.raw([-1.0]) == [10_000.0]
    assert many.raw([1.0]) == [20_000.0]
