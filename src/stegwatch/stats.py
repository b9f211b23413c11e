"""The numbers every layer shares: rates with exact intervals, thresholds for a target FPR, AUC.

Pure functions (arrays in, numbers out) at the bottom of the package, so that
``detectors`` (model cards), ``evaluation``, ``monitoring``, ``serving`` and
``reports`` compute a rate, an interval or a threshold the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

#: The false-positive rate stegwatch is built to prove (0.05%); the default everywhere a target is asked for.
DEFAULT_TARGET_FPR = 0.0005


def clopper_pearson(count: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided exact interval for a proportion ``count / n``; (0, 1) when ``n`` is 0."""
    if n == 0:
        return 0.0, 1.0
    alpha = 1.0 - confidence
    from scipy import stats  # imported here: the CLI's start-up imports this module for its defaults

    low = 0.0 if count == 0 else float(stats.beta.ppf(alpha / 2, count, n - count + 1))
    high = 1.0 if count == n else float(stats.beta.ppf(1 - alpha / 2, count + 1, n - count))
    return low, high


def upper_bound(count: int, n: int, confidence: float = 0.95) -> float:
    """One-sided exact upper bound: the rate is below this with ``confidence``."""
    if n == 0:
        return 1.0
    if count >= n:
        return 1.0
    from scipy import stats

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


def grouped_rates(flags: np.ndarray, keys: Iterable[str]) -> dict[str, dict]:
    """Rate of ``flags`` within each key (a :func:`rate_record` per key, keys sorted)."""
    keys = np.asarray(list(keys), dtype=object)
    flags = np.asarray(flags, dtype=bool)
    return {str(k): rate_record(int(flags[keys == k].sum()), int((keys == k).sum())) for k in sorted(set(keys.tolist()))}


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve; None when only one class is present."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        return None
    return float(roc_auc_score(labels, scores))


def threshold_for_fpr(clean_scores: np.ndarray, target_fpr: float) -> float:
    """The smallest threshold whose false-positive rate on ``clean_scores`` is at most ``target_fpr``.

    A file is flagged when ``score >= threshold``. With n clean scores, ``floor(target * n)``
    of them may lie at or above it; with fewer than 1/target files that is zero, so the
    threshold sits just above the largest clean score.
    """
    ordered = np.sort(np.asarray(clean_scores, dtype=float))[::-1]
    if ordered.size == 0:
        return 1.0
    allowed = int(np.floor(target_fpr * ordered.size))
    return float(np.nextafter(ordered[allowed], np.inf)) if allowed < ordered.size else float(ordered[-1])
