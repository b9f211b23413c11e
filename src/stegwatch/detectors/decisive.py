"""Decisive targeted evidence: V3's classical statistics as the second stage of V4.

V4's multi-class model ranks the signature methods almost perfectly, but it
stops boosting where the hard classes (F5, J-UNIWARD...) start to overfit,
before it is sure of the easy ones: a JPEG with an ``eoi`` trailer that no
clean file has can stay under the threshold. Binary models per method made it
sure, and also flagged more clean files, most of all from photograph sources
left out of training (CHANGELOG.md names the runs).

This stage adds certainty only where a targeted attack is decisive. For each
V3 statistic (:data:`stegwatch.detectors.v3.STATISTICS`) whose inputs the
model reads, it fits V3's exponential tail beyond the largest value over the
clean files the model was fitted on (:class:`~stegwatch.detectors.v3.CleanTail`; at the
largest clean value it stands for a fraction ``1/n`` of ``n`` clean files, or V3's ``1/2001`` where
``n`` is larger).
A statistic is *decisive* on a file where that tail puts the fraction of
clean files as far out at most ``level`` (a thousandth of the target
false-positive rate by default, ``TrainConfig.decisive_fraction``). There
the file's score becomes at least ``1 - p`` (``p`` the tail fraction, so at
least ``1 - level``), and so does the score of the statistic's method. The
threshold is then chosen on the combined scores, as before. Everywhere else
the stage changes nothing. The ONNX graph holds the learned model; the
stage's tails are in the model card, and :class:`~stegwatch.detectors.v4.V4Detector`
applies them after the graph.
"""

from __future__ import annotations

import numpy as np

from stegwatch.detectors.v3 import (
    STATISTICS,
    CleanTail,
    V3Statistic,
    clean_quantiles,
    registered_statistic,
    statistic_inputs,
    v3_statistics,
)

RULE = ("a V3 statistic decides where the exponential tail fitted beyond its largest value over the fitting part's "
        "clean files puts the fraction of clean files as far out at most `level`; the score is then at least "
        "1 - that fraction")


class DecisiveStage:
    """The fitted stage: a :class:`CleanTail` per statistic, on feature rows whose columns are ``names``."""

    def __init__(self, level: float, tails: dict[str, CleanTail], names: list[str]) -> None:
        self.level = level
        self.tails = tails
        self.names = names
        self.statistics: tuple[V3Statistic, ...] = tuple(registered_statistic(key) for key in tails)

    @staticmethod
    def readable(names: list[str]) -> tuple[V3Statistic, ...]:
        """The statistics whose every input is among ``names`` (a model without a stream cannot read its statistics)."""
        present = set(names)
        return tuple(s for s in STATISTICS if statistic_inputs(s) <= present)

    @classmethod
    def fit(cls, features: np.ndarray, names: list[str], clean_rows: np.ndarray, level: float) -> DecisiveStage:
        """Tails of every readable statistic over the clean rows ``clean_rows`` of ``features`` (columns ``names``)."""
        statistics = cls.readable(names)
        keys = tuple(s.key for s in statistics)
        quantiles = clean_quantiles(v3_statistics(features[clean_rows], names, statistics), keys)
        n = int(clean_rows.size)
        # The largest of n clean values stands for a fraction 1/n of clean files: the tail starts there, or at V3's
        # grid resolution where n is larger (never less conservative than V3's own scores).
        tails = {key: CleanTail.of(quantiles[key], n) for key in keys}
        return cls(level, {key: CleanTail(t.top, t.scale, min(t.size, n)) for key, t in tails.items()}, names)

    def values(self, features: np.ndarray) -> np.ndarray:
        """(n, statistics) the statistics' values."""
        return v3_statistics(features, self.names, self.statistics)

    def scores(self, features: np.ndarray) -> np.ndarray:
        """(n, statistics) ``1 - p`` where a statistic is decisive (its tail fraction ``p`` at most the level), else 0."""
        return self._decide(self.values(features))

    def _decide(self, values: np.ndarray) -> np.ndarray:
        out = np.zeros_like(values)
        for j, statistic in enumerate(self.statistics):
            tail = self.tails[statistic.key]
            p = tail.probability(values[:, j])
            out[:, j] = np.where((values[:, j] > tail.top) & (p <= self.level), 1.0 - p, 0.0)
        return out

    def apply(self, features: np.ndarray, raw: np.ndarray, per_method: np.ndarray,
              methods: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The score and per-method scores raised where a statistic is decisive (copies; the inputs are kept)."""
        decisive = self.scores(features)
        raw, per_method = raw.copy(), per_method.copy()
        if decisive.shape[1]:
            raw = np.maximum(raw, decisive.max(axis=1))
            for j, statistic in enumerate(self.statistics):
                if statistic.method in methods:
                    k = methods.index(statistic.method)
                    per_method[:, k] = np.maximum(per_method[:, k], decisive[:, j])
        return raw, per_method

    def evidence(self, features: np.ndarray) -> list[dict[str, dict[str, float]]]:
        """Per row, the decisive statistics, each ``{"value": statistic, "score": 1 - tail fraction}``."""
        values = self.values(features)
        scores = self._decide(values)
        return [{s.key: {"value": round(float(v[j]), 6), "score": round(float(sc[j]), 6)}
                 for j, s in enumerate(self.statistics) if sc[j] > 0} for v, sc in zip(values, scores, strict=True)]

    def to_card(self, n_clean: int) -> dict:
        """The card's record: the level, the rule, and per statistic its method, tail and decisive value."""
        return {"level": self.level, "rule": RULE, "fitted_on_clean_files": n_clean,
                "statistics": {s.key: {"method": s.method, "top": self.tails[s.key].top, "scale": self.tails[s.key].scale,
                                       "grid": self.tails[s.key].size, "decisive_above": self.tails[s.key].cut(self.level)}
                               for s in self.statistics}}

    @classmethod
    def from_card(cls, record: dict, names: list[str]) -> DecisiveStage:
        return cls(float(record["level"]),
                   {key: CleanTail(float(t["top"]), float(t["scale"]), int(t["grid"]))
                    for key, t in record["statistics"].items()}, names)


EVIDENCE_RULE = ("eoi and exif are decided by V3's targeted evidence, not learned: a file whose statistic lies beyond "
                 "its largest value over the fitting part's clean files scores 1 for the score and for the statistic's "
                 "method; the family models never see those files")


class EvidenceStage:
    """The metadata methods decided by their targeted evidence (``TrainConfig.metadata_evidence``).

    For each V3 statistic of a metadata method whose inputs the model reads
    (``exif/comment_evidence``, ``exif/binary_comment``,
    ``eoi/unexplained_trailer``), ``beyond`` is its largest value over the
    clean files the model was fitted on; a file strictly beyond it is
    decided: its score and its method's score become 1. Unlike
    :class:`DecisiveStage`'s tails (a thousandth of the target), these cuts
    sit at the fitting clean files' edge, because for these methods the
    evidence is the whole signal (the learned model has nothing to add: an
    ``exif`` file's pixels are its cover's). The decisions count in the
    threshold like any score: the cross-fitted threshold rests on the
    combined scores, so a clean file an inner cut decides takes one of the
    target's places.
    """

    def __init__(self, beyond: dict[str, float], names: list[str], n_clean: int) -> None:
        self.beyond = beyond
        self.names = names
        self.n_clean = n_clean
        self.statistics: tuple[V3Statistic, ...] = tuple(registered_statistic(key) for key in beyond)

    @classmethod
    def fit(cls, features: np.ndarray, names: list[str], clean_rows: np.ndarray, methods: tuple[str, ...]) -> EvidenceStage:
        """The largest value over the clean rows ``clean_rows`` of every readable statistic of ``methods``."""
        statistics = tuple(s for s in DecisiveStage.readable(names) if s.method in methods)
        values = v3_statistics(features[clean_rows], names, statistics)
        beyond = {s.key: float(values[:, j].max()) if clean_rows.size else 0.0 for j, s in enumerate(statistics)}
        return cls(beyond, names, int(clean_rows.size))

    @classmethod
    def from_card(cls, record: dict, names: list[str]) -> EvidenceStage:
        return cls({key: float(s["beyond"]) for key, s in record["statistics"].items()}, names,
                   int(record["fitted_on_clean_files"]))

    def to_card(self) -> dict:
        return {"rule": EVIDENCE_RULE, "fitted_on_clean_files": self.n_clean,
                "statistics": {s.key: {"method": s.method, "beyond": self.beyond[s.key]} for s in self.statistics}}

    def _values(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, statistics) the statistics' values, and True where one lies beyond every fitting clean file's."""
        values = v3_statistics(features, self.names, self.statistics)
        return values, values > np.asarray([self.beyond[s.key] for s in self.statistics])[None, :]

    def decided(self, features: np.ndarray) -> np.ndarray:
        """(n, statistics) True where a statistic lies beyond every fitting clean file's value."""
        return self._values(features)[1]

    def apply(self, features: np.ndarray, raw: np.ndarray, per_method: np.ndarray,
              methods: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The score and per-method scores set to 1 where a statistic decides (copies; the inputs are kept)."""
        decided = self.decided(features)
        raw, per_method = raw.copy(), per_method.copy()
        raw[decided.any(axis=1)] = 1.0
        for j, statistic in enumerate(self.statistics):
            per_method[decided[:, j], methods.index(statistic.method)] = 1.0
        return raw, per_method

    def evidence(self, features: np.ndarray) -> list[dict[str, dict[str, float]]]:
        """Per row, the deciding statistics, each ``{"value": statistic, "score": 1}``."""
        values, decided = self._values(features)
        return [{s.key: {"value": round(float(v[j]), 6), "score": 1.0} for j, s in enumerate(self.statistics) if d[j]}
                for v, d in zip(values, decided, strict=True)]
