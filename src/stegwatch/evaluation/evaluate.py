"""``stegwatch evaluate``: every number about a detector on a corpus, with its interval and its run.

No number may be better than a fresh set of photographs would show:

* **Cover groups are the unit.** Every rate carries, beside its file-level
  exact interval, an interval over cover groups (``n_groups``,
  ``group_ci_low``, ``group_ci_high``, ``group_upper_bound``; see
  :func:`stegwatch.stats.group_interval`). Whether the target FPR is proven is
  decided on ``group_upper_bound``.
* **No silent in-sample run.** Without folds, the detector is applied as it
  is, and files whose ``cover_id`` its training or calibration used (its
  card's ``training_cover_ids``) are left out and counted
  (``excluded_in_sample``); ``allow_in_sample`` keeps them and marks the run
  ``in_sample``. With ``folds``, files are split by ``StratifiedGroupKFold``
  (grouped by ``cover_id``) and every detector that can be refitted (V4
  retrained, V3 recalibrated) is refitted per fold, each fold with its own
  threshold, so every decision is out-of-fold.
* **Thresholds as deployed.** The headline rates use the model's own
  threshold (or each fold's); ``oracle_detection_at_fpr`` is the ROC curve
  read at a threshold chosen on the very clean files it reports on, and is
  labelled so.
* **Generalization is measured** (``by_source``): see
  :mod:`stegwatch.evaluation.generalization`.
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
from stegwatch.features.corpus import CorpusFeatures
from stegwatch.features.labels import load_rows
from stegwatch.evaluation.metrics import (
    by_key,
    confusion,
    containers_of,
    detection_at_fpr,
    key_and_peers,
    md5,
    p_e,
    payload_bin,
)
from stegwatch.evaluation.schema import Metrics
from stegwatch.format.files import write_json_atomic
from stegwatch.format.manifest import resolve_in_root
from stegwatch.provenance import git_commit, machine_info, new_run_id
from stegwatch.errors import ConfigError, EmptyCorpus
from stegwatch.evaluation.checkpoints import CheckpointedRefits, with_checkpoints
from stegwatch.evaluation.folds import ExtraTraining, fold_assignment, join_extra, out_of_fold
from stegwatch.evaluation.generalization import generalization
from stegwatch.stats import DEFAULT_TARGET_FPR, group_rate_record, grouped_rates, n_needed_zero_failures, roc_auc

log = logging.getLogger(__name__)

FIXED_FPRS = (DEFAULT_TARGET_FPR, 0.01, 0.05)
#: The file ``evaluate(out=FOLDER)`` writes.
METRICS_FILE = "metrics.json"


def _fold_result(fold: int, entries, scores, flags, threshold) -> dict:
    labels = np.asarray([e.label == "stego" for e in entries])
    groups = np.asarray([e.cover_id for e in entries], dtype=object)
    return {
        "fold": fold, "n_files": len(entries), "cover_ids": len(set(groups.tolist())), "threshold": threshold,
        "false_positive_rate": group_rate_record(flags[~labels], groups[~labels]),
        "detection_rate": group_rate_record(flags[labels], groups[labels]),
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


def roc_curves(labels: np.ndarray, scores: np.ndarray, methods: np.ndarray, points: int = 60,
               containers: np.ndarray | None = None) -> dict:
    """ROC curve per method (that method's files against their clean peers, :func:`~stegwatch.evaluation.metrics.key_and_peers`),
    thinned to about ``points`` points."""
    from sklearn.metrics import roc_curve

    curves = {}
    for method, keep in key_and_peers(labels, methods, containers):
        if np.all(labels[keep]) or not np.any(labels[keep]):
            continue  # no clean peers (or no stego): no curve, rather than NaN in the metrics JSON
        fpr, tpr, _ = roc_curve(labels[keep], scores[keep])
        index = np.unique(np.linspace(0, fpr.size - 1, min(points, fpr.size)).astype(int))
        curves[method] = {"fpr": fpr[index].round(6).tolist(), "tpr": tpr[index].round(6).tolist()}
    return curves


def decisions_of(entries, flags: np.ndarray) -> dict:
    """Which files were evaluated and which were flagged, by short content hash, per clean set and method.

    ``evaluated`` is sorted; ``groups[i]`` is the cover group of ``evaluated[i]``
    (paired tests resample groups, not files).
    """
    sets: dict[str, dict[str, list]] = {}
    for entry, flagged in zip(entries, flags, strict=True):
        group = sets.setdefault("clean" if entry.label == "clean" else f"method:{entry.method}", {"evaluated": [], "flagged": []})
        group["evaluated"].append((entry.sha256[:16], entry.cover_id))
        if flagged:
            group["flagged"].append(entry.sha256[:16])
    out = {}
    for key, value in sorted(sets.items()):
        pairs = sorted(value["evaluated"])
        out[key] = {"evaluated": [p[0] for p in pairs], "groups": [p[1] for p in pairs], "flagged": sorted(value["flagged"])}
    return out


def cover_categories(entries, root: Path | None) -> list[str]:
    """The category of each stego file's cover ("" for clean files): the clean file it was made from (the manifest's
    ``cover_file``, else its sidecar's ``clean_file``), when that file is among ``entries``; else ``unknown``.

    A method is only as detectable as its covers allow: random bits written over an LSB plane that is already noise
    (``noise_lsb``) change little, and the same method over a photograph is easy. So detection is also counted per
    cover category.
    """
    from stegwatch.errors import ManifestError
    from stegwatch.format.manifest import RootResolver, read_sidecar

    category_of = {e.file_path: e.category for e in entries if e.label == "clean"}
    resolve = RootResolver(root) if root is not None else None
    out = []
    for entry in entries:
        if entry.label == "clean":
            out.append("")
            continue
        cover = entry.cover_file
        if cover is None and resolve is not None:
            try:
                sidecar = read_sidecar(resolve(entry.file_path), root)
            except (ManifestError, OSError, ValueError):  # a broken sidecar leaves the cover unknown, never ends the run
                sidecar = None
            cover = sidecar.clean_file if sidecar is not None else None
        out.append(category_of.get(cover, "unknown") if cover else "unknown")
    return out


def exclude_in_sample(detector, data: CorpusFeatures, allow: bool) -> tuple[CorpusFeatures, dict]:
    """Leave out (or, with ``allow``, keep and count) the files whose cover group the detector was fitted on.

    Files the loader already left unread for that reason (``data.left_out``,
    see :func:`unread_covers`) count as left out too.
    """
    covers = getattr(detector, "training_cover_ids", None)
    if covers is None:
        return data, {"training_covers_known": False, "files": 0, "cover_groups": 0, "kept": allow}
    inside = np.asarray([e.cover_id in covers for e in data.entries], dtype=bool)
    unread = [e for e in data.left_out if e.cover_id in covers]
    record = {"training_covers_known": True, "files": int(inside.sum()) + len(unread),
              "cover_groups": len({e.cover_id for e, i in zip(data.entries, inside, strict=True) if i} | {e.cover_id for e in unread}),
              "kept": allow}
    if allow or not inside.any():
        return data, record
    if inside.all():
        raise EmptyCorpus(str(data.labels.get("path") or "corpus"),
                          f"every one of its {inside.size + len(unread)} files descends from a cover {detector.name} was trained or "
                          "calibrated on; evaluate on other covers (the monitor split), use --folds, or --allow-in-sample")
    return data.subset(np.flatnonzero(~inside)), record


def unread_covers(detector, *, labels, refitted: bool, by_source: bool,
                  allow_in_sample: bool) -> frozenset[str] | None:
    """Cover groups whose files a run need not read at all: the detector's training covers, when the run would only drop them.

    None (read everything) with folds or ``by_source`` (refits fit on those
    files), with ``allow_in_sample``, for a labelled CSV, or when the detector
    does not record its covers. (When every file descends from them, the
    loader reads them all, so that :func:`exclude_in_sample` reports that case.)
    """
    covers = getattr(detector, "training_cover_ids", None)
    if covers is None or labels is not None or refitted or by_source or allow_in_sample:
        return None
    return covers


def cross_validation_record(data: CorpusFeatures, assignment: np.ndarray, scores: np.ndarray, flags: np.ndarray,
                            thresholds: list[float], refitted: bool, seed: int | None = None) -> dict:
    """The ``cross_validation`` section: per-fold rates at each fold's own threshold, their spread, the assignment."""
    entries = data.entries
    folds = len(thresholds)
    per_fold = []
    for fold in range(folds):
        test = np.flatnonzero(assignment == fold)
        per_fold.append(_fold_result(fold, [entries[i] for i in test], scores[test], flags[test], thresholds[fold]))
    mean, std = _summary(per_fold)
    return {"folds": folds, "trained_per_fold": refitted, "splitter": "StratifiedGroupKFold(groups=cover_id)",
            "per_fold": per_fold, "mean": mean, "std": std, "thresholds": thresholds,
            "fold_of_cover": {e.cover_id: int(assignment[i]) for i, e in enumerate(entries)}, "seed": seed}


def metrics_from_decisions(data: CorpusFeatures, scores: np.ndarray, flags: np.ndarray, predicted: list[str], *, model: dict,
                           root: Path | None, split: str | None, command: str, target_fpr: float, threshold: float | None,
                           in_sample: dict, cross_validation: dict | None = None,
                           generalization_section: dict | None = None) -> dict:
    """The ``metrics.json`` document (before validation and latency) from every file's score, decision and predicted method.

    Shared by :func:`evaluate` and by pipelines that are not stegwatch
    detectors (the sealwatch anchor of ``stegwatch baseline``), so every
    number is computed the same way; ``model`` is the run's model identity.
    """
    entries = data.entries
    n = len(entries)
    stego = np.asarray([e.label == "stego" for e in entries], dtype=bool)
    groups = data.groups
    clean = ~stego
    fpr = group_rate_record(flags[clean], groups[clean])
    methods_true = np.asarray([e.method or "" for e in entries])
    detected = np.flatnonzero(stego & flags)
    clean_groups = len(set(groups[clean].tolist()))
    needed = n_needed_zero_failures(target_fpr)
    # Per-method statistics compare a method's files with the clean files of their containers (key_and_peers).
    containers = containers_of(entries)
    # method@rate of every stego file ("" for clean files), as the payload rows and P_E per payload use it
    payload_keys = np.asarray([payload_bin(e.method, e.payload_kind, e.payload_bpnzac, e.payload_bpp) if e.label == "stego"
                               else "" for e in entries], dtype=object)
    metrics = {
        "run": {
            "run_id": new_run_id(),
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": command,
            "git_commit": git_commit(),
            "stegwatch_version": __version__,
            "model": model,
            "corpus": corpus_identity(data, root, split),
            "machine": machine_info(),
        },
        "in_sample": bool(in_sample["files"] and in_sample["kept"]),
        "excluded_in_sample": in_sample,
        "threshold": threshold,
        "unreadable": len(data.errors),
        "unreadable_files": data.errors,
        "fpr_target": target_fpr,
        "n_needed_for_target": needed,
        "n_needed_photographs_for_target": needed,
        "clean_files_per_group": float(clean.sum() / clean_groups) if clean_groups else None,
        "fpr_target_proven": fpr["group_upper_bound"] < target_fpr,
        "false_positive_rate": fpr,
        "false_positive_rate_by_category": grouped_rates(flags[clean], [e.category for e in entries if e.label == "clean"], groups[clean]),
        "false_positive_rate_by_format": grouped_rates(flags[clean], [e.format for e in entries if e.label == "clean"], groups[clean]),
        "false_positive_rate_by_cover_source": grouped_rates(flags[clean], [e.cover_source or "unknown" for e in entries if e.label == "clean"],
                                                             groups[clean]),
        "detection_rate": group_rate_record(flags[stego], groups[stego]),
        "detection_rate_by_method": grouped_rates(flags[stego], methods_true[stego], groups[stego]),
        "detection_rate_by_payload": grouped_rates(flags[stego], payload_keys[stego].tolist(), groups[stego]),
        "detection_rate_by_cover_category": grouped_rates(
            flags[stego], [f"{m} on {c}" for m, c in zip(methods_true[stego], np.asarray(cover_categories(entries, root),
                                                                                       dtype=object)[stego], strict=True)],
            groups[stego]),
        "attribution": {
            "accuracy": group_rate_record(np.asarray([predicted[i] == methods_true[i] for i in detected], dtype=bool), groups[detected]),
            "confusion": confusion([methods_true[i] for i in detected], [predicted[i] for i in detected]),
        },
        "roc_auc": roc_auc(stego, scores),
        "roc_auc_by_method": by_key(roc_auc, stego, scores, methods_true, containers),
        "oracle_detection_at_fpr": {str(f): detection_at_fpr(scores[clean], scores[stego], f, groups[clean], groups[stego])
                                    for f in FIXED_FPRS},
        "roc_curves": roc_curves(stego, scores, methods_true, containers=containers),
        "p_e": p_e(stego, scores),
        "p_e_by_method": by_key(p_e, stego, scores, methods_true, containers),
        "p_e_by_payload": by_key(p_e, stego, scores, payload_keys, containers),
        "md5": md5(stego, scores),
        "cross_validation": cross_validation,
        "generalization": generalization_section,
        "latency": None,
        "decisions": decisions_of(entries, flags),
    }
    return metrics


def corpus_identity(data: CorpusFeatures, root: Path | None, split: str | None) -> dict:
    """A run's ``corpus``: where it was read, its manifest's sha256, its files (readable or not), split and labels."""
    return {"path": str(root) if root else None, "manifest_sha256": data.manifest_sha256,
            "files": len(data.entries) + len(data.errors), "split": split, "labels": data.labels}


def model_identity(detector, path: Path | None) -> dict:
    """A run's ``model``: the detector's name and version, its model file and that file's sha256 (None for a detector
    without one)."""
    return {"name": detector.name, "version": detector.version, "path": str(path) if path else None,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest() if path else None}


def evaluate(
    model: str | Path,
    corpus: str | Path | None = None,
    *,
    labels: str | Path | None = None,
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
    allow_in_sample: bool = False,
    by_source: bool = False,
    train_extra: list[str | Path] | ExtraTraining | None = None,
    detector=None,
    checkpoints: str | Path | None = None,
) -> dict:
    """Evaluate ``model`` (a registered key or a model file) on ``corpus``; returns schema-valid metrics (a dict).

    ``labels`` is a CSV of ``path,label[,method][,group][,source]`` used instead
    of a corpus (:mod:`stegwatch.features.labels`). ``scheduler`` runs feature
    extraction on a Dask cluster (address, or ``local-cluster``); ``data``
    reuses feature rows a caller already loaded; ``out`` is a folder to write
    ``metrics.json`` into (atomically). ``allow_in_sample`` keeps files from the
    covers the model was fitted on (the run is then marked ``in_sample``);
    ``by_source`` adds the leave-one-cover-source-out ``generalization`` section.
    ``train_extra`` names training-only corpora (a training build; their ``train``
    split) joined to every refit, never scored (:class:`~stegwatch.evaluation.folds.ExtraTraining`);
    it needs ``folds`` or ``by_source``. ``detector``: the one ``model`` names, if the
    caller has already loaded it (with ``threshold`` applied). ``checkpoints``: a folder
    where refits are kept and taken from (:mod:`~stegwatch.evaluation.checkpoints`),
    so a stopped run resumes.
    """
    path = model_path(model)
    detector = with_checkpoints(load_detector(model, threshold) if detector is None else detector, checkpoints)
    refitted = bool(folds) and detector.trainable
    if data is None:
        skip = unread_covers(detector, labels=labels, refitted=refitted, by_source=by_source,
                             allow_in_sample=allow_in_sample)
        data = load_rows(corpus, labels, workers=workers, progress=progress, scheduler=scheduler, split=split,
                         leave_out_covers=skip)
    root = Path(labels).parent if labels is not None else Path(corpus) if corpus is not None else None
    extra = None
    if train_extra:
        if not (folds or by_source):
            raise ConfigError("--train-extra adds training files to refits: it needs --folds or --by-source")
        extra = train_extra if isinstance(train_extra, ExtraTraining) else join_extra(
            data, train_extra, workers=workers, progress=progress, scheduler=scheduler)
    if refitted:
        in_sample = {"training_covers_known": True, "files": 0, "cover_groups": 0, "kept": False}
    else:
        data, in_sample = exclude_in_sample(detector, data, allow_in_sample)
    entries = data.entries
    log.info("evaluating %s %s on %s: %d files, %d unreadable%s", detector.name, detector.version, root or "rows given", len(entries),
             len(data.errors), f", {folds} grouped folds" if folds else "")
    if in_sample["files"] and not in_sample["kept"]:
        log.warning("left out %d files (%d cover groups) whose covers %s was trained or calibrated on; "
                    "--allow-in-sample keeps them", in_sample["files"], in_sample["cover_groups"], detector.name)
    elif in_sample["files"]:
        log.warning("IN-SAMPLE: %d files (%d cover groups) descend from covers %s was trained or calibrated on",
                    in_sample["files"], in_sample["cover_groups"], detector.name)
    elif not in_sample["training_covers_known"]:
        log.warning("%s does not record the covers it was trained on: in-sample files cannot be excluded", detector.name)
    stego = np.asarray([e.label == "stego" for e in entries])
    groups = data.groups
    n = len(entries)
    cross = None
    if folds:
        assignment = fold_assignment(data, folds, seed)
        if refitted:
            oof = out_of_fold(detector, data, assignment, seed=seed, target_fpr=target_fpr, extra=extra)
            scores, flags, predicted, thresholds = oof.scores, oof.flags, oof.predicted, oof.thresholds
        else:
            scores, method_scores, methods = detector.score_features(data.features)
            flags, thresholds = scores >= detector.threshold, [float(detector.threshold)] * folds
            predicted = [methods[int(np.argmax(row))] for row in method_scores]
        cross = cross_validation_record(data, assignment, scores, flags, thresholds, refitted, seed)
        cross["extra_training"] = extra.record() if extra is not None and refitted else []
    else:
        scores, method_scores, methods = detector.score_features(data.features)
        flags = scores >= detector.threshold
        predicted = [methods[int(np.argmax(row))] for row in method_scores]
    generalization_section = None
    if by_source:
        generalization_section = generalization(detector, data, seed=seed, target_fpr=target_fpr,
                                                in_source_flags=flags if refitted else None,
                                                in_source_scores=scores if refitted else None, extra=extra)

    metrics = metrics_from_decisions(
        data, scores, flags, predicted, model=model_identity(detector, path), root=root, split=split, command=command, target_fpr=target_fpr,
        threshold=None if refitted else float(detector.threshold), in_sample=in_sample, cross_validation=cross,
        generalization_section=generalization_section)
    if isinstance(detector, CheckpointedRefits):
        metrics["refits"] = detector.record()
    if latency_sample > 0 and n and root is not None:
        paths = [str(resolve_in_root(root, e.file_path)) for e in entries[:: max(1, n // (latency_sample + 5))]]
        metrics["latency"] = measure_latency(detector, paths, sample=latency_sample, workers=workers)
    metrics = Metrics.model_validate(metrics).model_dump(mode="json")
    if out is not None:
        write_json_atomic(Path(out) / METRICS_FILE, metrics, indent=2)
    return metrics
