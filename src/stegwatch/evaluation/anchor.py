"""An anchor in the same run: the field's reference pipeline, trained and scored on the same folds as the detectors.

``stegwatch baseline --anchor sealwatch`` adds a column made entirely of the
reference library's own parts (J. Kodovsky, J. Fridrich, V. Holub, "Ensemble
classifiers for steganalysis of digital media", IEEE TIFS 7(2), 2012, as
implemented by `sealwatch`):

* features from sealwatch's own extractors: DCTR (Holub and Fridrich, 2015)
  of the luminance for JPEG files, SPAM (Pevny, Bas and Fridrich, 2010) of the
  grayscale image for every other file;
* one FLD ensemble per format family (JPEG, spatial), trained on each fold's
  training part with as many clean as stego files (the trainer wants pairs;
  the larger class is subsampled with the run's seed);
* the score is the ensemble's vote, ``(confidence + 1) / 2``; the threshold is
  chosen for the target FPR on a cover-grouped quarter of the training part,
  exactly as V4's recipe chooses its own.

The anchor is binary (clean or stego): it attributes no method. Its cost per
image (sealwatch's extraction) is recorded as its latency, beside V4's.

sealwatch depends on torch, so it is an optional extra
(``pip install 'stegwatch[anchor]'``), never a runtime dependency.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from stegwatch.errors import ConfigError
from stegwatch.features.corpus import CorpusFeatures
from stegwatch.format.manifest import resolve_in_root
from stegwatch.stats import threshold_for_fpr

log = logging.getLogger(__name__)

ANCHORS = ("sealwatch",)
INSTALL_HINT = ("install the optional extra: pip install 'stegwatch[anchor]' (sealwatch and torch; about 6 GB), "
                "or run without --anchor")
#: How many clean and stego files an FLD ensemble of one family needs at least to be trained.
MIN_PER_CLASS = 4


class AnchorUnavailable(ConfigError):
    """The anchor's library is not installed."""


def require_sealwatch():
    """The sealwatch module, or :class:`AnchorUnavailable` saying how to install it."""
    try:
        import sealwatch
    except ImportError:
        raise AnchorUnavailable(f"--anchor sealwatch needs sealwatch, which is not installed: {INSTALL_HINT}") from None
    return sealwatch


def sealwatch_features(sealwatch, path: Path) -> tuple[str, np.ndarray]:
    """``(family, vector)`` of one file by sealwatch's own extractors: DCTR for a JPEG file, SPAM otherwise."""
    from PIL import Image

    with path.open("rb") as handle:
        is_jpeg = handle.read(3) == b"\xff\xd8\xff"
    if is_jpeg:
        import jpeglib

        from stegwatch.stego.dct import ijg_quality

        quality = ijg_quality(np.asarray(jpeglib.read_dct(str(path)).qt[0]).reshape(-1)) or 75
        return "jpeg", np.asarray(sealwatch.tools.flatten(sealwatch.dctr.extract_from_file(str(path), quality)), dtype=np.float64)
    with Image.open(path) as image:
        gray = np.asarray(image.convert("L"), dtype=np.uint8)
    return "spatial", np.asarray(sealwatch.tools.flatten(sealwatch.spam.extract(gray)), dtype=np.float64)


def _extract_all(sealwatch, data: CorpusFeatures, root: Path, progress=None) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    families = np.empty(len(data.entries), dtype=object)
    vectors: dict[str, list] = {"jpeg": [], "spatial": []}
    rows: dict[str, list[int]] = {"jpeg": [], "spatial": []}
    timings = np.zeros(len(data.entries))
    for i, entry in enumerate(data.entries):
        started = time.perf_counter()
        family, vector = sealwatch_features(sealwatch, resolve_in_root(root, entry.file_path))
        timings[i] = 1000 * (time.perf_counter() - started)
        families[i] = family
        vectors[family].append(vector)
        rows[family].append(i)
        if progress is not None:
            progress(i + 1, len(data.entries))
    matrices = {}
    for family, found in vectors.items():
        matrix = np.zeros((len(data.entries), len(found[0]) if found else 0))
        if found:
            matrix[rows[family]] = np.stack(found)
        matrices[family] = np.nan_to_num(matrix)
    return families, matrices, timings


def _fit_family(sealwatch, features: np.ndarray, stego: np.ndarray, rows: np.ndarray, seed: int):
    """An FLD ensemble on ``rows`` (balanced by subsampling the larger class); None with too few files of a class."""
    clean, dirty = rows[~stego[rows]], rows[stego[rows]]
    if clean.size < MIN_PER_CLASS or dirty.size < MIN_PER_CLASS:
        return None
    rng = np.random.default_rng(seed)
    size = min(clean.size, dirty.size)
    clean, dirty = np.sort(rng.choice(clean, size, replace=False)), np.sort(rng.choice(dirty, size, replace=False))
    trainer = sealwatch.ensemble_classifier.FldEnsembleTrainer(
        np.ascontiguousarray(features[clean]), np.ascontiguousarray(features[dirty]), seed=seed, verbose=0)
    trained = trainer.train()
    return trained[0] if isinstance(trained, tuple) else trained


def _score(model, features: np.ndarray) -> np.ndarray:
    if model is None or features.shape[0] == 0:
        return np.zeros(features.shape[0])
    return (np.asarray(model.predict_confidence(features), dtype=float) + 1.0) / 2.0


def anchor_decisions(data: CorpusFeatures, root: Path, assignment: np.ndarray, *, seed: int, target_fpr: float,
                     progress=None) -> dict:
    """Out-of-fold scores, flags and thresholds of the sealwatch pipeline on ``assignment``'s folds, and its cost per image."""
    from sklearn.model_selection import GroupShuffleSplit

    sealwatch = require_sealwatch()
    families, matrices, timings = _extract_all(sealwatch, data, root, progress)
    stego = np.asarray([e.label == "stego" for e in data.entries], dtype=bool)
    groups = data.groups
    n = len(data.entries)
    scores, flags = np.zeros(n), np.zeros(n, dtype=bool)
    thresholds = []
    for fold in range(int(assignment.max()) + 1):
        test, train = np.flatnonzero(assignment == fold), np.flatnonzero(assignment != fold)
        fit, val = next(GroupShuffleSplit(n_splits=1, test_size=0.25, random_state=seed + fold).split(train, groups=groups[train]))
        fit, val = train[fit], train[val]
        fold_scores = np.zeros(n)
        for family, features in matrices.items():
            model = _fit_family(sealwatch, features, stego, fit[families[fit] == family], seed + fold)
            mine = np.concatenate([val[families[val] == family], test[families[test] == family]])
            fold_scores[mine] = _score(model, features[mine])
        threshold = threshold_for_fpr(fold_scores[val[~stego[val]]], target_fpr)
        scores[test], flags[test] = fold_scores[test], fold_scores[test] >= threshold
        thresholds.append(float(threshold))
        log.info("anchor fold %d: threshold %.4f", fold, threshold)
    percentiles = np.percentile(timings, [50, 95, 99]) if n else [0.0, 0.0, 0.0]
    latency = {"n": n, "warmup": 0, "workers": 1, "batch_files": n,
               "per_image_ms": {"p50": float(percentiles[0]), "p95": float(percentiles[1]), "p99": float(percentiles[2])},
               "images_per_second": 1000.0 / float(timings.mean()) if n and timings.mean() > 0 else 0.0}
    return {"scores": scores, "flags": flags, "thresholds": thresholds, "latency": latency,
            "version": getattr(sealwatch, "__version__", "unknown"),
            "cost_ms_by_family": {f: float(timings[families == f].mean()) for f in ("jpeg", "spatial") if (families == f).any()}}
