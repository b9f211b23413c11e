#!/usr/bin/env python3
"""V4's classifier against a strongly regularized linear model, on the same grouped folds.

Usage: python benchmarks/v4_classifiers.py [--corpus build/default-corpus] [--folds 3] [--seed 0]
       [--logistic-c 0.01] [--workers 2] [--out FILE.json]

Both candidates see the same feature rows (every stream, the rich ones
included), the same folds as ``stegwatch evaluate --folds`` (StratifiedGroupKFold
by ``cover_id``) and, inside each fold, the same grouped validation part
(25% of the training covers), where each chooses its threshold for a 0.05%
false-positive rate and decides the held-out fold at it:

- ``lightgbm``: :func:`stegwatch.detectors.v4.fit_v4`, the shipped recipe
  (a LightGBM model per format family, early-stopped on the validation loss);
- ``logistic``: scikit-learn's ``LogisticRegression`` (L2, ``C`` given) on
  standardized features, one per format family like V4 (JPEG files read DCTR,
  the others do not), exportable with skl2onnx.

Prints, and writes with ``--out``, out-of-fold AUC (each method against all
clean files) and detection at each fold's own threshold, per method, with
each candidate's fitting time. Every number is a measurement of this run on
this machine; nothing here is a unit test.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np


def _logistic(features, labels, fit, val, target_fpr, *, names, c):
    """One standardized, L2-regularized logistic regression per format family; scores 1 - P(clean) and a threshold."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from stegwatch.detectors.v4 import FAMILIES, V4Model
    from stegwatch.stats import threshold_for_fpr

    streams = np.asarray([n.split(".", 1)[0] for n in names])
    jpeg = V4Model.family_of(features)
    models = {}
    for family, skipped in FAMILIES.items():
        columns = np.flatnonzero(~np.isin(streams, skipped))
        rows = fit[jpeg[fit] == (family == "jpeg")]
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000, tol=1e-4))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lbfgs may stop at max_iter on the widest family
            model.fit(features[np.ix_(rows, columns)], labels[rows])
        models[family] = (model, columns)

    def score(rows):
        out = np.zeros(rows.size)
        for family, (model, columns) in models.items():
            part = jpeg[rows] == (family == "jpeg")
            if part.any():
                proba = model.predict_proba(features[np.ix_(rows[part], columns)])
                out[part] = 1 - proba[:, list(model.classes_).index("clean")]
        return out

    return score, threshold_for_fpr(score(val[labels[val] == "clean"]), target_fpr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default="build/default-corpus")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--logistic-c", type=float, default=0.01)
    parser.add_argument("--target-fpr", type=float, default=0.0005)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from sklearn.model_selection import GroupShuffleSplit

    from stegwatch.detectors.train import TrainConfig
    from stegwatch.detectors.v4 import class_labels, fit_v4, model_columns, model_input, recipe_params
    from stegwatch.evaluation.folds import fold_assignment
    from stegwatch.features.corpus import load_corpus_features
    from stegwatch.features.streams import feature_names
    from stegwatch.stats import roc_auc

    data = load_corpus_features(args.corpus, workers=args.workers)
    names = feature_names()
    features = model_input(data.features, model_columns(names))
    labels = class_labels(data)
    groups = data.groups
    assignment = fold_assignment(data, args.folds, args.seed)
    params = recipe_params(TrainConfig(seed=0))
    results = {}
    for candidate in ("lightgbm", "logistic"):
        scores, flags, seconds = np.zeros(len(labels)), np.zeros(len(labels), dtype=bool), 0.0
        for fold in range(args.folds):
            train, test = np.flatnonzero(assignment != fold), np.flatnonzero(assignment == fold)
            # The validation part V4Detector.refit draws: grouped, 25% of the training covers, seeded per fold.
            fit, val = next(GroupShuffleSplit(n_splits=1, test_size=0.25, random_state=args.seed + fold)
                            .split(train, groups=groups[train]))
            fit, val = train[fit], train[val]
            started = time.perf_counter()
            if candidate == "lightgbm":
                model, threshold = fit_v4(features, labels, fit, val, params, args.target_fpr, names=names)
                fold_scores = model.scores(features[test])[0]  # calibrated: each family's threshold maps to threshold
            else:
                score, threshold = _logistic(features, labels, fit, val, args.target_fpr, names=names, c=args.logistic_c)
                fold_scores = score(test)
            seconds += time.perf_counter() - started
            scores[test], flags[test] = fold_scores, fold_scores >= threshold
        clean = labels == "clean"
        results[candidate] = {
            "fit_seconds": round(seconds, 1),
            "auc": roc_auc(~clean, scores),
            "false_positive_rate": float(flags[clean].mean()),
            "by_method": {m: {"auc": roc_auc(labels[clean | (labels == m)] == m, scores[clean | (labels == m)]),
                              "detection": float(flags[labels == m].mean())}
                          for m in sorted(set(labels) - {"clean"})},
        }
    report = {"corpus": str(args.corpus), "files": len(labels), "folds": args.folds, "seed": args.seed,
              "logistic_c": args.logistic_c, "target_fpr": args.target_fpr, "results": results}
    print(f"{'method':10} " + " ".join(f"{c + ' AUC':>14} {c + ' det':>14}" for c in results))
    for method in results["lightgbm"]["by_method"]:
        cells = [f"{results[c]['by_method'][method]['auc']:14.4f} {results[c]['by_method'][method]['detection']:14.2%}"
                 for c in results]
        print(f"{method:10} " + " ".join(cells))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
