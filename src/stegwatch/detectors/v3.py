"""V3: classical steganalysis, no training.

Each method family has one named statistic, computed by the functions in
:mod:`stegwatch.features.statistics` and :mod:`stegwatch.features.streams`
(one decode per file):

==============  ==============================================================
method          statistic (larger = more suspicious)
==============  ==============================================================
alpha           10 if an AI42 marker is in the alpha LSBs, plus 2 x LSB
                inconsistency in flat alpha regions
palette         10 if a payload-shaped message is in the index LSBs, plus the
                max of 2 x LSB inconsistency in flat index regions and the
                chi-square attack on index pairs
lsb.rgb         10 if a payload-shaped message is in the RGB LSBs, plus the max
                of the chi-square attack on the first 5% of samples and the
                sequential chi-square's embedded fraction
lsbm            max of the SPA and WS payload estimates
exif            a non-blank EXIF UserComment
eoi             log length of the bytes after the end of the image (a
                complete second JPEG is not counted)
jsteg           chi-square attack on the luminance DCT histogram (0, 1 skipped)
f5              Fridrich's calibration estimate of the change rate (F5 family)
==============  ==============================================================

Combination: each statistic is mapped to a method score by its empirical CDF
over the clean files of a calibration corpus (the fraction of clean files
with a smaller value); ``score`` is the largest method score and ``method``
its method. The decision threshold on ``score`` is set on clean files of the
calibration corpus for a target false-positive rate. Both are stored in a
calibration file (``stegwatch train --model v3``), never typed in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stegwatch.detectors.base import StreamFeatureDetector
from stegwatch.detectors.registry import DetectorKind
from stegwatch.detectors.train import TrainConfig, quality
from stegwatch.features.corpus import CorpusFeatures
from stegwatch.features.streams import STREAMS, feature_names
from stegwatch.format.files import write_text_atomic
from stegwatch.stats import threshold_for_fpr

NAME = "stegwatch-v3"
METHODS = ("alpha", "palette", "lsb.rgb", "lsbm", "exif", "eoi", "jsteg", "f5")
DECISIVE = 10.0
_QUANTILES = 2001


def v3_statistics(features: np.ndarray, names: list[str] | None = None) -> np.ndarray:
    """The (n, len(METHODS)) matrix of V3 statistics from full stream feature rows."""
    names = names or feature_names(STREAMS)
    col = {name: i for i, name in enumerate(names)}

    def f(name: str) -> np.ndarray:
        return features[:, col[name]]

    not_palette = 1.0 - f("palette.is_palette")
    # A payload-shaped message (AI42 marker, or printable NUL-terminated text) is decisive:
    # it adds DECISIVE, which no statistic (all at most a few units) reaches on its own.
    columns = {
        "alpha": DECISIVE * f("alpha.alpha_ai42") + 2 * f("alpha.alpha_lsb_flat_inconsistency"),
        "palette": f("palette.is_palette") * (DECISIVE * f("content.index_payload_shaped") + np.maximum(
            2 * f("palette_lsb.index_lsb_flat_inconsistency"), f("palette.index_chi2"))),
        "lsb.rgb": not_palette * (DECISIVE * f("content.rgb_payload_shaped")
                                  + np.maximum(f("lsb.chi2_prefix"), f("lsb.seq_fraction"))),
        "lsbm": np.maximum(f("lsb.spa"), f("lsb.ws")),
        "exif": f("meta.comment_nonblank"),
        "eoi": f("meta.trailer_log_len"),
        "jsteg": f("dct.is_jpeg") * f("dct.jsteg_chi2"),
        "f5": f("dct.is_jpeg") * f("dct.f5_calibration_beta"),
    }
    return np.stack([columns[m] for m in METHODS], axis=1)


@dataclass
class V3Calibration:
    """What V3 learned from clean files: nothing but the distribution of each statistic, and a threshold."""

    quantiles: dict[str, list[float]]
    threshold: float
    target_fpr: float
    n_clean: int
    provenance: dict

    def to_json_dict(self) -> dict:
        return {"name": NAME, "quantiles": self.quantiles, "threshold": self.threshold, "target_fpr": self.target_fpr,
                "n_clean": self.n_clean, "provenance": self.provenance}

    @classmethod
    def from_json_dict(cls, data: dict) -> V3Calibration:
        return cls(quantiles=data["quantiles"], threshold=float(data["threshold"]), target_fpr=float(data["target_fpr"]),
                   n_clean=int(data["n_clean"]), provenance=data.get("provenance", {}))


def _ecdf(values: np.ndarray, quantiles: list[float]) -> np.ndarray:
    """Fraction of the calibration clean files whose statistic is below ``values``, with a tail.

    Inside the clean range this is the empirical CDF on the quantile grid (at
    most ``1 - 1/G``). Above the largest clean value it keeps rising towards 1,
    ``1 - exp(-(v - max) / s) / G`` with ``s`` the spread of the top percent of
    clean values, so files further out score higher and a threshold can sit
    between the most extreme clean file and the stego files beyond it.
    """
    grid = np.asarray(quantiles)
    size = grid.size
    below = np.searchsorted(grid, values, side="left") / size
    top = grid[-1]
    scale = max(float(top - grid[int(0.99 * (size - 1))]), 1e-3 * max(abs(float(top)), 1.0), 1e-9)
    tail = 1.0 - np.exp(-np.maximum(values - top, 0.0) / scale) / size
    return np.where(values > top, tail, np.minimum(below, 1.0 - 1.0 / size))


def method_scores(statistics: np.ndarray, quantiles: dict[str, list[float]]) -> np.ndarray:
    return np.clip(np.stack([_ecdf(statistics[:, j], quantiles[m]) for j, m in enumerate(METHODS)], axis=1), 0.0, 1.0)


def calibrate(clean_features: np.ndarray, threshold_features: np.ndarray, target_fpr: float, provenance: dict) -> V3Calibration:
    """Fit the clean distributions on ``clean_features``; set the threshold on ``threshold_features`` (clean too)."""
    stats = v3_statistics(clean_features)
    levels = np.linspace(0.0, 1.0, _QUANTILES)
    quantiles = {m: np.quantile(stats[:, j], levels).round(9).tolist() for j, m in enumerate(METHODS)}
    held = method_scores(v3_statistics(threshold_features), quantiles).max(axis=1)
    return V3Calibration(quantiles=quantiles, threshold=threshold_for_fpr(held, target_fpr), target_fpr=target_fpr,
                         n_clean=int(clean_features.shape[0]), provenance=provenance)


class V3Detector(StreamFeatureDetector):
    """Classical statistics combined by clean-file calibration (see the module docstring).

    Its calibration is fitting: V3 counts as trained. Evaluation with folds
    recalibrates it on each fold's training part (:meth:`refit`, the recipe
    ``train`` uses), exactly as V4 is retrained, and never scores the covers its
    calibration used (``training_cover_ids``).
    """

    name = NAME
    trainable = True

    def __init__(self, calibration: V3Calibration, version: str = "3.0", threshold: float | None = None,
                 training_cover_ids: frozenset[str] | None = None) -> None:
        self.calibration = calibration
        self.version = version
        self.threshold = calibration.threshold if threshold is None else threshold
        self.training_cover_ids = training_cover_ids

    @classmethod
    def load(cls, path: str | Path, threshold: float | None = None) -> V3Detector:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        card = data.get("model_card", {})
        covers = card.get("training_cover_ids")
        return cls(V3Calibration.from_json_dict(data), version=card.get("version", "3.0"), threshold=threshold,
                   training_cover_ids=frozenset(covers) if covers is not None else None)

    def score_features(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
        scores = method_scores(v3_statistics(features), self.calibration.quantiles)
        return scores.max(axis=1), scores, list(METHODS)

    def refit(self, data: CorpusFeatures, train: np.ndarray, *, seed: int, target_fpr: float,
              exclude_categories: tuple[str, ...] = (), drop_streams: tuple[str, ...] = ()) -> V3Detector:
        """Recalibrate on the clean files of ``train``: distributions on a grouped 75%, the threshold on the rest.

        V3 reads named statistics, not streams, so ``drop_streams`` has nothing to drop.
        """
        from sklearn.model_selection import GroupShuffleSplit

        groups = np.asarray([e.cover_id for e in data.entries])
        fit, val = next(GroupShuffleSplit(n_splits=1, test_size=0.25, random_state=seed).split(train, groups=groups[train]))
        excluded = set(exclude_categories)
        clean_fit = [i for i in train[fit] if data.entries[i].label == "clean" and data.entries[i].category not in excluded]
        clean_val = [i for i in train[val] if data.entries[i].label == "clean"]
        calibration = calibrate(data.features[clean_fit], data.features[clean_val], target_fpr, {})
        return V3Detector(calibration, version=self.version, training_cover_ids=frozenset(groups[train].tolist()))


def train_v3(data: CorpusFeatures, split: dict, config: TrainConfig, provenance: dict, out: Path) -> dict:
    """Calibrate V3: clean distributions on the training part, the threshold on the validation part's clean files."""
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


KIND = DetectorKind(
    key="v3",
    description="classical statistics calibrated on clean files (no learning)",
    load=lambda path, threshold: V3Detector.load(path, threshold),
    shipped=Path(__file__).parent / "models" / "v3" / "v3_calibration.json",
    model_file="v3_calibration.json",
    train=train_v3,
)
