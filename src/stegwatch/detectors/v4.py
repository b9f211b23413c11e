"""V4: the learned multi-stream detector, run through onnxruntime only.

A multi-class scikit-learn model (classes: ``clean`` and every method key)
over the stream features of :mod:`stegwatch.features.streams`, exported to
ONNX with skl2onnx. ``score`` is 1 - P(clean); ``method_scores`` are the
per-method probabilities; ``method`` is the most probable method. The model
card beside the ONNX file names the streams, the classes, the threshold and
how it was chosen.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from stegwatch.detectors.base import StreamFeatureDetector
from stegwatch.features.streams import STREAMS, feature_names

NAME = "stegwatch-v4"


class V4Detector(StreamFeatureDetector):
    """An ONNX model plus its model card (``model_card.json`` beside it)."""

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
        all_names = feature_names(STREAMS)
        self._columns = np.asarray([all_names.index(n) for n in card["feature_names"]])

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
        proba = self.probabilities(features)
        clean = self.classes.index("clean")
        methods = [c for c in self.classes if c != "clean"]
        method_columns = [self.classes.index(m) for m in methods]
        return 1.0 - proba[:, clean], proba[:, method_columns], methods
