"""Statistics for small samples: exact rank tests, Hodges-Lehmann shifts, bootstrap CIs, BH.

Pure functions over numpy arrays, used by ``versus``, ``compare`` and ``history``.

* :func:`rank_test`: the Wilcoxon-Mann-Whitney rank-sum test. Its null distribution is
  computed exactly, conditional on the ties (a permutation test of the mid-rank sum, by
  dynamic programming over the pooled values), so a p-value is exact at the sample sizes people
  run (3 repeats a side, or a pooled history against 3). Only when the exact computation would
  be big (``n * min(n1, n2) * max_score > EXACT_WORK``) does it fall back to the normal
  approximation with tie and continuity corrections, where that approximation is good.
* :func:`min_p`: the smallest p-value the test can give for n1 and n2 values (no ties):
  ``1 / C(n1 + n2, n1)`` one-sided, twice that two-sided. 3 against 3: 0.05 and 0.1.
* :func:`hodges_lehmann`: the median of all pairwise differences ``y - x`` with its
  distribution-free CI (the order statistics of the differences picked by the rank test's
  null distribution). Above ``MAX_PAIRS`` pairs the order statistics are estimated from
  ``SAMPLED_PAIRS`` random pairs drawn with a fixed seed.
* :func:`median_ci`: a percentile bootstrap CI of the median, ``BOOTSTRAP_RESAMPLES``
  resamples drawn with the fixed seed ``BOOTSTRAP_SEED`` (so a report is reproducible). Above
  ``EXACT_BOOTSTRAP_FROM`` values the resampling is replaced by its exact limit (the bootstrap
  distribution of the median is binomial in the order statistics), which is cheaper and has no
  Monte Carlo error.
* :func:`bh_adjust`: Benjamini-Hochberg adjusted p-values (q-values); NaN stays NaN and does
  not count towards the number of tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20261127
EXACT_BOOTSTRAP_FROM = 1000
CONFIDENCE = 0.95
EXACT_WORK = 20_000_000
MAX_PAIRS = 250_000
SAMPLED_PAIRS = 200_000
PAIRS_SEED = 7


@dataclass(frozen=True)
class RankTest:
    """p-values of the rank-sum test of ``y`` against ``x``.

    ``greater``: one-sided, alternative "y tends to be larger than x"; ``less`` the other way;
    ``two_sided`` = min(1, 2 * min(greater, less)). ``exact`` says whether the null
    distribution was computed exactly (else: normal approximation).
    """

    greater: float
    less: float
    two_sided: float
    exact: bool


def min_p(n1: int, n2: int, two_sided: bool = False) -> float:
    """The smallest p-value the rank-sum test can reach with n1 and n2 values (no ties)."""
    if n1 < 1 or n2 < 1:
        return 1.0
    if n1 + n2 <= 1000:  # exact: 3 vs 3 must give 0.05, not 0.04999...
        p = 1.0 / math.comb(n1 + n2, n1)
    else:
        log_comb = math.lgamma(n1 + n2 + 1) - math.lgamma(n1 + 1) - math.lgamma(n2 + 1)
        p = math.exp(-log_comb) if log_comb < 700 else 0.0
    return min(1.0, 2 * p if two_sided else p)


def _midranks(pooled: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``pooled``, ties sharing their mean rank."""
    from scipy.stats import rankdata

    return np.asarray(rankdata(pooled, method="average"), dtype=float)


def _sum_distribution(scores: np.ndarray, k: int) -> np.ndarray:
    """Counts of each possible sum of ``k`` of the integer ``scores`` (without replacement)."""
    total = int(np.sort(scores)[::-1][:k].sum())
    dp = np.zeros((k + 1, total + 1))
    dp[0, 0] = 1.0
    for s in scores:
        s = int(s)
        if s == 0:
            dp[1:] += dp[:-1].copy()
        else:
            dp[1:, s:] += dp[:-1, :-s].copy()
    return dp[k]


def rank_test(x: np.ndarray, y: np.ndarray) -> RankTest:
    """The rank-sum test of ``y`` against ``x`` (NaN values dropped); NaN p if a side is empty."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        nan = math.nan
        return RankTest(nan, nan, nan, False)
    pooled = np.r_[x, y]
    if np.all(pooled == pooled[0]):
        return RankTest(1.0, 1.0, 1.0, True)
    scores = np.rint(2 * _midranks(pooled)).astype(np.int64)  # mid-ranks are halves
    n = n1 + n2
    small = min(n1, n2)
    if n * small * 2 * n <= EXACT_WORK:
        dist = _sum_distribution(scores, small)
        dist = dist / dist.sum()
        # Sum the scores of the smaller side; for y that is "larger sum = y larger".
        side = scores[n1:] if n2 <= n1 else scores[:n1]
        observed = int(side.sum())
        upper = float(dist[observed:].sum())
        lower = float(dist[: observed + 1].sum())
        greater, less = (upper, lower) if n2 <= n1 else (lower, upper)
        exact = True
    else:
        ranks = scores / 2.0
        u = float(ranks[n1:].sum()) - n2 * (n2 + 1) / 2  # pairs with y above x (ties 1/2)
        _, counts = np.unique(pooled, return_counts=True)
        tie = float((counts**3 - counts).sum())
        sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie / (n * (n - 1))))
        mean = n1 * n2 / 2
        from scipy.stats import norm

        greater = float(norm.sf((u - mean - 0.5) / sigma)) if sigma else 1.0
        less = float(norm.cdf((u - mean + 0.5) / sigma)) if sigma else 1.0
        exact = False
    greater, less = min(1.0, greater), min(1.0, less)
    return RankTest(greater, less, min(1.0, 2 * min(greater, less)), exact)


def _critical_count(n1: int, n2: int, confidence: float) -> int:
    """The largest c with P(U <= c) <= (1 - confidence) / 2 under H0 (no ties); -1 if none."""
    tail = (1 - confidence) / 2
    n = n1 + n2
    small = min(n1, n2)
    if n * small * 2 * n <= EXACT_WORK:
        dist = _sum_distribution(2 * np.arange(1, n + 1), small)
        offset = small * (small + 1)  # the smallest sum of 2 * ranks
        dist = dist[offset::2]  # U = (sum - offset) / 2 takes every value 0..n1*n2
        cdf = np.cumsum(dist / dist.sum())
        below = np.flatnonzero(cdf <= tail + 1e-12)
        return int(below[-1]) if len(below) else -1
    from scipy.stats import norm

    sigma = math.sqrt(n1 * n2 * (n + 1) / 12)
    return math.floor(n1 * n2 / 2 - norm.ppf(1 - tail) * sigma - 0.5)


def _order_statistics(x: np.ndarray, y: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """The ks-th (0-based) smallest of the pairwise differences y_j - x_i."""
    pairs = len(x) * len(y)
    if pairs <= MAX_PAIRS:
        diffs = np.subtract.outer(y, x).ravel()
        return np.partition(diffs, ks)[ks]
    rng = np.random.default_rng(PAIRS_SEED)
    diffs = y[rng.integers(0, len(y), SAMPLED_PAIRS)] - x[rng.integers(0, len(x), SAMPLED_PAIRS)]
    scaled = np.minimum(np.rint(ks / (pairs - 1) * (SAMPLED_PAIRS - 1)), SAMPLED_PAIRS - 1)
    return np.partition(diffs, scaled.astype(np.int64))[scaled.astype(np.int64)]


@dataclass(frozen=True)
class Shift:
    """The Hodges-Lehmann shift of y against x and its CI; ``full_range`` when n is too small
    for the asked confidence (the interval is then the whole range of differences)."""

    estimate: float
    low: float
    high: float
    full_range: bool


def hodges_lehmann(x: np.ndarray, y: np.ndarray, confidence: float = CONFIDENCE) -> Shift:
    """The median of all pairwise differences y - x and its distribution-free CI."""
    x = np.sort(np.asarray(x, dtype=float))
    y = np.sort(np.asarray(y, dtype=float))
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return Shift(math.nan, math.nan, math.nan, False)
    pairs = n1 * n2
    c = _critical_count(n1, n2, confidence)
    full = c < 0
    c = max(c, 0)
    mid = [(pairs - 1) // 2, pairs // 2]
    ks = np.array([*mid, c, pairs - 1 - c], dtype=np.int64)
    got = _order_statistics(x, y, ks)
    return Shift(float((got[0] + got[1]) / 2), float(got[2]), float(got[3]), full)


def median_ci(
    values: np.ndarray,
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the median (NaN values dropped; (NaN, NaN) if none)."""
    x = np.sort(np.asarray(values, dtype=float))
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return (math.nan, math.nan)
    if n == 1:
        return (float(x[0]), float(x[0]))
    tail = (1 - confidence) / 2
    if n > EXACT_BOOTSTRAP_FROM:
        from scipy.stats import binom

        m = (n + 1) // 2  # the (lower) median is the m-th order statistic
        cdf = binom.sf(m - 1, n, np.arange(1, n + 1) / n)  # P(resampled median <= x_(k))
        lo = int(np.searchsorted(cdf, tail))
        hi = int(np.searchsorted(cdf, 1 - tail))
        return (float(x[min(lo, n - 1)]), float(x[min(hi, n - 1)]))
    rng = np.random.default_rng(seed)
    medians = np.median(x[rng.integers(0, n, (resamples, n))], axis=1)
    low, high = np.quantile(medians, [tail, 1 - tail])
    return (float(low), float(high))


def bh_adjust(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values of ``p_values``; NaN entries stay NaN and are not counted."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = len(tested)
    if m == 0:
        return out
    order = tested[np.argsort(p[tested], kind="mergesort")]
    ranked = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out[order] = np.minimum(q, 1.0)
    return out
