"""Training (V4) and calibration (V3) on a corpus, with honest held-out numbers.

The corpus is split by ``cover_id`` (scikit-learn's ``GroupShuffleSplit``):
a test part that training never sees (its numbers go into the model card), a
validation part where the decision threshold is chosen for the target
false-positive rate, and the training part. All descendants of one
photograph stay in one part.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from stegwatch import __version__
from stegwatch.detectors.base import threshold_for_fpr
from stegwatch.features.streams import FEATURE_VERSION, STREAMS, feature_names
from stegwatch.features.cache import FeatureCache, default_cache_path
from stegwatch.features.table import features_for_paths
from stegwatch.format.files import write_text_atomic
from stegwatch.format.manifest import MANIFEST_NAME, EmptyCorpus, read_manifest, resolve_in_root
from stegwatch.format.records import ManifestEntry

DEFAULT_TARGET_FPR = 0.0005


@dataclass
class TrainConfig:
    """Everything that decides what ``train`` produces; recorded in the model card."""

    model: str = "v4"
    seed: int = 0
    target_fpr: float = DEFAULT_TARGET_FPR
    exclude_categories: tuple[str, ...] = ()
    drop_streams: tuple[str, ...] = ()
    test_size: float = 0.25
    val_size: float = 0.25
    n_estimators: int = 120
    learning_rate: float = 0.1
    max_depth: int = 3
    subsample: float = 0.8
    workers: int = 1


@dataclass
class CorpusFeatures:
    entries: list[ManifestEntry]
    features: np.ndarray
    errors: list[dict] = field(default_factory=list)
    manifest_sha256: str = ""


def load_corpus_features(
    corpus: str | Path, *, workers: int = 1, progress=None, scheduler: str | None = None,
    cache: FeatureCache | str | Path | None = None,
) -> CorpusFeatures:
    """Feature rows for every readable file of a corpus, through the feature cache (default: ``.stegwatch/features.sqlite``).

    Raises :class:`EmptyCorpus` when the manifest lists nothing or no listed file can be read.
    """
    root = Path(corpus)
    read = read_manifest(root)
    paths = [str(resolve_in_root(root, e.file_path)) for e in read.entries]
    rows = features_for_paths(paths, workers=workers, cache=cache if cache is not None else default_cache_path(), progress=progress, scheduler=scheduler)
    keep = [i for i, r in enumerate(rows) if r.vector is not None]
    errors = [{"path": rows[i].path, "reason": rows[i].error} for i in range(len(rows)) if rows[i].vector is None]
    errors += [{"path": e.where, "reason": e.reason} for e in read.errors]
    if not keep:
        first = f"; first: {errors[0]['path']}: {errors[0]['reason']}" if errors else ""
        raise EmptyCorpus(str(root / MANIFEST_NAME), f"no file of the corpus can be used ({len(errors)} refused or unreadable{first})")
    features = np.stack([rows[i].vector for i in keep]) if keep else np.zeros((0, len(feature_names())))
    digest = hashlib.sha256((root / MANIFEST_NAME).read_bytes()).hexdigest()
    return CorpusFeatures([read.entries[i] for i in keep], features, errors, digest)


def split_by_cover(entries: list[ManifestEntry], seed: int, test_size: float, val_size: float) -> dict[str, np.ndarray]:
    """Indices of train / val / test, grouped by ``cover_id`` (no cover in two parts)."""
    from sklearn.model_selection import GroupShuffleSplit

    groups = np.asarray([e.cover_id for e in entries])
    index = np.arange(len(entries))
    rest, test = next(GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed).split(index, groups=groups))
    train, val = next(GroupShuffleSplit(n_splits=1, test_size=val_size, random_state=seed + 1).split(rest, groups=groups[rest]))
    return {"train": rest[train], "val": rest[val], "test": test}


def _rate(count: int, n: int) -> dict:
    return {"count": int(count), "n": int(n), "rate": (count / n) if n else None}


def quality(entries: list[ManifestEntry], scores: np.ndarray, threshold: float, predicted_methods: list[str | None]) -> dict:
    """Held-out numbers: FPR overall and per clean category, detection per method and rate, AUC, attribution."""
    from sklearn.metrics import roc_auc_score

    flagged = scores >= threshold
    labels = np.asarray([e.label == "stego" for e in entries])
    clean = ~labels
    out: dict = {"n_files": len(entries), "false_positive_rate": _rate(flagged[clean].sum(), clean.sum())}
    out["false_positive_rate_by_category"] = {
        c: _rate(flagged[clean & (cats == c)].sum(), (clean & (cats == c)).sum())
        for cats in [np.asarray([e.category for e in entries])]
        for c in sorted(set(cats[clean]))
    }
    methods = np.asarray([e.method or "" for e in entries])
    out["detection_rate_by_method"] = {m: _rate(flagged[methods == m].sum(), (methods == m).sum()) for m in sorted(set(methods[labels]))}
    by_rate: dict[str, dict] = {}
    for i in np.flatnonzero(labels):
        e = entries[i]
        rate = e.payload_bpnzac if e.payload_bpnzac is not None else e.payload_bpp
        key = f"{e.method}@{'text' if e.payload_kind == 'text' else round(float(rate or 0), 2)}"
        row = by_rate.setdefault(key, {"count": 0, "n": 0})
        row["count"] += int(flagged[i])
        row["n"] += 1
    out["detection_rate_by_method_and_payload"] = {k: _rate(v["count"], v["n"]) for k, v in sorted(by_rate.items())}
    out["auc"] = float(roc_auc_score(labels, scores)) if 0 < labels.sum() < len(labels) else None
    out["auc_by_method"] = {
        m: float(roc_auc_score(labels[(methods == m) | clean], scores[(methods == m) | clean]))
        for m in sorted(set(methods[labels]))
    }
    detected = labels & flagged
    right = sum(1 for i in np.flatnonzero(detected) if predicted_methods[i] == entries[i].method)
    out["attribution_accuracy"] = _rate(right, detected.sum())
    return out


def _git(*args: str) -> str | None:
    import subprocess

    try:
        result = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _git_commit() -> str | None:
    return _git("rev-parse", "HEAD") or None


def _provenance(corpus: Path, data: CorpusFeatures, config: TrainConfig, command: str, split: dict) -> dict:
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "stegwatch_version": __version__,
        "git_commit": _git_commit(),
        # True when the code differed from that commit (untracked model outputs aside).
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no", "--", "src", ":!src/stegwatch/detectors/models")),
        "corpus": {"path": str(corpus), "manifest_sha256": data.manifest_sha256, "files": len(data.entries),
                   "unreadable": len(data.errors)},
        "feature_version": FEATURE_VERSION,
        "config": asdict(config),
        "split": {part: {"files": int(idx.size), "cover_ids": len({data.entries[i].cover_id for i in idx})}
                  for part, idx in split.items()},
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }


def train(corpus: str | Path, out: str | Path, config: TrainConfig = TrainConfig(), *, command: str = "", progress=None) -> dict:
    """Train V4 (or calibrate V3) on ``corpus``; write the model and its card into ``out``. Returns the card."""
    corpus, out = Path(corpus), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_corpus_features(corpus, workers=config.workers, progress=progress)
    split = split_by_cover(data.entries, config.seed, config.test_size, config.val_size)
    excluded = set(config.exclude_categories)
    split["train"] = np.asarray([i for i in split["train"] if data.entries[i].category not in excluded], dtype=int)
    provenance = _provenance(corpus, data, config, command, split)
    if config.model == "v3":
        return _calibrate_v3(data, split, config, provenance, out)
    return _train_v4(data, split, config, provenance, out)


def _calibrate_v3(data: CorpusFeatures, split: dict, config: TrainConfig, provenance: dict, out: Path) -> dict:
    from stegwatch.detectors.v3 import V3Detector, calibrate

    clean_train = [i for i in split["train"] if data.entries[i].label == "clean"]
    clean_val = [i for i in split["val"] if data.entries[i].label == "clean"]
    calibration = calibrate(data.features[clean_train], data.features[clean_val], config.target_fpr, provenance)
    detector = V3Detector(calibration)
    test = split["test"]
    scores, method_scores, methods = detector.score_features(data.features[test])
    predicted = [methods[int(np.argmax(row))] for row in method_scores]
    card = {
        "name": detector.name, "version": "3.0", "kind": "v3",
        "methods": list(methods),
        "threshold": {"value": calibration.threshold, "target_fpr": config.target_fpr,
                      "chosen_on": "clean files of the validation part (cover_id-grouped)", "n_clean": len(clean_val),
                      "smallest_resolvable_fpr": 1 / len(clean_val) if clean_val else None},
        "calibrated_on": {"n_clean": len(clean_train)},
        "held_out": quality([data.entries[i] for i in test], scores, calibration.threshold, predicted),
        **provenance,
    }
    payload = calibration.to_json_dict() | {"model_card": card}
    write_text_atomic(out / "v3_calibration.json", json.dumps(payload, indent=1, sort_keys=True) + "\n")
    write_text_atomic(out / "model_card.json", json.dumps(card, indent=2, sort_keys=True) + "\n")
    return card


def _train_v4(data: CorpusFeatures, split: dict, config: TrainConfig, provenance: dict, out: Path) -> dict:
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.metrics import log_loss, roc_auc_score

    streams = tuple(s for s in STREAMS if s not in set(config.drop_streams))
    names = feature_names(streams)
    columns = np.asarray([feature_names(STREAMS).index(n) for n in names])
    features = data.features[:, columns].astype(np.float32)
    labels = np.asarray([e.method if e.label == "stego" else "clean" for e in data.entries])
    train_idx, val_idx, test_idx = split["train"], split["val"], split["test"]

    stage_times: list[float] = []
    started = time.perf_counter()

    def monitor(i, model, local_vars):
        stage_times.append(time.perf_counter() - started)
        return False

    model = GradientBoostingClassifier(
        n_estimators=config.n_estimators, learning_rate=config.learning_rate, max_depth=config.max_depth,
        subsample=config.subsample, random_state=config.seed,
    )
    model.fit(features[train_idx], labels[train_idx], monitor=monitor)
    classes = [str(c) for c in model.classes_]
    clean_col = classes.index("clean")

    log_lines = []
    val_is_stego = labels[val_idx] != "clean"
    for step, (p_train, p_val) in enumerate(zip(model.staged_predict_proba(features[train_idx]),
                                                 model.staged_predict_proba(features[val_idx]), strict=True), start=1):
        log_lines.append({
            "step": step,
            "train_loss": round(float(log_loss(labels[train_idx], p_train, labels=classes)), 6),
            "val_loss": round(float(log_loss(labels[val_idx], p_val, labels=classes)), 6),
            "val_auc": round(float(roc_auc_score(val_is_stego, 1 - p_val[:, clean_col])), 6) if 0 < val_is_stego.sum() < val_is_stego.size else None,
            "elapsed_seconds": round(stage_times[step - 1], 3),
        })

    val_scores = 1 - model.predict_proba(features[val_idx])[:, clean_col]
    clean_val_scores = val_scores[~val_is_stego]
    threshold = threshold_for_fpr(clean_val_scores, config.target_fpr)

    onnx_bytes = _to_onnx(model, len(names))
    onnx_sha = hashlib.sha256(onnx_bytes).hexdigest()
    parity = _onnx_parity(onnx_bytes, model, features[val_idx])

    test_proba = model.predict_proba(features[test_idx])
    test_scores = 1 - test_proba[:, clean_col]
    method_cols = [i for i, c in enumerate(classes) if c != "clean"]
    predicted = [classes[method_cols[int(np.argmax(row[method_cols]))]] for row in test_proba]
    card = {
        "name": "stegwatch-v4", "version": f"4.0+{onnx_sha[:8]}", "kind": "v4",
        "onnx_sha256": onnx_sha,
        "classes": classes,
        "streams": list(streams),
        "feature_names": names,
        "hyperparameters": {"estimator": "sklearn.ensemble.GradientBoostingClassifier", "n_estimators": config.n_estimators,
                            "learning_rate": config.learning_rate, "max_depth": config.max_depth, "subsample": config.subsample,
                            "random_state": config.seed},
        "threshold": {"value": threshold, "target_fpr": config.target_fpr,
                      "chosen_on": "clean files of the validation part (cover_id-grouped): the smallest threshold whose "
                                   "false-positive rate there is at most the target",
                      "n_clean": int(clean_val_scores.size),
                      "smallest_resolvable_fpr": 1 / clean_val_scores.size if clean_val_scores.size else None},
        "validation": {"n_files": int(val_idx.size), "final_val_loss": log_lines[-1]["val_loss"], "final_val_auc": log_lines[-1]["val_auc"]},
        "onnx_parity_max_abs_diff": parity,
        "held_out": quality([data.entries[i] for i in test_idx], test_scores, threshold, predicted),
        **provenance,
    }
    (out / "model.onnx").write_bytes(onnx_bytes)
    write_text_atomic(out / "training_log.jsonl", "".join(json.dumps(line) + "\n" for line in log_lines))
    write_text_atomic(out / "model_card.json", json.dumps(card, indent=2, sort_keys=True) + "\n")
    return card


def _to_onnx(model, n_features: int) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onnx_model = convert_sklearn(
        model, initial_types=[("features", FloatTensorType([None, n_features]))], options={id(model): {"zipmap": False}}
    )
    return onnx_model.SerializeToString()


def _onnx_parity(onnx_bytes: bytes, model, features: np.ndarray) -> float:
    """Largest absolute difference between ONNX and scikit-learn probabilities on ``features``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    onnx_proba = session.run(None, {"features": features.astype(np.float32)})[1]
    return float(np.max(np.abs(onnx_proba - model.predict_proba(features))))
