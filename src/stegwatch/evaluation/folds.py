"""Grouped folds and out-of-fold decisions: what ``evaluate``, ablations and generalization share.

Files are split by ``StratifiedGroupKFold`` (stratified by class, grouped by
``cover_id``), so no photograph's descendants sit in two folds. For each fold
the detector's own recipe is refitted on the other folds (V4 retrained, V3
recalibrated), with its threshold chosen on a grouped part of those folds;
every decision is out-of-fold.

Training-only files (a training build, ``--train-extra``) can join every refit
(:class:`ExtraTraining`): they are never scored, and in each refit those whose
cover is held out (or whose cover source is, when a source is left out) are
dropped, so no held-out photograph reaches training through them.
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
class ExtraTraining:
    """Evaluated files followed by training-only files: ``union``'s first ``n`` rows are the evaluated data."""

    union: CorpusFeatures
    n: int
    sources: list[dict]

    def rows(self, held_out_covers: set, held_out_sources: frozenset = frozenset()) -> np.ndarray:
        """Union indices of the training-only files whose cover (and cover source) is not held out."""
        entries = self.union.entries
        return np.asarray([self.n + j for j, e in enumerate(entries[self.n:])
                           if e.cover_id not in held_out_covers and (e.cover_source or "unknown") not in held_out_sources],
                          dtype=int)

    def record(self) -> list[dict]:
        """What joined the refits, for the run's record (path, manifest hash, files, cover groups)."""
        return self.sources


def join_extra(data: CorpusFeatures, paths, **load) -> ExtraTraining:
    """``data`` followed by the ``train`` split's rows of every training-only corpus in ``paths``.

    ``load``: options of :func:`~stegwatch.features.corpus.load_corpus_features` (workers, progress, scheduler).
    """
    from stegwatch.features.corpus import load_corpus_features

    extras = [(str(path), load_corpus_features(path, split="train", **load)) for path in paths]
    union = CorpusFeatures(data.entries + [e for _, x in extras for e in x.entries],
                           np.concatenate([data.features] + [x.features for _, x in extras]),
                           data.errors, data.manifest_sha256, data.manifest, data.labels)
    sources = [{"path": path, "manifest_sha256": x.manifest_sha256, "files": len(x.entries),
                "cover_groups": len({e.cover_id for e in x.entries}), "unreadable": len(x.errors)} for path, x in extras]
    return ExtraTraining(union, len(data.entries), sources)


def refit_training(data: CorpusFeatures, train: np.ndarray, test: np.ndarray, extra: ExtraTraining | None,
                   held_out_sources: frozenset = frozenset()) -> tuple[CorpusFeatures, np.ndarray]:
    """The rows a refit sees: ``train`` of ``data``, plus the training-only files not held out by ``test``'s covers."""
    if extra is None:
        return data, train
    held = set(data.groups[test].tolist())
    return extra.union, np.concatenate([train, extra.rows(held, held_out_sources)])


@dataclass
class OutOfFold:
    """Out-of-fold scores, flags (each fold at its own threshold), predicted methods, and each fold's threshold."""

    scores: np.ndarray
    flags: np.ndarray
    predicted: list[str]
    thresholds: list[float]


def out_of_fold(detector, data: CorpusFeatures, assignment: np.ndarray, *, seed: int, target_fpr: float,
                extra: ExtraTraining | None = None, **variant) -> OutOfFold:
    """Refit ``detector`` on all folds but one, score the one, for every fold (``variant``: refit options).

    ``extra``: training-only files joined to every refit (those of the held-out fold's covers left out).
    """
    n = len(data.entries)
    folds = int(assignment.max()) + 1 if n else 0
    scores, flags = np.zeros(n), np.zeros(n, dtype=bool)
    predicted = [""] * n
    thresholds = []
    for fold in range(folds):
        test = np.flatnonzero(assignment == fold)
        pool, train = refit_training(data, np.flatnonzero(assignment != fold), test, extra)
        fitted = detector.refit(pool, train, seed=seed + fold, target_fpr=target_fpr, **variant)
        s, method_scores, methods = fitted.score_features(data.features[test])
        scores[test], flags[test] = s, s >= fitted.threshold
        for k, i in enumerate(test):
            predicted[i] = methods[int(np.argmax(method_scores[k]))] if methods else ""
        thresholds.append(float(fitted.threshold))
    return OutOfFold(scores, flags, predicted, thresholds)
