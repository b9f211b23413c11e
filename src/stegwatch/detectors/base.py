"""One detector protocol: paths in, one :class:`Detection` per path out.

Evaluation code never asks which detector it holds: V3 (statistics), V4
(learned, ONNX) and any ONNX file behave the same. Detectors are batch-first
(models load once per detector, features are computed once per file) and
deterministic.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from stegwatch.features.streams import STREAMS

if TYPE_CHECKING:
    from stegwatch.features.corpus import CorpusFeatures


@dataclass
class Detection:
    """The verdict on one file.

    ``score`` is probability-like (0..1), given to 6 decimals (rounded
    towards the verdict, so ``is_stego`` is ``score >= threshold`` for the
    shown score too); ``method`` is the most likely method key (None when the file
    looks clean); ``error`` is set (and the rest empty) when the file could
    not be read. ``evidence`` names what drove the verdict, each entry a
    ``{"value": ..., "score": ...}``: V3's named statistics (those at or
    above the threshold, else the highest), V4's most probable methods.
    """

    path: str
    is_stego: bool | None
    score: float | None
    method: str | None
    method_scores: dict[str, float] = field(default_factory=dict)
    model: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    evidence: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json_dict(self) -> dict:
        return asdict(self)


@runtime_checkable
class Detector(Protocol):
    """What every detector offers; code outside ``detectors/`` sees only this.

    ``trainable`` says whether evaluation refits the detector on each fold's
    training part (with :meth:`refit`) or scores every fold with the detector
    as it is. ``streams`` names the feature streams the detector reads (what a
    stream ablation may drop). ``training_cover_ids`` is the set of cover
    groups its training or calibration used (None: not recorded); evaluation
    never scores their files unless asked to.
    """

    name: str
    version: str
    threshold: float
    trainable: bool
    streams: tuple[str, ...]
    training_cover_ids: frozenset[str] | None

    def detect(self, paths: list[str], *, workers: int = 1, scheduler: str | None = None, cache=None, progress=None) -> list[Detection]:
        """One :class:`Detection` per path, in order.

        ``scheduler``: run feature extraction on Dask; ``cache``: a feature
        cache (or its path) to serve unchanged files from; ``progress``: a
        ``(done, total)`` callback.
        """
        ...

    def score_features(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Scores (n,), per-method scores (n, m) and the method keys, from full stream feature rows."""
        ...

    def refit(self, data: CorpusFeatures, train: np.ndarray, *, seed: int, target_fpr: float,
              exclude_categories: tuple[str, ...] = (), drop_streams: tuple[str, ...] = ()) -> Detector:
        """A new detector of the same recipe fitted on ``data`` rows ``train``, with its own threshold.

        The threshold is chosen for ``target_fpr`` on a ``cover_id``-grouped
        validation part of ``train``. ``exclude_categories`` leaves those clean
        categories out of fitting; ``drop_streams`` leaves those feature streams out.
        """
        ...


class StreamFeatureDetector:
    """``detect`` for detectors that score stream feature rows (subclasses give ``score_features``)."""

    name: str
    version: str
    threshold: float
    trainable: bool = False
    streams: tuple[str, ...] = STREAMS
    training_cover_ids: frozenset[str] | None = None

    def score_features(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
        raise NotImplementedError

    def evidence(self, features: np.ndarray) -> list[dict[str, dict[str, float]]]:
        """Per row, the named quantities behind the verdict (``{name: {"value", "score"}}``); none by default."""
        return [{} for _ in range(features.shape[0])]

    def detect(self, paths: list[str], *, workers: int = 1, scheduler: str | None = None, cache=None, progress=None) -> list[Detection]:
        from stegwatch.features.table import features_for_paths

        paths = [str(p) for p in paths]
        rows = features_for_paths(paths, workers=workers, scheduler=scheduler, cache=cache, progress=progress)
        return detections_from_scores(self, paths, rows)


def shown_score(score: float, is_stego: bool) -> float:
    """``score`` to 6 decimals, rounded up for a stego verdict and down for a clean one.

    Plain rounding could show a score just below the threshold for a file
    flagged because its exact score equals it (the threshold is one of the
    validation scores), or the reverse.
    """
    scaled = score * 1e6
    return (math.ceil(scaled) if is_stego else math.floor(scaled)) / 1e6


def detections_from_scores(
    detector: Detector,
    paths: list[str],
    rows: list,
) -> list[Detection]:
    """Turn feature rows (with errors) into detections, scoring all readable rows in one batch."""
    model = {"name": detector.name, "version": detector.version}
    good = [i for i, row in enumerate(rows) if row.vector is not None]
    out = [Detection(path=row.path, is_stego=None, score=None, method=None, model=model, error=row.error) for row in rows]
    if good:
        features = np.stack([rows[i].vector for i in good])
        scores, method_scores, methods = detector.score_features(features)
        explain = getattr(detector, "evidence", None)  # optional: a detector outside this package may not give it
        evidence = explain(features) if callable(explain) else [{} for _ in good]
        for k, i in enumerate(good):
            score = float(scores[k])
            is_stego = score >= detector.threshold
            per_method = {m: round(float(method_scores[k, j]), 6) for j, m in enumerate(methods)}
            best = methods[int(np.argmax(method_scores[k]))] if methods else None
            out[i] = Detection(
                path=rows[i].path, is_stego=bool(is_stego), score=shown_score(score, bool(is_stego)),
                method=best if is_stego else None, method_scores=per_method, model=model, evidence=evidence[k],
            )
    return out

