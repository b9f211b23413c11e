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


def cluster_bootstrap_difference(before: np.ndarray, after: np.ndarray, groups: Iterable[str], *, seed: int,
                                 reps: int = 2000, confidence: float = 0.95) -> dict:
    """Paired cluster bootstrap of ``mean(after) - mean(before)``: cover groups (not files) are resampled.

    ``before[i]`` and ``after[i]`` are two decisions on file ``i`` of group
    ``groups[i]``. Each replicate draws the groups with replacement and takes
    the ratio estimate over the files of the drawn groups.
    """
    before = np.asarray(before, dtype=float)
    after = np.asarray(after, dtype=float)
    groups = np.asarray(list(groups), dtype=object)
    if before.size == 0:
        return {"difference": None, "ci_low": None, "ci_high": None, "paired_files": 0, "groups": 0, "reps": reps}
    _, inverse = np.unique(groups.astype(str), return_inverse=True)
    k = int(inverse.max()) + 1
    sizes = np.bincount(inverse, minlength=k).astype(float)
    delta = np.bincount(inverse, weights=after - before, minlength=k)
    draws = np.random.default_rng(seed).multinomial(k, np.full(k, 1.0 / k), size=reps).astype(float)
    differences = (draws @ delta) / (draws @ sizes)
    alpha = 1.0 - confidence
    return {"difference": float(delta.sum() / sizes.sum()),
            "ci_low": float(np.percentile(differences, 100 * alpha / 2)),
            "ci_high": float(np.percentile(differences, 100 * (1 - alpha / 2))),
            "paired_files": int(before.size), "groups": k, "reps": reps, "sign_test": group_sign_test(delta)}


def group_sign_test(net_changes: np.ndarray) -> dict:
    """Exact two-sided sign test over cover groups: of the groups whose decisions changed on balance, how many went up.

    ``net_changes[g]`` is group ``g``'s sum of (after - before). Groups are the
    independent units, so this is McNemar's test at the level of groups. The
    percentile bootstrap alone is too liberal when few groups changed (four
    gains in four of 300 groups give an interval above 0 while p = 0.125).
    """
    from scipy.stats import binomtest

    net = np.asarray(net_changes, dtype=float)
    up, down = int(np.count_nonzero(net > 0)), int(np.count_nonzero(net < 0))
    p = float(binomtest(up, up + down, 0.5).pvalue) if up + down else 1.0
    return {"groups_up": up, "groups_down": down, "p_value": p}


def significant_change(bootstrap: dict, alpha: float = 0.05) -> bool:
    """A paired change is significant when the cover-group bootstrap interval excludes 0 and the sign test over the
    groups that changed agrees (p < ``alpha``); records made before the sign test existed use the interval alone."""
    if bootstrap.get("difference") is None or not (bootstrap["ci_low"] > 0 or bootstrap["ci_high"] < 0):
        return False
    sign = bootstrap.get("sign_test")
    if sign is None:
        return True
    agrees = sign["groups_up"] > sign["groups_down"] if bootstrap["ci_low"] > 0 else sign["groups_down"] > sign["groups_up"]
    return agrees and sign["p_value"] < alpha  # most changed groups moved the way the interval says, significantly


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


def _beta_ppf(q: float, a: float, b: float) -> float:
    from scipy import stats

    return float(stats.beta.ppf(q, a, b))


def effective_sample_size(counts: np.ndarray, sizes: np.ndarray) -> tuple[float, float, float]:
    """``(n_eff, design_effect, n_eff_worst)`` of a rate over cover groups with ``counts[g]`` events in ``sizes[g]`` files.

    The design effect is the cluster-robust (ratio-estimator) variance of the
    rate over its binomial variance, ``[k/(k-1) * sum_g (y_g - p m_g)^2 / n^2] / [p(1-p)/n]``,
    held between 1 (files independent) and its worst case ``n / n_eff_worst``,
    where ``n_eff_worst = n^2 / sum_g m_g^2`` is what is left when every file of a
    group is decided alike (each group one draw, weighted by its size; ``k`` for
    equal groups). With no event (or only events) the correlation cannot be
    estimated from the data, and the worst case is assumed.
    """
    counts = np.asarray(counts, dtype=float)
    sizes = np.asarray(sizes, dtype=float)
    n, k = float(sizes.sum()), sizes.size
    if n == 0:
        return 0.0, 1.0, 0.0
    worst = n * n / float((sizes**2).sum())
    p = float(counts.sum()) / n
    if 0.0 < p < 1.0 and k > 1:
        cluster = k / (k - 1) * float(((counts - p * sizes) ** 2).sum()) / (n * n)
        deff = min(max(cluster / (p * (1 - p) / n), 1.0), n / worst)
    else:
        deff = n / worst
    return n / deff, deff, worst


def group_interval(counts: np.ndarray, sizes: np.ndarray, confidence: float = 0.95) -> dict:
    """An interval for a rate over cover groups that accounts for within-group correlation.

    Clopper-Pearson on the design-effect-adjusted sample (``n_eff`` files,
    ``p * n_eff`` events; Kish's effective sample size with the design effect of
    :func:`effective_sample_size`). It is never narrower than the file-level
    exact interval, and never claims more than the groups themselves could
    prove: the upper end is at least the zero-event bound on ``n_eff_worst``
    groups (and the lower end at most its mirror), because a handful of events
    cannot show that a group's files fail independently.
    """
    counts = np.asarray(counts, dtype=float)
    sizes = np.asarray(sizes, dtype=float)
    n = float(sizes.sum())
    count = float(counts.sum())
    if n == 0:
        return {"n_groups": 0, "design_effect": 1.0, "n_effective": 0.0, "group_ci_low": 0.0, "group_ci_high": 1.0,
                "group_upper_bound": 1.0}
    n_eff, deff, worst = effective_sample_size(counts, sizes)
    x = count / n * n_eff
    alpha = 1.0 - confidence
    low = 0.0 if x <= 0 else _beta_ppf(alpha / 2, x, n_eff - x + 1)
    high = 1.0 if x >= n_eff else _beta_ppf(1 - alpha / 2, x + 1, n_eff - x)
    upper = 1.0 if x >= n_eff else _beta_ppf(confidence, x + 1, n_eff - x)
    # What zero events (or all events) on the groups alone would show.
    zero_high, zero_upper = 1.0 - (alpha / 2) ** (1.0 / worst), 1.0 - alpha ** (1.0 / worst)
    file_low, file_high = clopper_pearson(int(count), int(n), confidence)
    file_upper = upper_bound(int(count), int(n), confidence)
    return {
        "n_groups": int(sizes.size),
        "design_effect": round(deff, 6),
        "n_effective": round(n_eff, 3),
        "group_ci_low": min(low, file_low, 1.0 - zero_high),
        "group_ci_high": max(high, file_high, zero_high),
        "group_upper_bound": max(upper, file_upper, zero_upper),
    }


def group_rate_record(flags: np.ndarray, groups: Iterable[str], confidence: float = 0.95) -> dict:
    """:func:`rate_record` of ``flags`` plus its cover-group interval (:func:`group_interval`).

    ``groups[i]`` is the cover group (``cover_id``) of file ``i``; files of one
    group are not independent samples.
    """
    flags = np.asarray(flags, dtype=bool)
    groups = np.asarray(list(groups), dtype=object)
    record = rate_record(int(flags.sum()), int(flags.size), confidence)
    if flags.size == 0:
        return record | group_interval(np.zeros(0), np.zeros(0), confidence)
    _, inverse = np.unique(groups.astype(str), return_inverse=True)
    counts = np.bincount(inverse, weights=flags.astype(float))
    sizes = np.bincount(inverse)
    return record | group_interval(counts, sizes, confidence)


def grouped_rates(flags: np.ndarray, keys: Iterable[str], groups: Iterable[str] | None = None) -> dict[str, dict]:
    """Rate of ``flags`` within each key (keys sorted): a :func:`rate_record` per key, or with ``groups``
    (the cover group of each file) a :func:`group_rate_record`."""
    keys = np.asarray(list(keys), dtype=object)
    flags = np.asarray(flags, dtype=bool)
    if groups is None:
        return {str(k): rate_record(int(flags[keys == k].sum()), int((keys == k).sum())) for k in sorted(set(keys.tolist()))}
    groups = np.asarray(list(groups), dtype=object)
    return {str(k): group_rate_record(flags[keys == k], groups[keys == k]) for k in sorted(set(keys.tolist()))}


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
