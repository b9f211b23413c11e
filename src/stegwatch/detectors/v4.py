"""V4: the learned multi-stream detector, run through onnxruntime only.

A multi-class scikit-learn model (classes: ``clean`` and every method key)
over the stream features of :mod:`stegwatch.features.streams`, exported to
ONNX with skl2onnx. ``score`` is 1 - P(clean); ``method_scores`` are the
per-method probabilities; ``method`` is the most probable method. The model
card beside the ONNX file names the streams, the classes, the threshold and
how it was chosen.

One training recipe, :func:`fit_v4`, serves both ``stegwatch train``
(:func:`train_v4`, which exports to ONNX) and cross-validation
(:meth:`V4Detector.refit`, which scores with the fitted model in memory).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from stegwatch.detectors.base import StreamFeatureDetector
from stegwatch.detectors.registry import DetectorKind
from stegwatch.detectors.train import TrainConfig, quality
from stegwatch.features.corpus import CorpusFeatures
from stegwatch.features.streams import STREAMS, feature_names
from stegwatch.format.files import write_text_atomic
from stegwatch.stats import threshold_for_fpr

NAME = "stegwatch-v4"
ESTIMATOR = "sklearn.ensemble.GradientBoostingClassifier"


def class_labels(data: CorpusFeatures) -> np.ndarray:
    """The class of every row: ``clean`` or the stego file's method key."""
    return np.asarray([e.method if e.label == "stego" else "clean" for e in data.entries])


def fit_v4(features: np.ndarray, labels: np.ndarray, fit: np.ndarray, val: np.ndarray, params: dict,
           target_fpr: float, *, monitor=None):
    """V4's recipe: gradient boosting on rows ``fit``; the threshold for ``target_fpr`` on the clean rows of ``val``.

    ``features`` are float32 columns of the model's streams; ``params`` are
    ``GradientBoostingClassifier`` settings. Returns ``(model, threshold)``.
    """
    from sklearn.ensemble import GradientBoostingClassifier

    model = GradientBoostingClassifier(**params)
    model.fit(features[fit], labels[fit], monitor=monitor)
    clean = [str(c) for c in model.classes_].index("clean")
    val_clean = val[labels[val] == "clean"]
    threshold = threshold_for_fpr(1 - model.predict_proba(features[val_clean])[:, clean], target_fpr)
    return model, threshold


def _columns(names: list[str]) -> np.ndarray:
    all_names = feature_names(STREAMS)
    return np.asarray([all_names.index(n) for n in names])


def _scores_from_proba(proba: np.ndarray, classes: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    clean = classes.index("clean")
    methods = [c for c in classes if c != "clean"]
    return 1.0 - proba[:, clean], proba[:, [classes.index(m) for m in methods]], methods


class V4Detector(StreamFeatureDetector):
    """An ONNX model plus its model card (``model_card.json`` beside it)."""

    trainable = True

    def __init__(self, onnx_path: str | Path, card: dict, threshold: float | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # deterministic, and cores go to feature extraction
        self.session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.card = card
        self.name = card.get("name", NAME)
        self.version = card.get("version", "4.0")
        self.threshold = float(card["threshold"]["value"]) if threshold is None else threshold
        self.classes: list[str] = list(card["classes"])
        self.streams: tuple[str, ...] = tuple(card["streams"])
        self._columns = _columns(card["feature_names"])
        covers = card.get("training_cover_ids")
        self.training_cover_ids = frozenset(covers) if covers is not None else None

    @classmethod
    def load(cls, onnx_path: str | Path, threshold: float | None = None) -> V4Detector:
        onnx_path = Path(onnx_path)
        card = json.loads((onnx_path.parent / "model_card.json").read_text(encoding="utf-8"))
        return cls(onnx_path, card, threshold)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (n, classes) from full stream feature rows."""
        inputs = features[:, self._columns].astype(np.float32)
        name = self.session.get_inputs()[0].name
        outputs = self.session.run(None, {name: inputs})
        return np.asarray(outputs[1], dtype=np.float64)

    def score_features(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
        return _scores_from_proba(self.probabilities(features), self.classes)

    def evidence(self, features: np.ndarray) -> list[dict[str, dict[str, float]]]:
        """Per row, the three most probable methods, each ``{"value": probability, "score": probability}``."""
        _, scores, methods = self.score_features(features)
        return [{methods[j]: {"value": round(float(row[j]), 6), "score": round(float(row[j]), 6)}
                 for j in np.argsort(-row, kind="stable")[:3]} for row in scores]

    def refit(self, data: CorpusFeatures, train: np.ndarray, *, seed: int, target_fpr: float,
              exclude_categories: tuple[str, ...] = (), drop_streams: tuple[str, ...] = ()) -> FittedV4:
        """The card's recipe and settings fitted on ``train`` (a grouped 25% of its covers chooses the threshold)."""
        from sklearn.model_selection import GroupShuffleSplit

        params = {k: v for k, v in self.card["hyperparameters"].items() if k != "estimator"}
        names = [n for n in self.card["feature_names"] if n.split(".", 1)[0] not in set(drop_streams)]
        features = data.features[:, _columns(names)].astype(np.float32)
        labels = class_labels(data)
        groups = np.asarray([e.cover_id for e in data.entries])
        fit, val = next(GroupShuffleSplit(n_splits=1, test_size=0.25, random_state=seed).split(train, groups=groups[train]))
        fit, val = train[fit], train[val]
        if exclude_categories:
            excluded = set(exclude_categories)
            fit = np.asarray([i for i in fit if data.entries[i].category not in excluded], dtype=int)
        model, threshold = fit_v4(features, labels, fit, val, params, target_fpr)
        fitted = FittedV4(model, names, threshold, name=self.name, version=self.version)
        fitted.training_cover_ids = frozenset(groups[train].tolist())
        return fitted


class FittedV4(StreamFeatureDetector):
    """V4's recipe fitted in memory (cross-validation, ablations): scikit-learn scores, no ONNX export."""

    trainable = True

    def __init__(self, model, names: list[str], threshold: float, *, name: str = NAME, version: str = "4.0") -> None:
        self.model = model
        self.name, self.version, self.threshold = name, version, threshold
        self.classes = [str(c) for c in model.classes_]
        self.streams = tuple(dict.fromkeys(n.split(".", 1)[0] for n in names))
        self._names = names
        self._columns = _columns(names)

    def score_features(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
        return _scores_from_proba(self.model.predict_proba(features[:, self._columns].astype(np.float32)), self.classes)

    def refit(self, data: CorpusFeatures, train: np.ndarray, **kwargs) -> FittedV4:
        raise NotImplementedError("refit the ONNX-backed V4Detector this model came from")


def train_v4(data: CorpusFeatures, split: dict, config: TrainConfig, provenance: dict, out: Path) -> dict:
    """Fit V4 on the training part, choose the threshold on the validation part, export to ONNX, write the card."""
    from sklearn.metrics import log_loss, roc_auc_score

    streams = tuple(s for s in STREAMS if s not in set(config.drop_streams))
    names = feature_names(streams)
    features = data.features[:, _columns(names)].astype(np.float32)
    labels = class_labels(data)
    train_idx, val_idx, test_idx = split["train"], split["val"], split["test"]
    params = {"n_estimators": config.n_estimators, "learning_rate": config.learning_rate, "max_depth": config.max_depth,
              "subsample": config.subsample, "random_state": config.seed}

    stage_times: list[float] = []
    started = time.perf_counter()

    def monitor(i, model, local_vars):
        stage_times.append(time.perf_counter() - started)
        return False

    model, threshold = fit_v4(features, labels, train_idx, val_idx, params, config.target_fpr, monitor=monitor)
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
    n_clean_val = int((~val_is_stego).sum())

    onnx_bytes = to_onnx(model, len(names))
    onnx_sha = hashlib.sha256(onnx_bytes).hexdigest()
    parity = onnx_parity(onnx_bytes, model, features[val_idx])

    fitted = FittedV4(model, names, threshold)
    test_scores, test_method_scores, methods = fitted.score_features(data.features[test_idx])
    predicted = [methods[int(np.argmax(row))] for row in test_method_scores]
    card = {
        "name": NAME, "version": f"4.0+{onnx_sha[:8]}", "kind": "v4",
        "onnx_sha256": onnx_sha,
        "classes": classes,
        "streams": list(streams),
        "feature_names": names,
        "hyperparameters": {"estimator": ESTIMATOR, **params},
        "threshold": {"value": threshold, "target_fpr": config.target_fpr,
                      "chosen_on": "clean files of the validation part (cover_id-grouped): the smallest threshold whose "
                                   "false-positive rate there is at most the target",
                      "n_clean": n_clean_val,
                      "smallest_resolvable_fpr": 1 / n_clean_val if n_clean_val else None},
        "validation": {"n_files": int(val_idx.size), "final_val_loss": log_lines[-1]["val_loss"], "final_val_auc": log_lines[-1]["val_auc"]},
        "onnx_parity_max_abs_diff": parity,
        "held_out": quality([data.entries[i] for i in test_idx], test_scores, threshold, predicted),
        **provenance,
    }
    (out / "model.onnx").write_bytes(onnx_bytes)
    write_text_atomic(out / "training_log.jsonl", "".join(json.dumps(line) + "\n" for line in log_lines))
    write_text_atomic(out / "model_card.json", json.dumps(card, indent=2, sort_keys=True) + "\n")
    return card


def to_onnx(model, n_features: int) -> bytes:
    """The fitted scikit-learn model as ONNX bytes (input ``features``, probabilities without ZipMap)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onnx_model = convert_sklearn(
        model, initial_types=[("features", FloatTensorType([None, n_features]))], options={id(model): {"zipmap": False}}
    )
    return onnx_model.SerializeToString()


def onnx_parity(onnx_bytes: bytes, model, features: np.ndarray) -> float:
    """Largest absolute difference between ONNX and scikit-learn probabilities on ``features``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    onnx_proba = session.run(None, {"features": features.astype(np.float32)})[1]
    return float(np.max(np.abs(onnx_proba - model.predict_proba(features))))


KIND = DetectorKind(
    key="v4",
    description="learned multi-stream model (gradient boosting) run through ONNX",
    load=lambda path, threshold: V4Detector.load(path, threshold),
    shipped=Path(__file__).parent / "models" / "v4" / "model.onnx",
    model_file="model.onnx",
    train=train_v4,
)
