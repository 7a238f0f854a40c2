"""core.tails against scipy.stats (in the test environment only: the server never imports it)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from continual.core import tails


def test_normal_isf_is_scipys() -> None:
    for p in (0.5, 0.1, 1e-3, 1e-9, 1e-50, 1e-300):
        assert tails.normal_isf(p) == pytest.approx(float(stats.norm.isf(p)), rel=1e-9)


def test_hypergeom_is_scipys() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(2, 3000))
        total = int(rng.integers(0, n + 1))
        m = rng.integers(0, n + 1, size=8)
        x = rng.integers(-1, np.minimum(m, total) + 2)
        logf = tails.log_factorials(n)
        want_pmf = stats.hypergeom.logpmf(x, n, total, m)
        got_pmf = tails.hypergeom_logpmf(x, n, total, m, logf)
        finite = np.isfinite(want_pmf)
        assert np.array_equal(finite, np.isfinite(got_pmf))
        assert np.allclose(got_pmf[finite], want_pmf[finite], rtol=1e-9, atol=1e-9)
        want_sf = stats.hypergeom.sf(x, n, total, m)
        got_sf = tails.hypergeom_sf(x, n, total, m, logf)
        # relative where it matters: the improbable tails the change point ranks
        assert np.allclose(got_sf, want_sf, rtol=1e-7, atol=1e-12)


def test_chisquare_is_scipys() -> None:
    rng = np.random.default_rng(2)
    for _ in range(300):
        k = int(rng.integers(2, 60))
        expected = rng.dirichlet(np.ones(k)) * int(rng.integers(20, 5000))
        observed = rng.poisson(expected * rng.uniform(0.5, 1.5)).astype(np.float64)
        observed *= expected.sum() / max(observed.sum(), 1.0)
        want = stats.chisquare(observed, expected)
        stat, p = tails.chisquare(observed, expected)
        assert stat == pytest.approx(float(want.statistic), rel=1e-12)
        assert p == pytest.approx(float(want.pvalue), rel=1e-8, abs=1e-300)


def test_ks_statistic_is_scipys_and_p_close_where_decisions_are_made() -> None:
    rng = np.random.default_rng(3)
    worst = 0.0
    for _ in range(300):
        a = np.round(rng.normal(size=500), 6)
        b = rng.normal(
            rng.uniform(-0.3, 0.3), rng.uniform(0.8, 1.3), size=int(rng.integers(100, 3000))
        )
        want = stats.ks_2samp(a, b)
        d, p = tails.ks_2samp(a, b)
        assert d == pytest.approx(float(want.statistic), abs=1e-12)
        if 1e-6 < want.pvalue < 0.05:
            worst = max(worst, abs(p / float(want.pvalue) - 1.0))
        else:
            assert abs(p - float(want.pvalue)) < 0.02
    assert worst < 0.1


def test_ks_on_empty_sample_is_nan() -> None:
    d, p = tails.ks_2samp(np.zeros(0), np.ones(3))
    assert np.isnan(d)
    assert np.isnan(p)
