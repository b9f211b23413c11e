"""Ablations of V4: retrain without one negatives category, or without one feature stream.

Every variant, and the full model it is compared with, uses the same grouped
folds (``StratifiedGroupKFold`` by ``cover_id``, the same seed), so a
difference is the variant's and not split noise. A category left out of
training is still measured: its false-positive rate is exactly what the
ablation asks about.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from stegwatch.corpus.negatives import GENERATORS
from stegwatch.detectors import load_detector
from stegwatch.features.corpus import load_corpus_features
from stegwatch.errors import ModelError
from stegwatch.evaluation.checkpoints import CheckpointedRefits, with_checkpoints
from stegwatch.evaluation.folds import fold_assignment, join_extra, out_of_fold
from stegwatch.evaluation.metrics import by_key, containers_of, p_e
from stegwatch.stats import DEFAULT_TARGET_FPR, group_rate_record, grouped_rates, roc_auc
from stegwatch.features.streams import STREAMS
from stegwatch.format.files import write_json_atomic
from stegwatch.provenance import new_run_id

log = logging.getLogger(__name__)


def _summary(data, decided) -> dict:
    scores, flags = decided.scores, decided.flags
    entries = data.entries
    labels = np.asarray([e.label == "stego" for e in entries])
    clean = ~labels
    groups = data.groups
    return {
        "false_positive_rate": group_rate_record(flags[clean], groups[clean]),
        "false_positive_rate_by_category": grouped_rates(flags[clean], [e.category for e in entries if e.label == "clean"], groups[clean]),
        "detection_rate_by_method": grouped_rates(flags[labels], [e.method for e in entries if e.label == "stego"], groups[labels]),
        "roc_auc": roc_auc(labels, scores),
        # Ranking per method, against the clean files of its containers: it moves where detection at the deployed
        # threshold cannot (a method detected at 0% stays at 0% whatever a stream carried).
        "p_e_by_method": by_key(p_e, labels, scores, np.asarray([e.method or "" for e in entries], dtype=object),
                                containers_of(entries)),
    }


def ablate(model: str, corpus, *, by: str, folds: int = 3, seed: int = 0, target_fpr: float = DEFAULT_TARGET_FPR,
           workers: int = 1, only: list[str] | None = None, command: str = "", out: str | Path | None = None,
           train_extra: list[str | Path] = (), checkpoints: str | Path | None = None) -> dict:
    """The full model and one variant per category (``by="category"``) or stream (``by="stream"``).

    ``out``: a JSON file to write the result to (atomically). ``train_extra``:
    training-only corpora joined to every refit (:class:`~stegwatch.evaluation.folds.ExtraTraining`).
    ``checkpoints``: a folder where refits are kept and taken from
    (:mod:`~stegwatch.evaluation.checkpoints`); the full model's refits are those of
    ``evaluate --folds`` with the same folds and seed, so one folder serves both.
    """
    if by not in ("category", "stream"):
        raise ValueError("by must be category or stream")
    detector = with_checkpoints(load_detector(model), checkpoints)
    if not detector.trainable:
        raise ModelError(f"ablations retrain the model: {detector.name} is not trainable")
    data = load_corpus_features(corpus, workers=workers)
    extra = join_extra(data, train_extra, workers=workers) if train_extra else None
    assignment = fold_assignment(data, folds, seed)
    items = only or (list(GENERATORS) if by == "category" else [s for s in STREAMS if s in detector.streams])
    full = _summary(data, out_of_fold(detector, data, assignment, seed=seed, target_fpr=target_fpr, extra=extra))
    variants = {}
    for item in items:
        log.info("ablation without %s %s", by, item)
        variant = {"exclude_categories": (item,)} if by == "category" else {"drop_streams": (item,)}
        result = _summary(data, out_of_fold(detector, data, assignment, seed=seed, target_fpr=target_fpr, extra=extra, **variant))
        result["change"] = {
            "false_positive_rate": (result["false_positive_rate"]["rate"] or 0) - (full["false_positive_rate"]["rate"] or 0),
            "false_positive_rate_by_category": {
                c: (r["rate"] or 0) - (full["false_positive_rate_by_category"][c]["rate"] or 0)
                for c, r in result["false_positive_rate_by_category"].items()},
            "detection_rate_by_method": {
                m: (r["rate"] or 0) - (full["detection_rate_by_method"][m]["rate"] or 0)
                for m, r in result["detection_rate_by_method"].items()},
            "roc_auc": (result["roc_auc"] or 0) - (full["roc_auc"] or 0),
            "p_e_by_method": {m: v - full["p_e_by_method"][m] for m, v in result["p_e_by_method"].items()
                              if v is not None and full["p_e_by_method"].get(m) is not None},
        }
        variants[item] = result
    result = {"run_id": new_run_id(), "by": by, "folds": folds, "seed": seed, "target_fpr": target_fpr, "model": {"name": detector.name, "version": detector.version},
            "corpus": {"path": str(corpus), "manifest_sha256": data.manifest_sha256, "files": len(data.entries)},
            "command": command, "extra_training": extra.record() if extra is not None else [], "full": full, "variants": variants}
    if isinstance(detector, CheckpointedRefits):
        result["refits"] = detector.record()
    if out is not None:
        write_json_atomic(out, result)
    return result
