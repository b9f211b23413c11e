"""Grouped folds and out-of-fold decisions: what ``evaluate``, ablations and generalization share.

Files are split by ``StratifiedGroupKFold`` (stratified by class, grouped by
``cover_id``), so no photograph's descendants sit in two folds. For each fold
the detector's own recipe is refitted on the other folds (V4 retrained, V3
recalibrated), with its threshold chosen on a grouped part of those folds;
every decision is out-of-fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stegwatch.features.corpus import CorpusFeatures


def fold_assignment(data: CorpusFeatures, folds: int, seed: int) -> np.ndarray:
    """Fold number of every file: StratifiedGroupKFold by class, grouped by cover_id."""
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.asarray([e.method if e.label == "stego" else "clean" for e in data.entries])
    groups = data.groups
    assignment = np.full(len(labels), -1, dtype=int)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (_, test) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups)):
        assignment[test] = fold
    return assignment


@dataclass
class OutOfFold:
    """Out-of-fold scores, flags (each fold at its own threshold), predicted methods, and each fold's threshold."""

    scores: np.ndarray
    flags: np.ndarray
    predicted: list[str]
    thresholds: list[float]


def out_of_fold(detector, data: CorpusFeatures, assignment: np.ndarray, *, seed: int, target_fpr: float,
                **variant) -> OutOfFold:
    """Refit ``detector`` on all folds but one, score the one, for every fold (``variant``: refit options)."""
    n = len(data.entries)
    folds = int(assignment.max()) + 1 if n else 0
    scores, flags = np.zeros(n), np.zeros(n, dtype=bool)
    predicted = [""] * n
    thresholds = []
    for fold in range(folds):
        test = np.flatnonzero(assignment == fold)
        fitted = detector.refit(data, np.flatnonzero(assignment != fold), seed=seed + fold, target_fpr=target_fpr, **variant)
        s, method_scores, methods = fitted.score_features(data.features[test])
        scores[test], flags[test] = s, s >= fitted.threshold
        for k, i in enumerate(test):
            predicted[i] = methods[int(np.argmax(method_scores[k]))] if methods else ""
        thresholds.append(float(fitted.threshold))
    return OutOfFold(scores, flags, predicted, thresholds)
