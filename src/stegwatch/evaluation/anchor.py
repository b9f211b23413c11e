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
image (sealwatch's extraction, read and decode included) is recorded as its
latency and per format family, on the files :mod:`stegwatch.evaluation.cost`
times stegwatch's own features on.

sealwatch depends on torch, so it is an optional extra
(``pip install 'stegwatch[anchor]'``), never a runtime dependency.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

import numpy as np

from stegwatch.errors import ConfigError
from stegwatch.evaluation.cost import TIMED_PER_FAMILY, file_family, path_family, timed_files, warm_up
from stegwatch.features.corpus import CorpusFeatures
from stegwatch.format.manifest import RootResolver
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

    if path_family(path) == "jpeg":
        import jpeglib

        from stegwatch.stego.dct import ijg_quality

        quality = ijg_quality(np.asarray(jpeglib.read_dct(str(path)).qt[0]).reshape(-1)) or 75
        return "jpeg", np.asarray(sealwatch.tools.flatten(sealwatch.dctr.extract_from_file(str(path), quality)), dtype=np.float64)
    with Image.open(path) as image:
        gray = np.asarray(image.convert("L"), dtype=np.uint8)
    return "spatial", np.asarray(sealwatch.tools.flatten(sealwatch.spam.extract(gray)), dtype=np.float64)


#: Identifies the layout of the anchor's cached rows (bump when the extractors' inputs change).
ANCHOR_CACHE_VERSION = 1


def anchor_cache_path(family: str) -> Path:
    """Where sealwatch's rows of one family are kept: beside the feature cache, one SQLite file per family."""
    from stegwatch.features.cache import default_cache_path

    return default_cache_path().parent / f"anchor-sealwatch-{family}.sqlite"


def _extract_one(path: str) -> tuple[np.ndarray | None, float, str | None]:
    """``(vector, milliseconds, None)``, or ``(None, milliseconds, reason)`` when sealwatch cannot read the file."""
    from stegwatch.parallel import one_blas_thread

    sealwatch = require_sealwatch()
    warm_up("sealwatch", lambda warm: sealwatch_features(sealwatch, warm))  # untimed, as stegwatch's features are
    started = time.perf_counter()
    try:
        with one_blas_thread():  # as stegwatch's features run: each worker's BLAS on one thread, none competing
            vector = sealwatch_features(sealwatch, Path(path))[1]
    except Exception as exc:  # a file sealwatch cannot read is an error record, not the end of the report
        return None, 1000 * (time.perf_counter() - started), f"sealwatch cannot extract it: {type(exc).__name__}: {exc}"
    return vector, 1000 * (time.perf_counter() - started), None


def _width(family: str) -> int:
    """Width of a family's row: sealwatch's DCTR or SPAM, which stegwatch's own equal (``tests/test_rich_features.py``)."""
    from stegwatch.features import rich

    return len(rich.dctr_names() if family == "jpeg" else rich.spam_names())


def _extract_all(sealwatch, data: CorpusFeatures, root: Path, progress=None, *, workers: int = 1,
                 cache: bool = True) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, list[dict]]:
    """sealwatch's rows of every file (through the anchor cache, by content SHA-256), the cost of the timed files,
    and an error record for each file sealwatch could not read (its row stays zeros).

    ``timings`` holds milliseconds for the files extracted in this run plus
    :data:`TIMED_PER_FAMILY` per family timed afresh, NaN for the rest.
    """
    from concurrent.futures import ProcessPoolExecutor

    from stegwatch.features.cache import FeatureCache

    resolve = RootResolver(root)
    paths = [resolve(e.file_path) for e in data.entries]
    families = np.empty(len(paths), dtype=object)
    digests = []
    for i, path in enumerate(paths):  # each file read once: its family and (never a manifest's) SHA-256
        content = path.read_bytes()
        families[i] = file_family(content[:3])
        digests.append(hashlib.sha256(content).hexdigest())
    found: dict[int, np.ndarray] = {}
    caches: dict[str, FeatureCache] = {}
    if cache:
        for family in ("jpeg", "spatial"):
            mine = np.flatnonzero(families == family)
            if not mine.size:
                continue
            caches[family] = FeatureCache(anchor_cache_path(family), version=ANCHOR_CACHE_VERSION, width=_width(family))
            hit = caches[family].get_many(digests[i] for i in mine)
            found.update({int(i): hit[digests[i]] for i in mine if digests[i] in hit})
    timings = np.full(len(paths), np.nan)
    timed = set(timed_files(families))  # cached rows carry no timing: these are timed afresh, as stegwatch's are
    todo = sorted(set(range(len(paths))) - set(found) | timed)
    errors: list[dict] = []
    pending: list[int] = []

    def store() -> None:  # in batches, so an interrupted run keeps what it extracted
        for family, cache_file in caches.items():
            cache_file.put_many({digests[i]: found[i] for i in pending if families[i] == family})
        pending.clear()

    def record(done: int, i: int, vector: np.ndarray | None, ms: float, reason: str | None) -> None:
        if vector is None:
            errors.append({"path": str(paths[i]), "reason": reason})
        else:
            found[i], timings[i] = vector, ms
            pending.append(i)
        if len(pending) >= 200:
            store()
        if progress is not None:
            progress(done, len(todo))

    jobs = [str(paths[i]) for i in todo]
    if workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(workers) as pool:
            for done, (i, result) in enumerate(zip(todo, pool.map(_extract_one, jobs, chunksize=8)), 1):
                record(done, i, *result)
    else:
        for done, (i, job) in enumerate(zip(todo, jobs), 1):
            record(done, i, *_extract_one(job))
    store()
    for cache_file in caches.values():
        cache_file.close()
    matrices = {}
    for family in ("jpeg", "spatial"):
        matrix = np.zeros((len(paths), _width(family)))
        rows = [i for i in np.flatnonzero(families == family) if i in found]
        if rows:
            matrix[rows] = np.stack([found[int(i)] for i in rows])
        matrices[family] = np.nan_to_num(matrix)
    return families, matrices, timings, errors


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
                     progress=None, workers: int = 1) -> dict:
    """Out-of-fold scores, flags and thresholds of the sealwatch pipeline on ``assignment``'s folds, and its cost per image."""
    from stegwatch.detectors.train import grouped_holdout

    sealwatch = require_sealwatch()
    families, matrices, timings, errors = _extract_all(sealwatch, data, root, progress, workers=workers)
    stego = np.asarray([e.label == "stego" for e in data.entries], dtype=bool)
    groups = data.groups
    n = len(data.entries)
    scores, flags = np.zeros(n), np.zeros(n, dtype=bool)
    thresholds = []
    for fold in range(int(assignment.max()) + 1):
        test, train = np.flatnonzero(assignment == fold), np.flatnonzero(assignment != fold)
        fit, val = grouped_holdout(train, groups, seed + fold)
        fold_scores = np.zeros(n)
        for family, features in matrices.items():
            model = _fit_family(sealwatch, features, stego, fit[families[fit] == family], seed + fold)
            mine = np.concatenate([val[families[val] == family], test[families[test] == family]])
            fold_scores[mine] = _score(model, features[mine])
        threshold = threshold_for_fpr(fold_scores[val[~stego[val]]], target_fpr)
        scores[test], flags[test] = fold_scores[test], fold_scores[test] >= threshold
        thresholds.append(float(threshold))
        log.info("anchor fold %d: threshold %.4f", fold, threshold)
    timed = ~np.isnan(timings)
    percentiles = np.percentile(timings[timed], [50, 95, 99]) if timed.any() else [0.0, 0.0, 0.0]
    mean_ms = float(timings[timed].mean()) if timed.any() else 0.0
    latency = {"n": int(timed.sum()), "warmup": 0, "workers": 1, "batch_files": int(timed.sum()),
               "per_image_ms": {"p50": float(percentiles[0]), "p95": float(percentiles[1]), "p99": float(percentiles[2])},
               "images_per_second": 1000.0 / mean_ms if mean_ms > 0 else 0.0}
    # The cost per family: the files timed_files draws (always timed afresh), which stegwatch's cost is timed on too.
    drawn = np.zeros(n, dtype=bool)
    drawn[timed_files(families)] = True
    drawn &= timed
    return {"scores": scores, "flags": flags, "thresholds": thresholds, "latency": latency,
            "version": getattr(sealwatch, "__version__", "unknown"),
            "cost_ms_by_family": {f: float(timings[(families == f) & drawn].mean())
                                  for f in ("jpeg", "spatial") if ((families == f) & drawn).any()},
            "cost_files_timed": {f: int(((families == f) & drawn).sum()) for f in ("jpeg", "spatial")},
            "unreadable_files": errors}
