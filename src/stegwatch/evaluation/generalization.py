"""Generalization as a metric: how a detector's recipe does on photographs from a source it never saw.

Leave-one-cover-source-out: for each photograph source in the corpus (its
``cover_source`` values but user covers, synthetic images and unknown ones),
the detector's recipe is refitted on every other file and decides the files
of that source (*out-of-source*). The same files are also decided by grouped
k-fold refits in which their own source was in training (*in-source*). Both
readings cover exactly the same files, so their gap is paired: a cluster
bootstrap over cover groups gives its interval.

A gap means the detector learned the sources it was shown (their cameras,
sizes, processing), not the embedding: the number the seed project's research
track is about.
"""

from __future__ import annotations

import logging

import numpy as np

from stegwatch.evaluation.folds import ExtraTraining, fold_assignment, out_of_fold, refit_training
from stegwatch.features.corpus import CorpusFeatures
from stegwatch.stats import cluster_bootstrap_difference, group_rate_record, roc_auc

log = logging.getLogger(__name__)

#: cover_source values that are not a photograph source (never left out on their own; always in training).
NOT_PHOTO_SOURCES = ("user", "synthetic", "unknown")
IN_SOURCE_FOLDS = 3


def photo_sources(data: CorpusFeatures) -> list[str]:
    """The photograph sources of ``data`` that can be left out (both clean and stego files from them)."""
    sources = np.asarray([e.cover_source or "unknown" for e in data.entries])
    stego = np.asarray([e.label == "stego" for e in data.entries])
    return sorted(s for s in set(sources.tolist()) - set(NOT_PHOTO_SOURCES)
                  if (sources == s).any() and (~stego[sources == s]).any())


def _readings(flags: np.ndarray, scores: np.ndarray | None, stego: np.ndarray, groups: np.ndarray) -> dict:
    reading = {"false_positive_rate": group_rate_record(flags[~stego], groups[~stego]),
               "detection_rate": group_rate_record(flags[stego], groups[stego])}
    if scores is not None:
        reading["roc_auc"] = roc_auc(stego, scores)
    return reading


def generalization(detector, data: CorpusFeatures, *, seed: int, target_fpr: float,
                   in_source_flags: np.ndarray | None = None, in_source_scores: np.ndarray | None = None,
                   extra: ExtraTraining | None = None) -> dict:
    """Leave-one-cover-source-out FPR and detection, the in-source readings of the same files, and the gap.

    ``in_source_flags`` (and scores): out-of-fold decisions of every row that
    the caller already has (``evaluate --folds``); without them, grouped
    :data:`IN_SOURCE_FOLDS`-fold refits make them. Returns ``available: false``
    with the reason when the detector cannot be refitted or the corpus has
    fewer than two photograph sources. ``extra``: training-only files joined
    to every refit, without those of the left-out source or of held-out covers.
    """
    sources = photo_sources(data)
    if not detector.trainable:
        return {"available": False, "reason": f"{detector.name} cannot be refitted, so no source can be left out of its training"}
    if len(sources) < 2:
        return {"available": False, "reason": f"the files come from {len(sources)} photograph source(s) with clean files; "
                                              "leaving one out needs at least two"}
    entries = data.entries
    source_of = np.asarray([e.cover_source or "unknown" for e in entries])
    stego = np.asarray([e.label == "stego" for e in entries])
    groups = data.groups
    if in_source_flags is None:
        log.info("generalization: in-source readings by %d grouped folds", IN_SOURCE_FOLDS)
        oof = out_of_fold(detector, data, fold_assignment(data, IN_SOURCE_FOLDS, seed), seed=seed, target_fpr=target_fpr,
                          extra=extra)
        in_source_flags, in_source_scores = oof.flags, oof.scores
    out_flags = np.zeros(len(entries), dtype=bool)
    out_scores = np.zeros(len(entries))
    measured = np.zeros(len(entries), dtype=bool)
    per_source = {}
    for source in sources:
        test = source_of == source
        train = np.flatnonzero(~test)
        if not stego[train].any() or stego[train].all():
            continue
        log.info("generalization: leaving out %s (%d files)", source, int(test.sum()))
        pool, train = refit_training(data, train, np.flatnonzero(test), extra, frozenset({source}))
        fitted = detector.refit(pool, train, seed=seed, target_fpr=target_fpr)
        scores = fitted.score_features(data.features[test])[0]
        out_scores[test], out_flags[test], measured[test] = scores, scores >= fitted.threshold, True
        rows = np.flatnonzero(test)
        per_source[source] = {
            "files": int(test.sum()), "cover_groups": len(set(groups[rows].tolist())), "threshold": float(fitted.threshold),
            # What the refit saw: leaving out a source that holds most cover groups refits on few.
            "training_files": int(train.size), "training_cover_groups": len(set(pool.groups[train].tolist())),
            "in_source": _readings(in_source_flags[rows], None if in_source_scores is None else in_source_scores[rows],
                                   stego[rows], groups[rows]),
            "out_of_source": _readings(out_flags[rows], scores, stego[rows], groups[rows]),
        }
    rows = np.flatnonzero(measured)
    inside = _readings(in_source_flags[rows], None if in_source_scores is None else in_source_scores[rows], stego[rows], groups[rows])
    outside = _readings(out_flags[rows], out_scores[rows], stego[rows], groups[rows])
    clean_rows, stego_rows = rows[~stego[rows]], rows[stego[rows]]
    in_bound = inside["false_positive_rate"]["group_upper_bound"]
    return {
        "available": True,
        "method": "leave-one-cover-source-out refits against grouped k-fold refits, on the same files",
        "extra_training": extra.record() if extra is not None else [],
        "sources": per_source,
        "in_source": inside,
        "out_of_source": outside,
        "gap": {
            "false_positive_rate": cluster_bootstrap_difference(in_source_flags[clean_rows], out_flags[clean_rows],
                                                                groups[clean_rows], seed=seed),
            "detection_rate": cluster_bootstrap_difference(in_source_flags[stego_rows], out_flags[stego_rows],
                                                           groups[stego_rows], seed=seed),
            "fpr_upper_bound_ratio": outside["false_positive_rate"]["group_upper_bound"] / in_bound if in_bound else None,
        },
    }
