"""``stegwatch evaluate``: every number about a detector on a corpus, with its interval and its run.

Without folds, the detector is applied as it is to every file. With ``folds``,
files are split by ``StratifiedGroupKFold`` (stratified by class, grouped by
``cover_id``, so no photograph's descendants sit in two folds); a trainable
detector (V4) is retrained on the other folds for each fold, with its
threshold chosen on a grouped validation part of those folds, and a fixed
detector (V3) is scored on the same folds without training. Pooled
out-of-fold results give the headline numbers; per-fold results give their
spread.
"""

from __future__ import annotations

import logging
import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from stegwatch import __version__
from stegwatch.detectors import load_detector, model_path
from stegwatch.features.corpus import CorpusFeatures, load_corpus_features
from stegwatch.evaluation.metrics import (
    confusion,
    detection_at_fpr,
    md5,
    p_e,
    payload_bin,
)
from stegwatch.evaluation.schema import Metrics
from stegwatch.format.files import write_json_atomic
from stegwatch.format.manifest import resolve_in_root
from stegwatch.provenance import git_commit, machine_info, new_run_id
from stegwatch.stats import DEFAULT_TARGET_FPR, grouped_rates, n_needed_zero_failures, rate_record, roc_auc, threshold_for_fpr

log = logging.getLogger(__name__)

FIXED_FPRS = (DEFAULT_TARGET_FPR, 0.01, 0.05)
#: The file ``evaluate(out=FOLDER)`` writes.
METRICS_FILE = "metrics.json"


def fold_assignment(data: CorpusFeatures, folds: int, seed: int) -> np.ndarray:
    """Fold number of every file: StratifiedGroupKFold by class, grouped by cover_id."""
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.asarray([e.method if e.label == "stego" else "clean" for e in data.entries])
    groups = np.asarray([e.cover_id for e in data.entries])
    assignment = np.full(len(labels), -1, dtype=int)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (_, test) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups)):
        assignment[test] = fold
    return assignment


def _fold_result(fold: int, entries, scores, flags, threshold) -> dict:
    labels = np.asarray([e.label == "stego" for e in entries])
    return {
        "fold": fold, "n_files": len(entries), "cover_ids": len({e.cover_id for e in entries}), "threshold": threshold,
        "false_positive_rate": rate_record(int(flags[~labels].sum()), int((~labels).sum())),
        "detection_rate": rate_record(int(flags[labels].sum()), int(labels.sum())),
        "roc_auc": roc_auc(labels, scores),
    }


def _summary(per_fold: list[dict]) -> tuple[dict, dict]:
    keys = {"false_positive_rate": lambda r: r["false_positive_rate"]["rate"],
            "detection_rate": lambda r: r["detection_rate"]["rate"], "roc_auc": lambda r: r["roc_auc"]}
    mean, std = {}, {}
    for key, get in keys.items():
        values = [get(r) for r in per_fold if get(r) is not None]
        mean[key] = float(np.mean(values)) if values else None
        std[key] = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return mean, std


def measure_latency(detector, paths: list[str], *, warmup: int = 5, sample: int = 100, workers: int = 1) -> dict:
    """Per-image latency of one-file ``detect`` calls (model loaded once, warm-up excluded) and batch throughput."""
    chosen = paths[: warmup + sample]
    for path in chosen[:warmup]:
        detector.detect([path])
    timings = []
    for path in chosen[warmup:]:
        started = time.perf_counter()
        detector.detect([path])
        timings.append(1000 * (time.perf_counter() - started))
    started = time.perf_counter()
    detector.detect(chosen[warmup:], workers=workers)
    elapsed = time.perf_counter() - started
    percentiles = np.percentile(timings, [50, 95, 99]) if timings else [0.0, 0.0, 0.0]
    return {"n": len(timings), "warmup": min(warmup, len(chosen)),
            "per_image_ms": {"p50": float(percentiles[0]), "p95": float(percentiles[1]), "p99": float(percentiles[2])},
            "images_per_second": len(chosen[warmup:]) / elapsed if elapsed > 0 else 0.0,
            "batch_files": len(chosen[warmup:]), "workers": workers}


def roc_curves(labels: np.ndarray, scores: np.ndarray, methods: np.ndarray, points: int = 60) -> dict:
    """ROC curve per method (clean files against that method's files), thinned to about ``points`` points."""
    from sklearn.metrics import roc_curve

    curves = {}
    for method in sorted(set(methods[labels].tolist())):
        keep = ~labels | (methods == method)
        fpr, tpr, _ = roc_curve(labels[keep], scores[keep])
        index = np.unique(np.linspace(0, fpr.size - 1, min(points, fpr.size)).astype(int))
        curves[method] = {"fpr": fpr[index].round(6).tolist(), "tpr": tpr[index].round(6).tolist()}
    return curves


def decisions_of(entries, flags: np.ndarray) -> dict:
    """Which files were evaluated and which were flagged, by short content hash, per clean set and method."""
    groups: dict[str, dict[str, list[str]]] = {}
    for entry, flagged in zip(entries, flags, strict=True):
        group = groups.setdefault("clean" if entry.label == "clean" else f"method:{entry.method}", {"evaluated": [], "flagged": []})
        group["evaluated"].append(entry.sha256[:16])
        if flagged:
            group["flagged"].append(entry.sha256[:16])
    return {key: {k: sorted(v) for k, v in value.items()} for key, value in sorted(groups.items())}


def evaluate(
    model: str | Path,
    corpus: str | Path,
    *,
    folds: int | None = None,
    seed: int = 0,
    target_fpr: float = DEFAULT_TARGET_FPR,
    threshold: float | None = None,
    workers: int = 1,
    latency_sample: int = 100,
    command: str = "",
    progress=None,
    scheduler: str | None = None,
    data: CorpusFeatures | None = None,
    out: str | Path | None = None,
    split: str | None = None,
) -> dict:
    """Evaluate ``model`` (a registered key or a model file) on ``corpus``; returns schema-valid metrics (a dict).

    ``scheduler`` runs feature extraction on a Dask cluster (address, or ``local-cluster``);
    ``data`` reuses feature rows a caller already loaded for this corpus; ``out`` is a
    folder to write ``metrics.json`` into (atomically).
    """
    corpus = Path(corpus)
    path = model_path(model)
    detector = load_detector(model, threshold)
    if data is None:
        data = load_corpus_features(corpus, workers=workers, progress=progress, scheduler=scheduler, split=split)
    entries = data.entries
    log.info("evaluating %s %s on %s: %d files, %d unreadable%s", detector.name, detector.version, corpus, len(entries),
             len(data.errors), f", {folds} grouped folds" if folds else "")
    labels = np.asarray([e.label == "stego" for e in entries])
    n = len(entries)
    scores = np.zeros(n)
    flags = np.zeros(n, dtype=bool)
    predicted: list[str] = [""] * n
    cross = None
    used_threshold = detector.threshold
    if folds:
        assignment = fold_assignment(data, folds, seed)
        trainable = detector.trainable
        per_fold = []
        for fold in range(folds):
            test = np.flatnonzero(assignment == fold)
            fitted = detector.refit(data, np.flatnonzero(assignment != fold), seed=seed + fold, target_fpr=target_fpr) if trainable else detector
            s, ms, methods = fitted.score_features(data.features[test])
            t = fitted.threshold
            scores[test], flags[test] = s, s >= t
            for k, i in enumerate(test):
                predicted[i] = methods[int(np.argmax(ms[k]))]
            per_fold.append(_fold_result(fold, [entries[i] for i in test], s, s >= t, t))
        mean, std = _summary(per_fold)
        cross = {"folds": folds, "trained_per_fold": trainable, "splitter": "StratifiedGroupKFold(groups=cover_id)",
                 "per_fold": per_fold, "mean": mean, "std": std,
                 "fold_of_cover": {e.cover_id: int(assignment[i]) for i, e in enumerate(entries)}}
        used_threshold = float(np.median([r["threshold"] for r in per_fold]))
    elif n:
        scores, method_scores, methods = detector.score_features(data.features)
        flags = scores >= detector.threshold
        predicted = [methods[int(np.argmax(row))] for row in method_scores]

    clean, stego = ~labels, labels
    fpr = rate_record(int(flags[clean].sum()), int(clean.sum()))
    methods_true = [e.method or "" for e in entries]
    detected = np.flatnonzero(stego & flags)
    metrics = {
        "run": {
            "run_id": new_run_id(),
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": command,
            "git_commit": git_commit(),
            "stegwatch_version": __version__,
            "model": {"name": detector.name, "version": detector.version, "path": str(path) if path else None,
                      "sha256": hashlib.sha256(path.read_bytes()).hexdigest() if path else None},
            "corpus": {"path": str(corpus), "manifest_sha256": data.manifest_sha256, "files": n + len(data.errors),
                       "split": split},
            "machine": machine_info(),
        },
        "threshold": used_threshold,
        "unreadable": len(data.errors),
        "unreadable_files": data.errors,
        "fpr_target": target_fpr,
        "n_needed_for_target": n_needed_zero_failures(target_fpr),
        "fpr_target_proven": fpr["upper_bound"] < target_fpr,
        "false_positive_rate": fpr,
        "false_positive_rate_by_category": grouped_rates(flags[clean], [e.category for e in entries if e.label == "clean"]),
        "false_positive_rate_by_format": grouped_rates(flags[clean], [e.format for e in entries if e.label == "clean"]),
        "false_positive_rate_by_cover_source": grouped_rates(flags[clean], [e.cover_source or "unknown" for e in entries if e.label == "clean"]),
        "detection_rate": rate_record(int(flags[stego].sum()), int(stego.sum())),
        "detection_rate_by_method": grouped_rates(flags[stego], [e.method for e in entries if e.label == "stego"]),
        "detection_rate_by_payload": grouped_rates(flags[stego], [payload_bin(e.method, e.payload_kind, e.payload_bpnzac, e.payload_bpp)
                                                                  for e in entries if e.label == "stego"]),
        "attribution": {
            "accuracy": rate_record(sum(predicted[i] == methods_true[i] for i in detected), len(detected)),
            "confusion": confusion([methods_true[i] for i in detected], [predicted[i] for i in detected]),
        },
        "roc_auc": roc_auc(labels, scores),
        "roc_auc_by_method": {m: roc_auc(labels[(np.asarray(methods_true) == m) | clean], scores[(np.asarray(methods_true) == m) | clean])
                              for m in sorted({e.method for e in entries if e.method})},
        "detection_at_fpr": {str(f): detection_at_fpr(scores[clean], scores[stego], f) for f in FIXED_FPRS},
        "roc_curves": roc_curves(labels, scores, np.asarray(methods_true)),
        "p_e": p_e(labels, scores),
        "md5": md5(labels, scores),
        "cross_validation": cross,
        "latency": None,
        "decisions": decisions_of(entries, flags),
    }
    if latency_sample > 0 and n:
        paths = [str(resolve_in_root(corpus, e.file_path)) for e in entries[:: max(1, n // (latency_sample + 5))]]
        metrics["latency"] = measure_latency(detector, paths, sample=latency_sample, workers=workers)
    metrics = Metrics.model_validate(metrics).model_dump(mode="json")
    if out is not None:
        write_json_atomic(Path(out) / METRICS_FILE, metrics, indent=2)
    return metrics
