"""The tail probabilities the checks need (drift tests, the change point), in numpy and
``math``: importing ``scipy.stats`` for them cost the server about 60 MiB of resident
memory and half a second, the largest part of it after a model. tests/test_core.py
checks each against scipy's.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

_NORMAL = NormalDist()


def normal_isf(p: float) -> float:
    """The z whose upper tail of the standard normal is ``p`` (scipy's ``norm.isf``)."""
    return -_NORMAL.inv_cdf(min(max(p, 1e-300), 1.0 - 1e-16))


def log_factorials(n: int) -> Floats:
    """``log(k!)`` for k in 0..n, by a running sum of logs."""
    out = np.zeros(n + 1)
    if n:
        np.cumsum(np.log(np.arange(1, n + 1, dtype=np.float64)), out=out[1:])
    return out


def hypergeom_logpmf(x: Ints, n: int, total: int, m: Ints, logf: Floats) -> Floats:
    """log P(X = x) of the hypergeometric: ``m`` draws from ``n`` of which ``total`` are
    marked (scipy's ``hypergeom.logpmf(x, n, total, m)``); ``logf``: ``log_factorials(n)``.
    -inf where ``x`` is impossible."""
    ok = (x >= 0) & (x <= m) & (x <= total) & (m - x <= n - total)
    xs, ms = np.where(ok, x, 0), np.where(ok, m, 0)
    value = (
        logf[total]
        - logf[xs]
        - logf[total - xs]
        + logf[n - total]
        - logf[ms - xs]
        - logf[n - total - ms + xs]
        - logf[n]
        + logf[ms]
        + logf[n - ms]
    )
    return np.where(ok, value, -np.inf)


def hypergeom_sf(x: Ints, n: int, total: int, m: Ints, logf: Floats) -> Floats:
    """P(X > x) of the hypergeometric (scipy's ``hypergeom.sf``), each summed exactly over
    its tail in log space (meant for a few splits: one array per split)."""
    out = np.empty(len(x))
    for i, (xi, mi) in enumerate(zip(x.tolist(), m.tolist(), strict=True)):
        top = min(total, mi)
        if xi + 1 > top:
            out[i] = 0.0
            continue
        ks = np.arange(max(xi + 1, 0), top + 1, dtype=np.int64)
        logs = hypergeom_logpmf(ks, n, total, np.full(len(ks), mi, dtype=np.int64), logf)
        peak = float(logs.max())
        out[i] = min(1.0, math.exp(peak) * float(np.exp(logs - peak).sum()))
    return out


def chi2_sf(statistic: float, df: int) -> float:
    """P(X > statistic) of a chi-square with ``df`` degrees of freedom: the regularised
    upper incomplete gamma Q(df/2, statistic/2), by its series below a + 1 and its
    continued fraction above (Numerical Recipes' ``gammq``)."""
    if df <= 0 or math.isnan(statistic):
        return math.nan
    a, x = df / 2.0, statistic / 2.0
    if x <= 0:
        return 1.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:  # the series of P, then Q = 1 - P
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    # Lentz's continued fraction of Q
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-16:
            break
    return min(1.0, math.exp(log_front) * h)


def chisquare(observed: Floats, expected: Floats) -> tuple[float, float]:
    """Pearson's goodness-of-fit statistic and its p-value (scipy's ``chisquare``)."""
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return statistic, chi2_sf(statistic, len(observed) - 1)


def ks_2samp(a: Floats, b: Floats) -> tuple[float, float]:
    """The two-sample Kolmogorov-Smirnov statistic (exactly scipy's) and its two-sided
    p-value from the Kolmogorov distribution with Stephens' small-sample correction
    (Numerical Recipes' ``probks``). scipy computes the exact p-value at these sizes;
    this one is within 10 % of it where a drift decision is made (p below 0.05), on 500
    reference values against a few hundred to a few thousand recent ones."""
    a, b = np.sort(a), np.sort(b)
    n1, n2 = len(a), len(b)
    if not n1 or not n2:
        return math.nan, math.nan
    both = np.concatenate([a, b])
    cdf1 = np.searchsorted(a, both, side="right") / n1
    cdf2 = np.searchsorted(b, both, side="right") / n2
    d = float(np.max(np.abs(cdf1 - cdf2)))
    root = math.sqrt(n1 * n2 / (n1 + n2))
    return d, kolmogorov_sf((root + 0.12 + 0.11 / root) * d)


def kolmogorov_sf(lam: float) -> float:
    """P(K > lam) of the Kolmogorov distribution: 2 sum (-1)^(k-1) exp(-2 k^2 lam^2)."""
    if lam < 0.2:  # the series converges slowly here, where the answer is 1 to 1e-16
        return 1.0
    total, sign = 0.0, 2.0
    for k in range(1, 101):
        term = sign * math.exp(-2.0 * k * k * lam * lam)
        total += term
        if abs(term) <= 1e-16 * total:
            break
        sign = -sign
    return min(1.0, max(0.0, total))
