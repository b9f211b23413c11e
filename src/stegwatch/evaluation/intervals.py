"""Exact (Clopper-Pearson) binomial intervals, and how many clean files a claim needs."""

from __future__ import annotations

import math

from scipy import stats


def clopper_pearson(count: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided exact interval for a proportion ``count / n``; (0, 1) when ``n`` is 0."""
    if n == 0:
        return 0.0, 1.0
    alpha = 1.0 - confidence
    low = 0.0 if count == 0 else float(stats.beta.ppf(alpha / 2, count, n - count + 1))
    high = 1.0 if count == n else float(stats.beta.ppf(1 - alpha / 2, count + 1, n - count))
    return low, high


def upper_bound(count: int, n: int, confidence: float = 0.95) -> float:
    """One-sided exact upper bound: the rate is below this with ``confidence``."""
    if n == 0:
        return 1.0
    if count >= n:
        return 1.0
    return float(stats.beta.ppf(confidence, count + 1, n - count))


def n_needed_zero_failures(target: float, confidence: float = 0.95) -> int:
    """Clean files needed so that zero false positives proves a rate below ``target``.

    The one-sided upper bound for 0 of n is ``1 - (1 - confidence) ** (1 / n)``;
    it is below ``target`` once ``n > log(1 - confidence) / log(1 - target)``.
    """
    return math.floor(math.log(1 - confidence) / math.log(1 - target)) + 1


def rate_record(count: int, n: int, confidence: float = 0.95) -> dict:
    """A rate with its count, n, exact two-sided interval and one-sided upper bound."""
    low, high = clopper_pearson(count, n, confidence)
    return {
        "count": int(count),
        "n": int(n),
        "rate": (count / n) if n else None,
        "ci_low": low,
        "ci_high": high,
        "upper_bound": upper_bound(count, n, confidence),
        "confidence": confidence,
    }
