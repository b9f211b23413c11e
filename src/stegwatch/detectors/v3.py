"""V3: classical steganalysis, no training.

Each method family has one or more named statistics (:data:`STATISTICS`),
each a classical attack computed by :mod:`stegwatch.features.statistics` and
:mod:`stegwatch.features.streams` (one decode per file). Every statistic is
larger for stronger evidence and has no ceiling, so a file further out than
every clean file always scores higher.

=========================  ================================================================
statistic                  what it is (larger = more suspicious)
=========================  ================================================================
alpha/message              an AI42-framed message in the alpha LSBs (Starlight framing)
alpha/sequential_ws        WS residuals (KB predictor) on growing prefixes of the alpha plane
                           (row-major) against the rest of the plane: the largest z, less
                           the reversed path's (Fridrich-Goljan 2004, Ker-Böhme 2008, Ker 2008)
palette/message            a payload-shaped message in the index LSBs (either bit order)
palette/sequential_ws      the same on the palette indices (row-major), WS in colour space
                           (each index against its LSB twin's colour)
lsb.rgb/message            a payload-shaped message in the RGB LSBs (either bit order)
lsb.rgb/sequential_ws      the same on R,G,B interleaved from the top-left (opaque pixels)
lsbm/calibrated_hcf_com    Ker's calibrated HCF-COM (Harmsen-Pearlman 2003, Ker 2005):
                           -log of C(image) / C(2x2-downsampled image), mean over channels
exif/comment_evidence      a non-blank EXIF UserComment: log length of its text, + 2 when
                           framed exactly as Starlight writes it (ASCII header, text, one
                           NUL), - 2 when padded with blanks as cameras write it
exif/binary_comment        log length of a UserComment that is not printable text
eoi/unexplained_trailer    log length of the bytes after the end of the image that no known
                           structure explains (a second JPEG, MP4 boxes of a motion photo,
                           Samsung SEF, PNG, XMP, padding)
jsteg/sequential_pairs     Westfeld-Pfitzmann's pairs of values (2k, 2k+1) on growing prefixes
                           of the luminance AC coefficients in JSteg's order (0 and 1
                           skipped): log-likelihood ratio of "split evenly" against "split
                           as on the rest of the image" (nats)
f5/calibrated_beta         Fridrich-Goljan-Hogea calibration estimate of the F5 change rate
                           (crop 4, low-pass, recompress; modes 01, 10, 11), not clipped
=========================  ================================================================

More classical attacks are computed for every file (stream features, V4's
inputs) without being V3 decision statistics: Westfeld-Pfitzmann's
sequential chi-square (``-log10(1 - p)`` on growing prefixes) on each LSB
path and on JSteg's order, the pairs likelihood ratio on the pixel paths,
and Ker's adjacency HCF-COM. On the default corpus each was dominated by the
statistic above on the same path: in the maximum over statistics it only
added false positives (measured with 3-fold recalibration over 8 seeds when
this table was chosen, issue 16). Fridrich-Goljan-Hogea's blockiness attack
on OutGuess (``dct.outguess_slope_drop``) separates OutGuess, and partly
steghide, in the ranking, but its clean values have a long tail: in the
maximum it raised the threshold of the 0.05% target and cost more detections
of the other methods than it added (5-fold out-of-fold, FEATURE_VERSION 7),
so it is V4's input only. The pairs likelihood ratio needs a rest of
the path that stands for the clean picture, which holds for DCT
coefficients but not for pixels, whose histogram changes from top to bottom.

No statistic points to ``lsbr`` (LSB replacement at keyed, scattered
positions): no prefix of any path holds more of its changes than the rest,
so the sequential attacks cannot see it, and the whole-image estimates that
can (WS, SPA: ``lsb.ws``, ``lsb.spa``, and WS with Ker and Böhme's predictor
over the whole RGB path, ``sequential.rgb_ws_whole``; V4's inputs) reach a
full payload's value, 1.0, on clean files of the default corpus: the clipped
ones reach it on ``noise_lsb`` and ``repetitive_hex`` negatives, whose LSB
planes are as random as a full payload's, and on ``special_cases``; the
unclipped ``rgb_ws_whole`` reaches 0.69 on ``noise_lsb`` and about 6 on flat
``repetitive_hex`` and ``natural_alpha`` negatives (60 files of each
category). A 0.4 bpp ``lsbr`` file's textbook WS estimate is about 0.18
(generator 9's default corpus, issue 16).
Larger is not more suspicious there, so such a statistic could not reach a
0.05% false-positive rate; V4 learns ``lsbr`` from those inputs with the rest.

Bit orders: the sequential attacks read sample values, not the bits'
order within a byte, so one statistic covers both orders; the framed-message
signals try both. The pixel statistics read nothing from JPEG files (a JPEG's pixels are
decoded, not stored, so no LSB payload survives in them); the JPEG ones read
JPEG files only.

Combination: each statistic is mapped to a score by its empirical CDF over
the clean files of a calibration corpus (the fraction of clean files with a
smaller value), with a tail beyond the largest clean value that keeps
rising towards 1 (:func:`ecdf_score`). A method's score is the largest of
its statistics' scores; ``score`` is the largest method score and ``method``
its method. The decision threshold on ``score`` is set on clean files of the
calibration corpus for a target false-positive rate. Both are stored in a
calibration file (``stegwatch train --model v3``), never typed in.
Each detection's ``evidence`` names the statistics behind the verdict.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stegwatch.detectors.base import StreamFeatureDetector
from stegwatch.detectors.registry import DetectorKind
from stegwatch.detectors.train import TrainConfig, grouped_holdout, quality
from stegwatch.errors import ModelError
from stegwatch.features.corpus import CorpusFeatures
from stegwatch.features.streams import FEATURE_VERSION, STREAMS, feature_names
from stegwatch.format.files import write_text_atomic
from stegwatch.stats import threshold_for_fpr

NAME = "stegwatch-v3"
METHODS = ("alpha", "palette", "lsb.rgb", "lsbm", "exif", "eoi", "jsteg", "f5")
_QUANTILES = 2001
#: Statistics listed in a detection's evidence when none reaches the threshold.
EVIDENCE_TOP = 3

Column = Callable[[str], np.ndarray]


@dataclass(frozen=True)
class V3Statistic:
    """One named classical statistic: the method it points to, how it is read from feature rows, its reference."""

    key: str
    method: str
    compute: Callable[[Column], np.ndarray]
    reference: str

    def __reduce__(self):
        """Pickled by key (its ``compute`` may be a lambda): unpickling gives the registered statistic of that key."""
        return (registered_statistic, (self.key,))


def _log_ratio(ratio: np.ndarray, present: np.ndarray) -> np.ndarray:
    """-log of an HCF-COM ratio where it was computed (0 elsewhere): LSB matching lowers the ratio."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(present & (ratio > 0), -np.log(np.where(ratio > 0, ratio, 1.0)), 0.0)


def _pixels(f: Column) -> np.ndarray:
    """1 for files whose pixels are stored (not JPEG), else 0."""
    return 1.0 - f("dct.is_jpeg")


_WS = "Fridrich & Goljan, SPIE 5306 (2004); Ker & Böhme, IH 2008 (KB predictor); Ker, ACM MM&Sec 2008 (locating payload)"
_PAIRS = "Westfeld & Pfitzmann's pairs of values, as a likelihood ratio against the rest of the path"
_FRAMED = "Starlight framing (payload + NUL), extracted in both bit orders"
def registered_statistic(key: str) -> V3Statistic:
    """The statistic of :data:`STATISTICS` named ``key``."""
    found = [s for s in STATISTICS if s.key == key]
    if not found:
        raise KeyError(f"no V3 statistic {key!r}")
    return found[0]


#: Weights of the UserComment evidence, in the units of its log length: Starlight's exact framing
#: counts as much as a text 7 times longer; camera padding as much against.
COMMENT_FRAMING_WEIGHT = 2.0


STATISTICS: tuple[V3Statistic, ...] = (
    V3Statistic("alpha/message", "alpha", lambda f: f("alpha.alpha_ai42"), "Starlight AI42 framing, extracted"),
    V3Statistic("alpha/sequential_ws", "alpha", lambda f: f("sequential.alpha_ws"), _WS),
    V3Statistic("palette/message", "palette", lambda f: f("palette.is_palette") * f("content.index_payload_shaped"), _FRAMED),
    V3Statistic("palette/sequential_ws", "palette", lambda f: f("sequential.index_ws"), _WS + "; in colour space"),
    V3Statistic("lsb.rgb/message", "lsb.rgb",
                lambda f: (1.0 - f("palette.is_palette")) * _pixels(f) * f("content.rgb_payload_shaped"), _FRAMED),
    V3Statistic("lsb.rgb/sequential_ws", "lsb.rgb", lambda f: f("sequential.rgb_ws"), _WS),
    V3Statistic("lsbm/calibrated_hcf_com", "lsbm",
                lambda f: _log_ratio(f("matching.calibrated_hcf_com"), f("matching.hcf_com") > 0),
                "Harmsen & Pearlman, SPIE 5020 (2003); Ker, IEEE SPL 12(6) (2005)"),
    V3Statistic("exif/comment_evidence", "exif",
                lambda f: f("meta.comment_nonblank") * (f("meta.comment_log_len") + COMMENT_FRAMING_WEIGHT * (
                    f("meta.comment_starlight_framed") - f("meta.comment_padded"))),
                "UserComment length, Starlight framing, camera padding"),
    V3Statistic("exif/binary_comment", "exif", lambda f: f("meta.comment_binary") * f("meta.comment_log_len"),
                "a UserComment that is not text"),
    V3Statistic("eoi/unexplained_trailer", "eoi", lambda f: f("meta.trailer_unexplained_log_len"),
                "file structure: JPEG/MPF, ISO BMFF, Samsung SEF, PNG, XMP, padding"),
    V3Statistic("jsteg/sequential_pairs", "jsteg", lambda f: f("dct.is_jpeg") * f("dct.jsteg_seq_pairs"), _PAIRS + ", JSteg's order"),
    V3Statistic("f5/calibrated_beta", "f5", lambda f: f("dct.is_jpeg") * f("dct.f5_calibration_beta"),
                "Fridrich, Goljan & Hogea, IH 2002 (LNCS 2578)"),
)
STATISTIC_KEYS = tuple(s.key for s in STATISTICS)


def v3_statistics(features: np.ndarray, names: list[str] | None = None,
                  statistics: tuple[V3Statistic, ...] = STATISTICS) -> np.ndarray:
    """The (n, len(statistics)) matrix of V3 statistics from feature rows whose columns are ``names`` (default: every
    stream's features)."""
    names = names or feature_names(STREAMS)
    col = {name: i for i, name in enumerate(names)}

    def f(name: str) -> np.ndarray:
        return features[:, col[name]]

    out = np.empty((features.shape[0], len(statistics)))
    for j, statistic in enumerate(statistics):
        out[:, j] = statistic.compute(f)
    return out


def statistic_inputs(statistic: V3Statistic) -> frozenset[str]:
    """The feature names ``statistic`` reads."""
    read: set[str] = set()

    def f(name: str) -> np.ndarray:
        read.add(name)
        return np.ones(1)

    statistic.compute(f)
    return frozenset(read)


def clean_quantiles(statistics: np.ndarray, keys: tuple[str, ...] = STATISTIC_KEYS) -> dict[str, list[float]]:
    """Each statistic's distribution over clean files, on a grid of :data:`_QUANTILES` quantiles."""
    levels = np.linspace(0.0, 1.0, _QUANTILES)
    return {key: np.quantile(statistics[:, j], levels).round(9).tolist() for j, key in enumerate(keys)}


@dataclass
class V3Calibration:
    """What V3 learned from clean files: nothing but the distribution of each statistic, and a threshold."""

    quantiles: dict[str, list[float]]
    threshold: float
    target_fpr: float
    n_clean: int
    provenance: dict

    def to_json_dict(self) -> dict:
        return {"name": NAME, "statistics": list(self.quantiles),
                "quantiles": self.quantiles, "threshold": self.threshold, "target_fpr": self.target_fpr,
                "n_clean": self.n_clean, "provenance": self.provenance}

    @classmethod
    def from_json_dict(cls, data: dict) -> V3Calibration:
        return cls(quantiles=data["quantiles"], threshold=float(data["threshold"]), target_fpr=float(data["target_fpr"]),
                   n_clean=int(data["n_clean"]), provenance=data.get("provenance", {}))

    def check_statistics(self) -> None:
        """ModelError unless this calibration covers every statistic of :data:`STATISTICS`.

        A calibration made by an older stegwatch (other statistics, another
        feature version) cannot score; it can still serve as the recipe that
        evaluation recalibrates per fold (:meth:`V3Detector.refit`).
        """
        missing = [key for key in STATISTIC_KEYS if key not in self.quantiles]
        if missing:
            version = self.provenance.get("feature_version", "?")
            raise ModelError(f"this V3 calibration was made for other statistics (feature version {version}; this "
                             f"stegwatch computes version {FEATURE_VERSION} and lacks {', '.join(missing[:3])}"
                             f"{'...' if len(missing) > 3 else ''}): recalibrate with `stegwatch train --model v3`")


@dataclass(frozen=True)
class CleanTail:
    """The exponential tail beyond the largest clean value of a statistic (see :func:`ecdf_score`).

    ``probability(v)`` is the estimated fraction of clean files with a value
    of at least ``v`` beyond ``top`` (``exp(-(v - top) / scale) / size``);
    ``cut(level)`` the value beyond which it is at most ``level``.
    """

    top: float
    scale: float
    size: int

    @classmethod
    def of(cls, quantiles: list[float], n_clean: int | None = None) -> CleanTail:
        grid = np.asarray(quantiles)
        top = float(grid[-1])
        spread = float(top - grid[int(0.99 * (grid.size - 1))])
        if n_clean is not None and n_clean > 100 * math.e:
            spread /= math.log(n_clean / 100)
        return cls(top, max(spread, 1e-3 * max(abs(top), 1.0), 1e-9), int(grid.size))

    def probability(self, values: np.ndarray) -> np.ndarray:
        return np.exp(-np.maximum(values - self.top, 0.0) / self.scale) / self.size

    def cut(self, level: float) -> float:
        return self.top + self.scale * max(math.log(1.0 / (self.size * level)), 0.0)


def ecdf_score(values: np.ndarray, quantiles: list[float], n_clean: int | None = None) -> np.ndarray:
    """Fraction of the calibration clean files whose statistic is below ``values``, with a tail.

    Inside the clean range this is the empirical CDF on the quantile grid (at
    most ``1 - 1/G``). Above the largest clean value it keeps rising towards 1,
    ``1 - exp(-(v - max) / s) / G`` (:class:`CleanTail`): an exponential tail
    fitted to the top percent of the ``n_clean`` clean files (the largest of
    ``n`` values lies ``s ln(n / 100)`` above the top percentile), so files
    further out score higher, a large enough value scores above any threshold
    below 1, and statistics whose clean files are mostly 0 (a comment, a
    trailer) rise as steeply beyond their largest clean value as continuous
    ones do. Without ``n_clean`` the scale is the top percent's spread itself.
    """
    grid = np.asarray(quantiles)
    size = grid.size
    below = np.searchsorted(grid, values, side="left") / size
    tail = CleanTail.of(quantiles, n_clean)
    return np.where(values > tail.top, 1.0 - tail.probability(values), np.minimum(below, 1.0 - 1.0 / size))


def statistic_scores(statistics: np.ndarray, quantiles: dict[str, list[float]], n_clean: int | None = None) -> np.ndarray:
    """Each statistic's score (n, len(STATISTICS)) through its clean distribution."""
    return np.clip(np.stack([ecdf_score(statistics[:, j], quantiles[key], n_clean) for j, key in enumerate(STATISTIC_KEYS)],
                            axis=1), 0.0, 1.0)


def method_scores(statistics: np.ndarray, quantiles: dict[str, list[float]], n_clean: int | None = None) -> np.ndarray:
    """Each method's score (n, len(METHODS)): the largest score of its statistics."""
    scores = statistic_scores(statistics, quantiles, n_clean)
    return np.stack([scores[:, [j for j, s in enumerate(STATISTICS) if s.method == m]].max(axis=1) for m in METHODS], axis=1)


def calibrate(clean_features: np.ndarray, threshold_features: np.ndarray, target_fpr: float, provenance: dict) -> V3Calibration:
    """Fit the clean distributions on ``clean_features``; set the threshold on ``threshold_features`` (clean too)."""
    quantiles = clean_quantiles(v3_statistics(clean_features))
    held = method_scores(v3_statistics(threshold_features), quantiles, clean_features.shape[0]).max(axis=1)
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
        self.calibration.check_statistics()
        scores = method_scores(v3_statistics(features), self.calibration.quantiles, self.calibration.n_clean)
        return scores.max(axis=1), scores, list(METHODS)

    def evidence(self, features: np.ndarray) -> list[dict[str, dict[str, float]]]:
        """Per row, the statistics behind the verdict: every one whose score reaches the threshold, else the
        :data:`EVIDENCE_TOP` highest; each with its ``value`` and ``score``."""
        self.calibration.check_statistics()
        values = v3_statistics(features)
        scores = statistic_scores(values, self.calibration.quantiles, self.calibration.n_clean)
        out = []
        for row_values, row_scores in zip(values, scores, strict=True):
            order = np.argsort(-row_scores, kind="stable")
            chosen = [j for j in order if row_scores[j] >= self.threshold] or list(order[:EVIDENCE_TOP])
            out.append({STATISTIC_KEYS[j]: {"value": round(float(row_values[j]), 6), "score": round(float(row_scores[j]), 6)}
                        for j in chosen})
        return out

    def refit(self, data: CorpusFeatures, train: np.ndarray, *, seed: int, target_fpr: float,
              exclude_categories: tuple[str, ...] = (), drop_streams: tuple[str, ...] = ()) -> V3Detector:
        """Recalibrate on the clean files of ``train``: distributions on a grouped 75%, the threshold on the rest.

        V3 reads named statistics, not streams, so ``drop_streams`` has nothing to drop.
        """
        groups = np.asarray([e.cover_id for e in data.entries])
        fit, val = grouped_holdout(train, groups, seed)
        kept = ~data.in_categories(exclude_categories)
        clean_fit = [i for i in fit if data.entries[i].label == "clean" and kept[i]]
        clean_val = [i for i in val if data.entries[i].label == "clean"]
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
        "statistics": [{"key": st.key, "method": st.method, "reference": st.reference} for st in STATISTICS],
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
