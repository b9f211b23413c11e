"""V4: the learned multi-stream detector, run through onnxruntime only.

A multi-class model (classes: ``clean`` and every method key) over the
stream features of :mod:`stegwatch.features.streams`, the field's rich
features (``spam``, ``dctr``) included. It is one LightGBM model per format
family behind the one detector: a file whose JPEG coefficients could be read
(:data:`ROUTE_FEATURE`) goes to the ``jpeg`` model, which reads every
stream; any other file to the ``spatial`` model, which leaves out DCTR (zeros
for all its files). Each family's boosting stops early on its validation
part's multi-class log loss. Both models, the routing and the map onto the
union of classes are one ONNX graph (converted with onnxmltools).

``score`` is 1 - P(clean), or 1 where the metadata evidence decides (below);
``method_scores`` are the per-method probabilities; ``method`` is the most
probable method.

The metadata model (``TrainConfig.metadata_model``; off, not shipped): the
metadata methods (:data:`METADATA_METHODS`: ``eoi`` and ``exif``, whose
payload lives in a comment or a trailer, not in the pixels or coefficients)
learned by a model of their own, LightGBM on the ``meta`` stream alone for
every file, JPEG or not, fitted unweighted and stopped on its own
validation loss; the family models never see those files, and ``score`` is
the largest of 1 - P(clean) and the metadata model's P(method). In the
family models a JPEG ``exif`` file stops at about 0.975 (stopped early with
the hard JPEG classes), under every fold's threshold. Out-of-fold on the
baseline report's folds the metadata model lifted detection from 2,872 to
3,323 of 6,120 at the same 2 false positives. It stays off because of what
holds the one threshold up: a handful of clean files whose UserComment is
framed exactly as Starlight frames a payload (about 0.07% of the clean
files, more than the 0.05% target, so the threshold must clear most of
them). Unseen, such a caption scores as high as a payload: fitted on the
shipped model's split, two identical captions that fell in the same inner
fold both scored 0.9997, the threshold became 0.999735, and every family
model's stego file fell under it (``lsb.rgb`` 53 of 100 held-out against
78). What it needs is a threshold per part, each on its own clean scores
(CHANGELOG.md).

Metadata evidence (``TrainConfig.metadata_evidence``, in the shipped
recipe): the metadata methods decided by V3's targeted evidence instead
(:class:`~stegwatch.detectors.decisive.EvidenceStage`): the family models
never see ``eoi`` or ``exif`` files, and a file whose ``exif/comment_evidence``,
``exif/binary_comment`` or ``eoi/unexplained_trailer`` lies beyond every
clean file the model was fitted on scores 1, as does its method. The
evidence is monotone in what separates a payload from a caption (length,
framing, bytes no known structure explains), so a framed caption decides
only where it is longer than every framed caption fitted on, and the
family models' threshold rests on the pixel and coefficient methods alone
plus the few clean files the cuts decide (the cross-fitted threshold
counts them). Measured against the shipped recipe in CHANGELOG.md. The model card
beside the ONNX file names the streams, the classes, the threshold and how
it was chosen, and the iteration where each family's validation loss
stopped improving.

The decisive stage (:mod:`stegwatch.detectors.decisive`, in the shipped
recipe): where one of V3's targeted statistics lies so far beyond every clean
fitting file that its fitted clean tail leaves at most a thousandth of the
target rate (``TrainConfig.decisive_fraction``), the score and that method's
score rise to at least 1 - that fraction. The multi-class model ranks the
signature methods but, stopped early for the hard classes, is not sure of
them; the stage makes it sure only where a published attack is decisive.
Its tails are in the card; the threshold is chosen on the combined scores.

Method models (``TrainConfig.method_models``; off, not shipped): beside
each family's multi-class model, a binary model per method (that method's
files against the family's clean files, early-stopped on its own validation
loss). The multi-class model stops where the hard classes start to overfit,
before it is sure of the easy ones (a JPEG with an ``eoi`` trailer no clean
file has scored 0.90, under the threshold); a method's own model is not held
back by the others. One joins where it adds validation detections (files of
its method it puts at or above the multi-class threshold that the
multi-class model leaves below it) and every validation clean file of its
family stays below the threshold the multi-class model would need for twice
the target rate. ``score`` is then the largest of 1 - P(clean) and the
joined models' P(stego), ``method_scores`` the larger of the two per method,
and the card lists every candidate. It stays off: out-of-fold it lifted
detection but flagged more clean files, most of all from photograph sources
left out of training (CHANGELOG.md names the runs). A threshold per format
family was also measured and dropped: with the threshold at the largest of
n validation clean scores, two families of n/2 each double the expected
false-positive rate.

One training recipe, :func:`fit_v4`, serves ``stegwatch train``
(:func:`train_v4`, which exports to ONNX), cross-validation, ablations and
generalization (:meth:`V4Detector.refit`, which scores with the fitted
models in memory).

The recipe was chosen on the default corpus, on the same grouped folds,
against a strongly regularized logistic regression on standardized features
(scikit-learn, one model per family as here): ``benchmarks/v4_classifiers.py``
runs that comparison, and CHANGELOG.md gives its numbers.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stegwatch.detectors.base import StreamFeatureDetector
from stegwatch.detectors.decisive import DecisiveStage, EvidenceStage
from stegwatch.detectors.registry import DetectorKind
from stegwatch.detectors.train import TrainConfig, grouped_holdout, quality
from stegwatch.features.corpus import CorpusFeatures
from stegwatch.features.streams import STREAMS, feature_columns, feature_names
from stegwatch.format.files import write_bytes_atomic, write_text_atomic
from stegwatch.stats import threshold_for_fpr

NAME = "stegwatch-v4"
ESTIMATOR = "lightgbm.LGBMClassifier"
#: The feature that routes a file to its family's model: 1 for a JPEG whose coefficients could be read.
ROUTE_FEATURE = "dct.is_jpeg"
#: The format families, each with the streams its model leaves out (they are zeros for every file of the family).
FAMILIES: dict[str, tuple[str, ...]] = {"spatial": ("dctr",), "jpeg": ()}
#: The methods whose payload lives in the file's metadata, not its pixels or coefficients (``TrainConfig.metadata_model``).
METADATA_METHODS: tuple[str, ...] = ("eoi", "exif")
#: The streams the metadata model reads: the comment and trailer evidence, nothing of the image or its container.
METADATA_STREAMS: tuple[str, ...] = ("meta",)
#: LightGBM settings fixed by the recipe (not tuned per run): quiet, and the same trees for the same data and seed.
FIXED_PARAMS = {"subsample_freq": 1, "min_child_samples": 20, "reg_lambda": 1.0, "max_bin": 63,
                "deterministic": True, "force_col_wise": True, "verbose": -1}
#: The ONNX operator sets the exported graph uses (onnxmltools' tree ensembles need ai.onnx.ml 1..3).
ONNX_OPSET = 15


def class_labels(data: CorpusFeatures) -> np.ndarray:
    """The class of every row: ``clean`` or the stego file's method key."""
    return np.asarray([e.method if e.label == "stego" else "clean" for e in data.entries])


def recipe_params(config: TrainConfig) -> dict:
    """The hyperparameters :func:`fit_v4` takes, from a training configuration (recorded in the model card)."""
    return {"n_estimators": config.n_estimators, "learning_rate": config.learning_rate, "num_leaves": config.num_leaves,
            "subsample": config.subsample, "colsample_bytree": config.colsample_bytree,
            "early_stopping_rounds": config.early_stopping_rounds, "random_state": config.seed,
            "balance_clean": config.balance_clean, "method_models": config.method_models,
            "method_estimators": config.method_estimators, "decisive_fraction": config.decisive_fraction,
            "threshold_folds": config.threshold_folds, "metadata_model": config.metadata_model,
            "metadata_evidence": config.metadata_evidence}


@dataclass
class FamilyModel:
    """One format family's part of V4: a LightGBM model on some input columns, or a constant where it cannot learn.

    ``columns`` index the model input; ``classes`` are the model's own
    (a subset of the union). ``history`` holds the per-iteration training
    and validation multi-class log loss, the validation P(clean) and the
    seconds spent (a model fitted without a validation part has no
    validation values); ``rows`` the fitting and validation rows it saw.
    """

    family: str
    columns: np.ndarray
    classes: list[str]
    method: str | None = None  # a method model: the one method it tells from clean
    model: object | None = None  # a lightgbm.Booster cut at the best iteration
    constant: np.ndarray | None = None
    best_iteration: int | None = None
    iterations_run: int = 0
    history: dict = field(default_factory=dict)
    rows: dict = field(default_factory=dict)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        if self.model is None:
            return np.tile(self.constant, (len(features), 1))
        proba = self.model.predict(np.ascontiguousarray(features[:, self.columns]))
        return np.column_stack([1 - proba, proba]) if proba.ndim == 1 else proba  # a binary model gives P(classes[1])


class V4Model:
    """The fitted recipe: a model per format family, routed by the last input column; probabilities over ``classes_``.

    ``method_models`` are the binary method models that joined the score
    (``method_selection`` records every candidate).
    """

    def __init__(self, families: dict[str, FamilyModel], classes: list[str], stopping_rounds: int) -> None:
        self.families = families
        self.classes_ = classes
        self.stopping_rounds = stopping_rounds
        self.method_models: list[FamilyModel] = []
        self.method_selection: dict[str, dict[str, dict]] = {}
        self.decisive: DecisiveStage | None = None
        #: The metadata model (``TrainConfig.metadata_model``): P(eoi), P(exif) for every row, whatever its family.
        self.metadata: FamilyModel | None = None
        #: The metadata methods decided by V3's evidence (``TrainConfig.metadata_evidence``), after the decisive stage.
        self.evidence: EvidenceStage | None = None

    @property
    def metadata_methods(self) -> list[str]:
        """The methods only the metadata model scores (none without one)."""
        return [c for c in self.metadata.classes if c != "clean"] if self.metadata is not None else []

    @property
    def method_keys(self) -> list[str]:
        """``family:method`` of every joined method model, in output order."""
        return [f"{part.family}:{part.method}" for part in self.method_models]

    def method_stego(self, features: np.ndarray) -> np.ndarray:
        """(n, method models) each joined method model's P(stego) on the rows of its family (0 on the others)."""
        out = np.zeros((len(features), len(self.method_models)))
        jpeg = self.family_of(features)
        for j, part in enumerate(self.method_models):
            rows = np.flatnonzero(jpeg == (part.family == "jpeg"))
            if rows.size:
                out[rows, j] = part.predict_proba(features[rows])[:, part.classes.index(part.method)]
        return out

    def scores(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Scores, per-method scores and the method keys (:func:`combined_scores`), raised where a V3 statistic is
        decisive (:attr:`decisive`)."""
        raw, per_method, methods = combined_scores(self.predict_proba(features), self.method_stego(features),
                                                   self.classes_, self.method_keys, self.metadata_methods)
        return after_graph(features, raw, per_method, methods, self.decisive, self.evidence)

    @staticmethod
    def family_of(features: np.ndarray) -> np.ndarray:
        """True where a row goes to the ``jpeg`` model (its route column, the last, is set)."""
        return features[:, -1] > 0.5

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(n, classes) probabilities; a row's classes outside its family's model are 0. With a metadata model, its
        P(method) of every metadata method, for every row, fills that method's column (the family models never have
        those classes), so a row's columns no longer sum to 1."""
        out = np.zeros((len(features), len(self.classes_)))
        jpeg = self.family_of(features)
        for name, part in self.families.items():
            rows = np.flatnonzero(jpeg == (name == "jpeg"))
            if rows.size:
                out[np.ix_(rows, [self.classes_.index(c) for c in part.classes])] = part.predict_proba(features[rows])
        if self.metadata is not None and len(features):
            proba = self.metadata.predict_proba(features)
            for method in self.metadata_methods:
                out[:, self.classes_.index(method)] = proba[:, self.metadata.classes.index(method)]
        return out

    def early_stopping(self) -> dict:
        """What the card records: per family the iteration kept, the iterations run, and the rows it learned from."""
        return {
            "monitored": "multi-class log loss of each family's validation part (cover_id-grouped); a method model's "
                         "binary log loss on its method's and the family's clean validation files",
            "stopping_rounds": self.stopping_rounds,
            "families": {name: _stopping_record(part) for name, part in self.families.items()},
            "metadata_model": _stopping_record(self.metadata) if self.metadata is not None else None,
            "method_models": {f"{part.family}:{part.method}": _stopping_record(part) for part in self.method_models},
        }


def _stopping_record(part: FamilyModel) -> dict:
    return {"best_iteration": part.best_iteration, "iterations_run": part.iterations_run, "classes": part.classes,
            "fit_files": part.rows.get("fit", 0), "val_files": part.rows.get("val", 0), "constant": part.model is None}


def after_graph(features: np.ndarray, raw: np.ndarray, per_method: np.ndarray, methods: list[str],
                *stages: DecisiveStage | EvidenceStage | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Scores, per-method scores and methods with each stage after the learned model applied in turn (the decisive
    stage, then the metadata evidence); a stage of None is skipped."""
    for stage in stages:
        if stage is not None:
            raw, per_method = stage.apply(features, raw, per_method, methods)
    return raw, per_method, methods


def combined_scores(proba: np.ndarray, stego: np.ndarray, classes: list[str], method_keys: list[str] | None = None,
                    metadata_methods: list[str] | tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Scores, per-method scores and the method keys from the multi-class probabilities and the method models'.

    The score is the largest of 1 - P(clean) (the family model's),
    ``metadata_methods``' columns (the metadata model's P(method), see
    :attr:`V4Model.metadata`) and the method models' P(stego); a method's
    score the larger of its multi-class probability and its method model's
    (``method_keys`` name the ``stego`` columns ``family:method``; a row's
    other family's columns are 0).
    """
    clean = classes.index("clean")
    methods = [c for c in classes if c != "clean"]
    raw = 1.0 - proba[:, clean]
    if len(metadata_methods):
        raw = np.maximum(raw, proba[:, [classes.index(m) for m in metadata_methods]].max(axis=1))
    per_method = proba[:, [classes.index(m) for m in methods]].copy()
    if stego.shape[1]:
        raw = np.maximum(raw, stego.max(axis=1))
        for j, key in enumerate(method_keys or []):
            k = methods.index(key.split(":", 1)[1])
            per_method[:, k] = np.maximum(per_method[:, k], stego[:, j])
    return raw, per_method, methods


def clean_weights(labels: np.ndarray) -> np.ndarray:
    """Sample weights giving the clean files as much weight together as the stego files together (1 for stego).

    Without it, a family with many near-indistinguishable pairs (a training
    build's JPEG methods) drives every clean file's P(clean) down towards
    1/(k+1), and the clean files' score tail, which sets the threshold, rises
    above the methods the model does see.
    """
    clean = labels == "clean"
    weights = np.ones(labels.size)
    if clean.any() and (~clean).any():
        weights[clean] = (~clean).sum() / clean.sum()
    return weights


def _fit_family(family: str, features: np.ndarray, labels: np.ndarray, fit: np.ndarray, val: np.ndarray,
                columns: np.ndarray, params: dict, stopping_rounds: int, balance_clean: bool = False) -> FamilyModel:
    """LightGBM on rows ``fit`` and ``columns``, early-stopped on rows ``val`` (those whose class it saw).

    ``balance_clean``: weight the clean files (:func:`clean_weights`) in fitting and in the stopping loss.
    """
    import lightgbm

    classes = sorted({str(c) for c in labels[fit]}) or ["clean"]
    part = FamilyModel(family, columns, classes, rows={"fit": int(fit.size), "val": int(val.size)})
    if len(classes) < 2:  # nothing to tell apart: every file of this family gets its one class
        part.constant = np.ones(1)
        return part
    x_fit = np.ascontiguousarray(features[np.ix_(fit, columns)])
    # Class indices into ``classes`` (sorted), so the model's classes_ are 0..k-1 in that order.
    y_fit = np.searchsorted(classes, labels[fit])
    val = val[np.isin(labels[val], classes)]
    x_val = np.ascontiguousarray(features[np.ix_(val, columns)])
    model = lightgbm.LGBMClassifier(**params, **FIXED_PARAMS)
    started = time.perf_counter()
    seconds: list[float] = []
    clean_probability: list[np.ndarray] = []
    raw = np.zeros((val.size, len(classes) if len(classes) > 2 else 1))

    def record(env) -> None:  # after each iteration: time so far, and the validation part's P(clean) (from raw scores)
        seconds.append(time.perf_counter() - started)
        if val.size:
            step = env.model.predict(x_val, raw_score=True, start_iteration=env.iteration, num_iteration=1)
            raw[:] += step.reshape(raw.shape)
            clean_probability.append(_clean_probability(raw, classes))

    callbacks = [record]
    weight = (lambda rows: clean_weights(labels[rows])) if balance_clean else (lambda rows: np.ones(rows.size))
    eval_x, eval_y, eval_w, names = [x_fit], [y_fit], [weight(fit)], ["train"]
    if val.size:
        callbacks.append(lightgbm.early_stopping(stopping_rounds, first_metric_only=True, verbose=False))
        eval_x.append(x_val)
        eval_y.append(np.searchsorted(classes, labels[val]))
        eval_w.append(weight(val))
        names.append("val")
    model.fit(x_fit, y_fit, sample_weight=weight(fit), eval_X=tuple(eval_x), eval_y=tuple(eval_y),
              eval_sample_weight=list(eval_w), eval_names=names, callbacks=callbacks)
    results = model.evals_result_
    metric = next(iter(results["train"]))
    part.iterations_run = len(results["train"][metric])
    part.best_iteration = int(model.best_iteration_) if val.size and model.best_iteration_ else part.iterations_run
    # Keep only the trees up to the best iteration, with float32 thresholds: what is scored in memory is then exactly
    # what is exported.
    trees = model.booster_.model_to_string(num_iteration=part.best_iteration)
    part.model = lightgbm.Booster(model_str=float32_thresholds(trees))
    part.history = {"train_loss": results["train"][metric], "val_loss": results.get("val", {}).get(metric),
                    "val_clean_probability": clean_probability, "val_labels": labels[val], "seconds": seconds}
    return part


def float32_thresholds(model_string: str) -> str:
    """A LightGBM model (text form) with every split threshold t replaced by the largest float32 at most t.

    LightGBM compares a float32 feature x with a float64 threshold t; ONNX's
    tree ensembles store thresholds as float32, and rounding t to the nearest
    float32 can put it on x's side (LightGBM places t between two observed
    values), sending x the other way. For a float32 x, ``x <= t`` holds
    exactly when ``x <= floor32(t)``, so the cut model decides every float32
    input as before, and its thresholds convert to ONNX exactly.
    """
    def floor32(token: str) -> str:
        value = float(token)
        single = np.float32(value)
        if float(single) > value:
            single = np.nextafter(single, np.float32(-np.inf))
        return repr(float(single))

    lines = []
    for line in model_string.split("\n"):
        if line.startswith("threshold="):
            line = "threshold=" + " ".join(floor32(t) for t in line[len("threshold="):].split())
        elif line.startswith("tree_sizes="):  # the tree blocks' byte sizes change; LightGBM parses them without it
            continue
        lines.append(line)
    return "\n".join(lines)


def _clean_probability(raw: np.ndarray, classes: list[str]) -> np.ndarray:
    """P(clean) from LightGBM raw scores: softmax over the classes, or the sigmoid of a binary model's one score."""
    if "clean" not in classes:  # a family with stego files only
        return np.zeros(len(raw))
    clean = classes.index("clean")
    if raw.shape[1] == 1:  # binary: the score is the log-odds of classes[1]
        positive = 1 / (1 + np.exp(-raw[:, 0]))
        return positive if clean == 1 else 1 - positive
    shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
    return shifted[:, clean] / shifted.sum(axis=1)


def fit_v4(features: np.ndarray, labels: np.ndarray, fit: np.ndarray, val: np.ndarray, params: dict,
           target_fpr: float, *, names: list[str]) -> tuple[V4Model, float]:
    """V4's recipe: a LightGBM model per format family on rows ``fit``, each early-stopped on its rows of ``val``,
    the method models that join (see the module docstring), and the threshold for ``target_fpr`` on the clean rows of
    ``val``.

    Parameters
    ----------
    features : (n, len(names) + 1) float32: the columns ``names``, then the route column (:data:`ROUTE_FEATURE`)
    labels : (n,) class of every row (``clean`` or a method key)
    fit, val : row indices to fit on, and to stop and choose the threshold on (cover_id-grouped apart)
    params : ``LGBMClassifier`` settings plus ``early_stopping_rounds`` (:func:`recipe_params`)
    target_fpr : the false-positive rate the threshold is chosen for
    names : the model's feature names (``stream.name``), which say which columns a family leaves out

    Returns
    -------
    ``(model, threshold)``: a :class:`V4Model` and the score threshold.
    """
    params = dict(params)
    stopping_rounds = int(params.pop("early_stopping_rounds"))
    balance_clean = bool(params.pop("balance_clean", False))
    with_method_models = bool(params.pop("method_models", False))
    decisive_fraction = float(params.pop("decisive_fraction", 0.0))
    params.pop("threshold_folds", None)  # read by the callers that know the covers (crossfit_threshold)
    method_estimators = int(params.pop("method_estimators", params["n_estimators"]))
    with_metadata = bool(params.pop("metadata_model", False))
    by_evidence = bool(params.pop("metadata_evidence", False))
    if with_metadata and by_evidence:
        raise ValueError("metadata_model and metadata_evidence are two ways to score eoi and exif: choose one")
    streams = np.asarray([n.split(".", 1)[0] for n in names])
    evidence = None
    if by_evidence:  # without the metadata statistics' inputs (an ablation) the family models keep those methods
        clean_fit = fit[labels[fit] == "clean"]
        evidence = EvidenceStage.fit(features, [*names, ROUTE_FEATURE], clean_fit, METADATA_METHODS)
        evidence = evidence if evidence.statistics else None
    metadata_columns = np.flatnonzero(np.isin(streams, METADATA_STREAMS))
    # Without the metadata streams (an ablation), the family models learn the metadata methods as before.
    metadata = None
    if with_metadata and metadata_columns.size:
        own = lambda rows: rows[np.isin(labels[rows], ("clean", *METADATA_METHODS))]  # noqa: E731
        # Unweighted: the clean files that look most like a payload (a framed caption) are the ones a 0.05% threshold
        # rests on; balancing would give each a tenth of a stego file's weight.
        metadata = _fit_family("metadata", features, labels, own(fit), own(val), metadata_columns, params,
                               stopping_rounds, balance_clean=False)
        if metadata.model is None:  # no metadata stego to learn from: the family models keep those methods
            metadata = None
    if metadata is not None or evidence is not None:
        fit, val = (rows[~np.isin(labels[rows], METADATA_METHODS)] for rows in (fit, val))
    jpeg = V4Model.family_of(features)
    families = {}
    for family, skipped in FAMILIES.items():
        columns = np.flatnonzero(~np.isin(streams, skipped))
        families[family] = _fit_family(family, features, labels, _in_family(fit, jpeg, family),
                                       _in_family(val, jpeg, family), columns, params, stopping_rounds, balance_clean)
    classes = sorted({c for part in [*families.values(), *([metadata] if metadata else [])] for c in part.classes}
                     | (set(METADATA_METHODS) if evidence is not None else set()))
    model = V4Model(families, classes, stopping_rounds)
    model.metadata = metadata
    model.evidence = evidence
    model.method_selection = {family: {} for family in FAMILIES}
    if with_method_models:
        method_params = {**params, "n_estimators": min(method_estimators, int(params["n_estimators"]))}
        _join_method_models(model, features, labels, fit, val, target_fpr, method_params, stopping_rounds,
                            balance_clean)
    clean_fit = fit[labels[fit] == "clean"]
    if decisive_fraction > 0 and clean_fit.size * target_fpr >= 1:  # a tail beyond the target quantile, not short of it
        model.decisive = DecisiveStage.fit(features, [*names, ROUTE_FEATURE], clean_fit, decisive_fraction * target_fpr)
    val_clean = val[labels[val] == "clean"]
    return model, threshold_for_fpr(model.scores(features[val_clean])[0], target_fpr)


def crossfit_threshold(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, rows: np.ndarray, params: dict,
                       target_fpr: float, *, names: list[str], folds: int, seed: int,
                       never_fit: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """The threshold for ``target_fpr`` on cross-fitted scores of the clean files among ``rows``.

    ``rows`` are split into ``folds`` inner folds (StratifiedGroupKFold by
    class, grouped by ``groups``); for each, the recipe (:func:`fit_v4`, early
    stopping on a grouped quarter of the other folds) is fitted on the other
    folds and scores the fold. Every clean file is then scored by a model that
    never saw its cover, and the threshold rests on all of them rather than
    on a validation part's (with fewer than 1 / target_fpr files, the largest
    one decides it).

    ``never_fit`` (a mask over all rows) marks files no inner model is fitted on (a category left out of training);
    they are still scored. Returns ``(threshold, scores, fold)``: the cross-fitted score and the inner fold of every
    row of ``rows``.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    scores, fold_of = np.zeros(rows.size), np.full(rows.size, -1)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (inner, held) in enumerate(splitter.split(np.zeros(rows.size), labels[rows], groups[rows])):
        fit, val = grouped_holdout(rows[inner], groups, seed + k)
        if never_fit is not None:
            fit = fit[~never_fit[fit]]
        model, _ = fit_v4(features, labels, fit, val, params, target_fpr, names=names)
        scores[held], fold_of[held] = model.scores(features[rows[held]])[0], k
    clean = labels[rows] == "clean"
    return threshold_for_fpr(scores[clean], target_fpr), scores, fold_of


#: How many of the highest-scoring clean files the card names beside the threshold.
HIGHEST_CLEAN = 5


def highest_clean(data: CorpusFeatures, rows: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                  count: int = HIGHEST_CLEAN) -> list[dict]:
    """The ``count`` clean files among ``rows`` with the highest ``scores`` (one per row of ``rows``), highest first:
    score, category, cover source and corpus path. With a target of 0.05% the threshold is one of the few
    highest, so these say what holds it up (a framed caption, a synthetic pattern)."""
    clean = np.flatnonzero(labels[rows] == "clean")
    top = clean[np.argsort(-scores[clean], kind="stable")[:count]]
    return [{"score": round(float(scores[k]), 6), "category": data.entries[rows[k]].category,
             "cover_source": data.entries[rows[k]].cover_source, "file_path": data.entries[rows[k]].file_path}
            for k in top]


def _in_family(rows: np.ndarray, jpeg: np.ndarray, family: str) -> np.ndarray:
    """The rows of ``rows`` that go to ``family``'s model (``jpeg``: every row's route)."""
    return rows[jpeg[rows] == (family == "jpeg")]


def _join_method_models(model: V4Model, features: np.ndarray, labels: np.ndarray, fit: np.ndarray, val: np.ndarray,
                        target_fpr: float, params: dict, stopping_rounds: int, balance_clean: bool) -> None:
    """Fit a method model per (family, method) and add to ``model`` those that join (see the module docstring);
    every candidate is recorded in ``model.method_selection``."""
    multi_class_score = np.zeros(len(features))  # 1 - P(clean), on the validation rows only
    multi_class_score[val] = 1 - model.predict_proba(features[val])[:, model.classes_.index("clean")]
    val_clean = val[labels[val] == "clean"]
    multi_class = threshold_for_fpr(multi_class_score[val_clean], target_fpr)
    # The margin: a candidate's clean files must stay below the threshold the multi-class model would need for twice the
    # target, so one that merely lands inside the threshold's own resolution (1 / validation clean files) stays out.
    margin = threshold_for_fpr(multi_class_score[val_clean], 2 * target_fpr)
    jpeg = V4Model.family_of(features)
    for family, selection in model.method_selection.items():
        fit_f, val_f = _in_family(fit, jpeg, family), _in_family(val, jpeg, family)
        if not (labels[fit_f] == "clean").any():
            continue
        for method in sorted(set(labels[fit_f].tolist()) - {"clean"}):
            pair = lambda rows, method=method: rows[np.isin(labels[rows], ["clean", method])]  # noqa: E731
            part = _fit_family(family, features, labels, pair(fit_f), pair(val_f), model.families[family].columns,
                               params, stopping_rounds, balance_clean)
            part.method = method
            stego_column = part.classes.index(method)

            def stego_probability(rows: np.ndarray, part: FamilyModel = part, k: int = stego_column) -> np.ndarray:
                return part.predict_proba(features[rows])[:, k]

            clean_val_f = val_f[labels[val_f] == "clean"]
            highest = float(stego_probability(clean_val_f).max()) if clean_val_f.size else 1.0
            # What it adds: validation files of its method it puts at or above the threshold that the multi-class
            # model leaves below it.
            own = val_f[labels[val_f] == method]
            gain = int(((stego_probability(own) >= multi_class) & (multi_class_score[own] < multi_class)).sum()) \
                if own.size else 0
            joined = part.model is not None and highest < margin and gain > 0
            selection[method] = {"val_clean_max": round(highest, 6), "multi_class_threshold": round(multi_class, 6),
                                 "margin_threshold": round(margin, 6), "validation_gain": gain, "joined": joined,
                                 "best_iteration": part.best_iteration}
            if joined:
                model.method_models.append(part)

def model_columns(names: list[str]) -> np.ndarray:
    """Columns of full stream feature rows that make a V4 model's input: ``names``, then the route column."""
    return feature_columns([*names, ROUTE_FEATURE])


def model_input(features: np.ndarray, columns: np.ndarray, *, chunk: int = 128) -> np.ndarray:
    """``features[:, columns]`` as float32, a chunk of rows at a time.

    Small chunks keep the float64 temporary of each gather small and reused: a gather of a whole batch of wide rows
    maps fresh memory, and faulting it in costs more than the gather itself.
    """
    out = np.empty((len(features), len(columns)), dtype=np.float32)
    for start in range(0, len(features), chunk):
        out[start:start + chunk] = features[start:start + chunk, columns]
    return out


def _legacy_columns(names: list[str]) -> np.ndarray:
    return feature_columns(names)



def _refit_params(card: dict) -> dict:
    """The recipe's settings from a card; a card of an earlier recipe keeps the settings LightGBM shares with it."""
    defaults = recipe_params(TrainConfig())
    given = card.get("hyperparameters", {})
    return {key: given.get(key, value) for key, value in defaults.items()}


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
        self.method_keys: list[str] = list(card.get("method_models", {}).get("joined", []))
        self.metadata_methods: list[str] = list((card.get("metadata_model") or {}).get("methods", []))
        evidence = card.get("metadata_evidence")
        self.evidence_stage = (EvidenceStage.from_card(evidence, [*card["feature_names"], ROUTE_FEATURE])
                               if evidence and evidence.get("statistics") else None)
        decisive = card.get("decisive_statistics")
        self.decisive = (DecisiveStage.from_card(decisive, [*card["feature_names"], ROUTE_FEATURE])
                         if decisive and decisive.get("statistics") and card.get("route_feature") is not None else None)
        self.classes: list[str] = list(card["classes"])
        self.streams: tuple[str, ...] = tuple(card["streams"])
        # A model of the per-family recipe reads the route column after its features; an earlier one only its features.
        routed = card.get("route_feature") is not None
        self._columns = model_columns(card["feature_names"]) if routed else _legacy_columns(card["feature_names"])
        covers = card.get("training_cover_ids")
        self.training_cover_ids = frozenset(covers) if covers is not None else None

    @classmethod
    def load(cls, onnx_path: str | Path, threshold: float | None = None) -> V4Detector:
        onnx_path = Path(onnx_path)
        card = json.loads((onnx_path.parent / "model_card.json").read_text(encoding="utf-8"))
        return cls(onnx_path, card, threshold)

    def score_features(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
        return self._scores(model_input(features, self._columns))

    def _scores(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Scores, per-method scores and methods of model input rows (the graph, then the decisive stage)."""
        outputs = self.session.run(None, {self.session.get_inputs()[0].name: inputs})
        proba = np.asarray(outputs[1], dtype=np.float64)
        # The method models' P(stego) (a graph of an earlier recipe has no such output).
        stego = np.asarray(outputs[2], dtype=np.float64) if len(outputs) > 2 else np.zeros((len(inputs), 0))
        raw, per_method, methods = combined_scores(proba, stego, self.classes, self.method_keys, self.metadata_methods)
        # The stages after the graph, from the card.
        return after_graph(inputs, raw, per_method, methods, self.decisive, self.evidence_stage)

    def evidence(self, features: np.ndarray) -> list[dict[str, dict[str, float]]]:
        """Per row, the decisive V3 statistics (``{"value": statistic, "score": 1 - clean tail fraction}``) and those
        the metadata evidence decides on (score 1), then the three most probable methods (``{"value": probability,
        "score": its method score}``)."""
        inputs = model_input(features, self._columns)
        _, scores, methods = self._scores(inputs)
        decisive = self.decisive.evidence(inputs) if self.decisive is not None else [{} for _ in scores]
        if self.evidence_stage is not None:
            decisive = [found | more for found, more in zip(decisive, self.evidence_stage.evidence(inputs), strict=True)]
        return [found | {methods[j]: {"value": round(float(row[j]), 6), "score": round(float(row[j]), 6)}
                         for j in np.argsort(-row, kind="stable")[:3]} for found, row in zip(decisive, scores, strict=True)]

    def refit_identity(self) -> dict:
        """What a refit takes from this model: its name, version and the card's settings (by sha256 of the card)."""
        card = json.dumps(self.card, sort_keys=True).encode()
        return {"name": self.name, "version": self.version, "card_sha256": hashlib.sha256(card).hexdigest()}

    def refit(self, data: CorpusFeatures, train: np.ndarray, *, seed: int, target_fpr: float,
              exclude_categories: tuple[str, ...] = (), drop_streams: tuple[str, ...] = ()) -> FittedV4:
        """The recipe with the card's settings fitted on ``train`` (a grouped 25% of its covers stops the boosting and
        chooses the threshold)."""
        names = [n for n in self.card["feature_names"] if n.split(".", 1)[0] not in set(drop_streams)]
        features = model_input(data.features, model_columns(names))
        labels = class_labels(data)
        groups = np.asarray([e.cover_id for e in data.entries])
        fit, val = grouped_holdout(train, groups, seed)
        never_fit = data.in_categories(exclude_categories)
        fit = fit[~never_fit[fit]]
        params = _refit_params(self.card)
        model, threshold = fit_v4(features, labels, fit, val, params, target_fpr, names=names)
        if int(params.get("threshold_folds", 0)) >= 2:
            threshold = crossfit_threshold(features, labels, groups, train, params, target_fpr, names=names,
                                           folds=int(params["threshold_folds"]), seed=seed, never_fit=never_fit)[0]
        fitted = FittedV4(model, names, threshold, name=self.name, version=self.version)
        fitted.training_cover_ids = frozenset(groups[train].tolist())
        return fitted


class FittedV4(StreamFeatureDetector):
    """V4's recipe fitted in memory (cross-validation, ablations): LightGBM scores, no ONNX export."""

    trainable = True

    def __init__(self, model: V4Model, names: list[str], threshold: float, *, name: str = NAME, version: str = "4.0") -> None:
        self.model = model
        self.name, self.version, self.threshold = name, version, threshold
        self.classes = list(model.classes_)
        self.streams = tuple(dict.fromkeys(n.split(".", 1)[0] for n in names))
        self._names = names
        self._columns = model_columns(names)

    def score_features(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
        return self.model.scores(model_input(features, self._columns))

    def refit(self, data: CorpusFeatures, train: np.ndarray, **kwargs) -> FittedV4:
        raise NotImplementedError("refit the ONNX-backed V4Detector this model came from")


def training_log(model: V4Model) -> list[dict]:
    """One record per boosting iteration: the loss of the families together, each family's, and the validation AUC.

    ``train_loss`` / ``val_loss`` are the multi-class log loss over all
    fitting / validation files with each family's model at that iteration
    (at its last one once it has stopped): the row-weighted mean of the
    families' losses, which are also given (``spatial_train_loss`` ...).
    A metadata model's own losses are given beside them (``metadata_train_loss`` ...), not in the mean.
    ``val_auc`` is clean against stego on the validation part (the family models' P(clean));
    ``elapsed_seconds`` the fitting time of all families up to that iteration.
    """
    from sklearn.metrics import roc_auc_score

    fitted = {name: part for name, part in model.families.items() if part.model is not None}
    metadata = model.metadata if model.metadata is not None and model.metadata.model is not None else None
    steps = max((part.iterations_run for part in [*fitted.values(), *([metadata] if metadata else [])]), default=0)
    lines = []
    for step in range(1, steps + 1):
        line: dict = {"step": step}
        totals: dict[str, list[float]] = {"train": [0.0, 0.0], "val": [0.0, 0.0]}
        clean_probability, is_stego, elapsed = [], [], 0.0
        for name, part in fitted.items():
            at = min(step, part.iterations_run) - 1
            history = part.history
            elapsed += history["seconds"][at]
            for kind in ("train", "val"):
                losses = history[f"{kind}_loss"]
                if losses:
                    weight = part.rows["fit"] if kind == "train" else len(history["val_labels"])
                    line[f"{name}_{kind}_loss"] = round(float(losses[at]), 6)
                    totals[kind][0] += weight * losses[at]
                    totals[kind][1] += weight
            if history["val_clean_probability"]:
                clean_probability.append(history["val_clean_probability"][at])
                is_stego.append(history["val_labels"] != "clean")
        for kind, (total, weight) in totals.items():
            line[f"{kind}_loss"] = round(float(total / weight), 6) if weight else None
        if metadata is not None:  # its own loss beside the families' (its clean files are theirs too: not in the mean)
            at = min(step, metadata.iterations_run) - 1
            for kind in ("train", "val"):
                losses = metadata.history[f"{kind}_loss"]
                if losses:
                    line[f"metadata_{kind}_loss"] = round(float(losses[at]), 6)
        stego = np.concatenate(is_stego) if is_stego else np.zeros(0, dtype=bool)
        line["val_auc"] = (round(float(roc_auc_score(stego, 1 - np.concatenate(clean_probability))), 6)
                           if 0 < stego.sum() < stego.size else None)
        line["elapsed_seconds"] = round(elapsed, 3)
        lines.append(line)
    return lines


def metadata_card(model: V4Model) -> dict | None:
    """What the card says of the metadata model (None without one): the methods it alone scores and what it reads."""
    if model.metadata is None:
        return None
    return {"methods": model.metadata_methods, "classes": model.metadata.classes, "streams": list(METADATA_STREAMS),
            "rule": "eoi and exif files are learned by this model only, from the meta stream of every file (JPEG or "
                    "not), unweighted; the family models never see them; score = the largest of the family model's "
                    "1 - P(clean) and this model's P(method)"}


def train_v4(data: CorpusFeatures, split: dict, config: TrainConfig, provenance: dict, out: Path) -> dict:
    """Fit V4 on the training part, stop and choose the threshold on the validation part, export to ONNX, write the card."""
    streams = tuple(s for s in STREAMS if s not in set(config.drop_streams))
    names = feature_names(streams)
    features = model_input(data.features, model_columns(names))
    labels = class_labels(data)
    train_idx, val_idx, test_idx = split["train"], split["val"], split["test"]
    params = recipe_params(config)

    model, threshold = fit_v4(features, labels, train_idx, val_idx, params, config.target_fpr, names=names)
    log_lines = training_log(model)
    n_clean_val = int((labels[val_idx] == "clean").sum())
    chosen_on = ("clean files of the validation part (cover_id-grouped): the smallest threshold whose false-positive "
                 "rate there is at most the target")
    if config.threshold_folds >= 2:
        rows = np.concatenate([train_idx, val_idx])
        threshold, crossfit_scores, _ = crossfit_threshold(features, labels, data.groups, rows, params, config.target_fpr,
                                                           names=names, folds=config.threshold_folds, seed=config.seed,
                                                           never_fit=data.in_categories(config.exclude_categories))
        highest = highest_clean(data, rows, crossfit_scores, labels)
        n_clean_val = int((labels[rows] == "clean").sum())
        chosen_on = (f"cross-fitted scores of every clean file of the training and validation parts "
                     f"({config.threshold_folds} cover_id-grouped inner folds, each scored by the recipe fitted on the "
                     f"others): the smallest threshold whose false-positive rate there is at most the target")
    else:
        highest = highest_clean(data, val_idx, model.scores(features[val_idx])[0], labels)

    onnx_bytes = to_onnx(model, len(names) + 1)
    onnx_sha = hashlib.sha256(onnx_bytes).hexdigest()
    parity = onnx_parity(onnx_bytes, model, features[val_idx])

    fitted = FittedV4(model, names, threshold)
    test_scores, test_method_scores, methods = fitted.score_features(data.features[test_idx])
    predicted = [methods[int(np.argmax(row))] for row in test_method_scores]
    final = log_lines[-1] if log_lines else {}
    card = {
        "name": NAME, "version": f"4.2+{onnx_sha[:8]}", "kind": "v4",
        "onnx_sha256": onnx_sha,
        "onnx_size_bytes": len(onnx_bytes),
        "classes": model.classes_,
        "streams": list(streams),
        "feature_names": names,
        "route_feature": ROUTE_FEATURE,
        "families": {family: {"skipped_streams": list(skipped), "classes": model.families[family].classes}
                     for family, skipped in FAMILIES.items()},
        "hyperparameters": {"estimator": ESTIMATOR, **params, **FIXED_PARAMS},
        "early_stopping": model.early_stopping(),
        "threshold": {"value": threshold, "target_fpr": config.target_fpr, "chosen_on": chosen_on,
                      "n_clean": n_clean_val,
                      "smallest_resolvable_fpr": 1 / n_clean_val if n_clean_val else None,
                      # The clean files the threshold was chosen on that scored highest: the ones holding it up.
                      "highest_clean": highest},
        "metadata_model": metadata_card(model),
        "metadata_evidence": model.evidence.to_card() if model.evidence is not None else None,
        "method_models": {"joined": model.method_keys, "candidates": model.method_selection,
                          "rule": "a method model joins where it adds validation detections and every validation clean "
                                  "file of its family scores below the multi-class model's threshold for twice the "
                                  "target rate"},
        "decisive_statistics": _decisive_record(model.decisive, features, labels, train_idx, val_idx, config),
        "validation": {"n_files": int(val_idx.size), "final_val_loss": final.get("val_loss"),
                       "final_val_auc": final.get("val_auc"),
                       "note": "the log runs past each family's best iteration by up to stopping_rounds; the model keeps "
                               "each family's best iteration (early_stopping)"},
        "onnx_parity_max_abs_diff": parity,
        "held_out": quality([data.entries[i] for i in test_idx], test_scores, threshold, predicted),
        **provenance,
    }
    write_bytes_atomic(out / "model.onnx", onnx_bytes)
    write_text_atomic(out / "training_log.jsonl", "".join(json.dumps(line) + "\n" for line in log_lines))
    write_text_atomic(out / "model_card.json", json.dumps(card, indent=2, sort_keys=True) + "\n")
    return card


def _decisive_record(stage: DecisiveStage | None, features: np.ndarray, labels: np.ndarray, fit: np.ndarray,
                     val: np.ndarray, config: TrainConfig) -> dict | None:
    """The card's record of the decisive stage, with how many validation clean files it decides (none, as a rule)."""
    n_clean = int((labels[fit] == "clean").sum())
    if stage is None:
        return None if config.decisive_fraction <= 0 else {
            "level": None, "reason": f"not fitted: {n_clean} clean fitting files, fewer than 1 / target_fpr "
                                     f"({1 / config.target_fpr:.0f}), put the largest short of the target quantile"}
    val_clean = val[labels[val] == "clean"]
    return stage.to_card(n_clean) | {
        "validation_clean_decided": int((stage.scores(features[val_clean]) > 0).any(axis=1).sum()),
        "validation_clean_files": int(val_clean.size)}


def _family_onnx(part: FamilyModel, n_features: int):
    """One family's model as ONNX (input ``features`` of the family's columns, outputs label and probabilities)."""
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    return convert_lightgbm(part.model, initial_types=[("features", FloatTensorType([None, n_features]))],
                            zipmap=False, target_opset=ONNX_OPSET)


def to_onnx(model: V4Model, n_features: int) -> bytes:
    """The fitted :class:`V4Model` as one ONNX graph: input ``features`` (n, ``n_features``: the model's columns, then
    the route column), outputs ``label`` (int64 index into the classes) and ``probabilities`` (n, classes), no ZipMap.

    Each family's LightGBM model reads its columns (Gather); its probabilities
    are placed in the union's columns (a 0/1 MatMul); the route column picks a
    row's family (Where). A metadata model's P(method) are placed the same way
    and added, for every row (the family models have no such columns). With method models, a third output ``method_stego``
    (n, method models) holds each one's P(stego), in :attr:`V4Model.method_keys`
    order, placed and routed the same way (0 on the other family's rows).
    """
    import onnx
    from onnx import TensorProto, compose, helper, numpy_helper

    nodes, initializers, opsets = [], [], {"": ONNX_OPSET}

    def embed(part: FamilyModel, prefix: str) -> str:
        """Add ``part``'s LightGBM graph reading its columns; the name of its probabilities (n, its classes)."""
        sub = compose.add_prefix(_family_onnx(part, len(part.columns)), prefix=prefix)
        for opset in sub.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
        initializers.append(numpy_helper.from_array(part.columns.astype(np.int64), f"{prefix}columns"))
        nodes.append(helper.make_node("Gather", ["features", f"{prefix}columns"], [sub.graph.input[0].name], axis=1))
        probabilities = sub.graph.output[1].name
        # Only the nodes the probabilities need (onnxmltools' label output is not read), in their order.
        needed, kept = {probabilities}, []
        for node in reversed(sub.graph.node):
            if needed.intersection(node.output):
                kept.append(node)
                needed.update(node.input)
        nodes.extend(reversed(kept))
        initializers.extend(i for i in sub.graph.initializer if i.name in needed)
        return probabilities
    union = {}
    for name, part in model.families.items():
        placement = np.zeros((len(part.classes), len(model.classes_)), dtype=np.float32)
        for i, c in enumerate(part.classes):
            placement[i, model.classes_.index(c)] = 1
        initializers.append(numpy_helper.from_array(placement, f"{name}_placement"))
        if part.model is None:  # constant: ones (n, 1) times the placed constant row
            initializers.append(numpy_helper.from_array(part.constant.astype(np.float32)[None, :], f"{name}_constant"))
            nodes += [helper.make_node("Gather", ["features", "route_column"], [f"{name}_any"], axis=1),
                      helper.make_node("Unsqueeze", [f"{name}_any", "axis_1"], [f"{name}_column"]),
                      helper.make_node("Mul", [f"{name}_column", "zero"], [f"{name}_zeros"]),
                      helper.make_node("Add", [f"{name}_zeros", "one"], [f"{name}_ones"]),
                      helper.make_node("MatMul", [f"{name}_ones", f"{name}_constant"], [f"{name}_own"])]
        else:
            nodes.append(helper.make_node("Identity", [embed(part, f"{name}_")], [f"{name}_own"]))
        nodes.append(helper.make_node("MatMul", [f"{name}_own", f"{name}_placement"], [f"{name}_union"]))
        union[name] = f"{name}_union"
    keys = model.method_keys
    for name in model.families if keys else ():  # the method models: (n, len(keys)) P(stego), each in its own column
        own = [(j, part) for j, part in enumerate(model.method_models) if part.family == name]
        placement = np.zeros((max(len(own), 1), len(keys)), dtype=np.float32)
        columns = []
        for i, (j, part) in enumerate(own):
            prefix = f"{name}_method{i}_"
            initializers.append(numpy_helper.from_array(np.asarray([part.classes.index(part.method)], dtype=np.int64),
                                                        f"{prefix}stego_class"))
            nodes.append(helper.make_node("Gather", [embed(part, prefix), f"{prefix}stego_class"], [f"{prefix}stego"],
                                          axis=1))
            columns.append(f"{prefix}stego")
            placement[i, j] = 1
        if not columns:  # no method model of this family: a zero column (the route column times 0)
            nodes += [helper.make_node("Gather", ["features", "route_column"], [f"{name}_methods_any"], axis=1),
                      helper.make_node("Unsqueeze", [f"{name}_methods_any", "axis_1"], [f"{name}_methods_route"]),
                      helper.make_node("Mul", [f"{name}_methods_route", "zero"], [f"{name}_methods_own"])]
        else:
            nodes.append(helper.make_node("Concat", columns, [f"{name}_methods_own"], axis=1))
        initializers.append(numpy_helper.from_array(placement, f"{name}_methods_placement"))
        nodes.append(helper.make_node("MatMul", [f"{name}_methods_own", f"{name}_methods_placement"],
                                      [f"{name}_methods"]))
    initializers += [numpy_helper.from_array(np.asarray(n_features - 1, dtype=np.int64), "route_column"),
                     numpy_helper.from_array(np.asarray([1], dtype=np.int64), "axis_1"),
                     numpy_helper.from_array(np.asarray(0.5, dtype=np.float32), "half")]
    used = {name for node in nodes for name in node.input}  # an unused initializer makes onnxruntime warn on every load
    initializers += [numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)
                     for name, value in (("zero", 0.0), ("one", 1.0)) if name in used]
    routed = "routed_probabilities" if model.metadata is not None else "probabilities"
    nodes += [helper.make_node("Gather", ["features", "route_column"], ["route"], axis=1),
              helper.make_node("Greater", ["route", "half"], ["is_jpeg"]),
              helper.make_node("Unsqueeze", ["is_jpeg", "axis_1"], ["is_jpeg_column"]),
              helper.make_node("Where", ["is_jpeg_column", union["jpeg"], union["spatial"]], [routed])]
    if model.metadata is not None:  # every row: the metadata model's P(method) into its methods' columns (not clean's)
        placement = np.zeros((len(model.metadata.classes), len(model.classes_)), dtype=np.float32)
        for method in model.metadata_methods:
            placement[model.metadata.classes.index(method), model.classes_.index(method)] = 1
        initializers.append(numpy_helper.from_array(placement, "metadata_placement"))
        nodes += [helper.make_node("MatMul", [embed(model.metadata, "metadata_"), "metadata_placement"],
                                   ["metadata_union"]),
                  helper.make_node("Add", [routed, "metadata_union"], ["probabilities"])]
    nodes.append(helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0))
    outputs = [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
               helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, len(model.classes_)])]
    if keys:
        nodes.append(helper.make_node("Where", ["is_jpeg_column", "jpeg_methods", "spatial_methods"], ["method_stego"]))
        outputs.append(helper.make_tensor_value_info("method_stego", TensorProto.FLOAT, [None, len(keys)]))
    graph = helper.make_graph(
        nodes, "stegwatch_v4", [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n_features])],
        outputs, initializers)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
                                   producer_name="stegwatch")
    onnx_model.ir_version = min(onnx_model.ir_version, 8)  # what onnxruntime releases since 1.14 read
    onnx.checker.check_model(onnx_model)
    return onnx_model.SerializeToString()


def onnx_parity(onnx_bytes: bytes, model, features: np.ndarray) -> float:
    """Largest absolute difference between ONNX and in-memory probabilities (both outputs) on ``features``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    if not len(features):
        return 0.0
    outputs = session.run(None, {session.get_inputs()[0].name: features.astype(np.float32)})
    differences = [np.max(np.abs(outputs[1] - model.predict_proba(features)))]
    if len(outputs) > 2:  # the method models' P(stego)
        differences.append(np.max(np.abs(outputs[2] - model.method_stego(features))))
    return float(max(differences))


KIND = DetectorKind(
    key="v4",
    description="learned multi-stream model (LightGBM per format family, rich features) run through ONNX",
    load=lambda path, threshold: V4Detector.load(path, threshold),
    shipped=Path(__file__).parent / "models" / "v4" / "model.onnx",
    model_file="model.onnx",
    train=train_v4,
)
