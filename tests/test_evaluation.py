"""Evaluation engine: exact intervals, metrics, grouped folds, evaluate, fp-regression."""

import json

import jsonschema
import numpy as np
import pytest
from typer.testing import CliRunner

from stegwatch.cli import app
from stegwatch.features.corpus import load_corpus_features
from stegwatch.evaluation.evaluate import evaluate, fold_assignment
from stegwatch.evaluation.metrics import by_key, confusion, container_of, detection_at_fpr, key_and_peers, md5, p_e
from stegwatch.stats import clopper_pearson, n_needed_zero_failures, rate_record, roc_auc, upper_bound
from stegwatch.evaluation.schema import Metrics
from stegwatch.format.records import json_schema_of

runner = CliRunner()


def test_zero_of_5990_bounds_the_rate_just_under_five_in_ten_thousand():
    bound = upper_bound(0, 5990)
    assert 0.000499 < bound < 0.0005
    assert upper_bound(0, 5989) > 0.0005
    assert n_needed_zero_failures(0.0005) == 5990
    assert 29_000 < n_needed_zero_failures(0.0001) < 31_000


def test_clopper_pearson_known_values():
    # Reference values of the exact interval (beta quantiles).
    low, high = clopper_pearson(5, 10)
    assert low == pytest.approx(0.187086, abs=1e-6) and high == pytest.approx(0.812914, abs=1e-6)
    assert clopper_pearson(0, 10) == (0.0, pytest.approx(0.308497, abs=1e-6))
    assert clopper_pearson(10, 10) == (pytest.approx(0.691503, abs=1e-6), 1.0)
    assert clopper_pearson(0, 0) == (0.0, 1.0)
    record = rate_record(3, 3172)
    assert record["ci_low"] < record["rate"] < record["ci_high"] and record["upper_bound"] < record["ci_high"]


def test_metric_functions_on_constructed_scores():
    clean = np.linspace(0.0, 0.5, 100)
    stego = np.linspace(0.4, 1.0, 100)
    labels = np.r_[np.zeros(100, bool), np.ones(100, bool)]
    scores = np.r_[clean, stego]
    assert roc_auc(labels, scores) > 0.95
    assert 0 < p_e(labels, scores) < 0.1
    assert md5(labels, scores) < 0.2
    perfect = np.r_[np.zeros(100), np.ones(100)]
    assert roc_auc(labels, perfect) == 1.0 and p_e(labels, perfect) == 0.0 and md5(labels, perfect) == 0.0
    at = detection_at_fpr(clean, stego, 0.05)
    assert at["false_positive_rate"]["rate"] <= 0.05 and at["resolvable"]
    assert not detection_at_fpr(clean, stego, 0.0005)["resolvable"]
    matrix = confusion(["a", "a", "b"], ["a", "b", "b"])
    assert matrix == {"labels": ["a", "b"], "matrix": [[1, 1], [0, 1]]}


def test_per_method_statistics_compare_a_method_with_the_clean_files_of_its_containers():
    # A "detector" that only knows the container: JPEGs score 0.6, PNGs 0.1; it sees no embedding at all.
    containers = np.asarray(["JPEG/L"] * 50 + ["PNG/RGB"] * 150 + ["JPEG/L"] * 40 + ["PNG/RGB"] * 40, dtype=object)
    stego = np.asarray([False] * 200 + [True] * 80)
    keys = np.asarray([""] * 200 + ["jsteg"] * 40 + ["lsb.rgb"] * 40, dtype=object)
    scores = np.where(containers == "JPEG/L", 0.6, 0.1)
    assert by_key(p_e, stego, scores, keys)["jsteg"] < 0.2  # against every clean file the container looks like evidence
    matched = by_key(p_e, stego, scores, keys, containers)
    assert matched == {"jsteg": 0.5, "lsb.rgb": 0.5}  # against its own containers' clean files it is chance
    rows = dict(key_and_peers(stego, keys, containers))
    assert rows["jsteg"].sum() == 90 and not (rows["jsteg"] & (containers == "PNG/RGB")).any()

    class Entry:
        format, mode = "PNG", "RGBA"

    assert container_of(Entry()) == "PNG/RGBA" and container_of(object()) == "None/None"


def test_fold_assignment_never_splits_a_cover(smoke_corpus):
    data = load_corpus_features(smoke_corpus)
    for folds in (2, 3, 5):
        assignment = fold_assignment(data, folds, seed=1)
        assert set(assignment.tolist()) == set(range(folds))
        fold_of = {}
        for entry, fold in zip(data.entries, assignment, strict=True):
            assert fold_of.setdefault(entry.cover_id, fold) == fold


@pytest.mark.parametrize("model", ["v3", "v4"])
def test_evaluate_writes_schema_valid_metrics(smoke_corpus, model):
    metrics = evaluate(model, smoke_corpus, folds=2, latency_sample=10, command="test")
    jsonschema.validate(metrics, json_schema_of(Metrics))
    assert metrics["cross_validation"]["trained_per_fold"] is True  # V3 is recalibrated per fold like V4
    assert len(metrics["cross_validation"]["per_fold"]) == 2
    assert metrics["run"]["corpus"]["manifest_sha256"] and metrics["run"]["model"]["sha256"]
    fpr = metrics["false_positive_rate"]
    assert fpr["n"] == sum(r["n"] for r in metrics["false_positive_rate_by_category"].values())
    assert metrics["detection_rate"]["n"] == sum(r["n"] for r in metrics["detection_rate_by_method"].values())
    # Every stego file is counted once more by its cover's category, read from its sidecar.
    by_cover = metrics["detection_rate_by_cover_category"]
    assert metrics["detection_rate"]["n"] == sum(r["n"] for r in by_cover.values())
    assert not [k for k in by_cover if k.endswith(" on unknown")] and any(k.endswith(" on photo") for k in by_cover)
    for method, record in metrics["detection_rate_by_method"].items():
        assert record["count"] == sum(r["count"] for k, r in by_cover.items() if k.split(" on ")[0] == method)
    assert metrics["latency"]["n"] == 10 and metrics["latency"]["per_image_ms"]["p50"] > 0


def test_a_stego_file_without_its_sidecar_has_an_unknown_cover(corpus_copy):
    from stegwatch.evaluation.evaluate import cover_categories
    from stegwatch.format.manifest import read_manifest, sidecar_path

    entries = read_manifest(corpus_copy).entries
    stego = [i for i, e in enumerate(entries) if e.label == "stego"]
    sidecar_path(corpus_copy / entries[stego[0]].file_path).unlink()
    sidecar_path(corpus_copy / entries[stego[1]].file_path).write_text("{not json")
    found = cover_categories(entries, corpus_copy)
    assert found[stego[0]] == found[stego[1]] == "unknown"
    assert all(found[i] not in ("", "unknown") for i in stego[2:]) and all(found[i] == "" for i, e in enumerate(entries)
                                                                              if e.label == "clean")
    assert cover_categories(entries, None)[stego[2]] == "unknown"  # a labelled CSV has no sidecars


def test_unreadable_files_are_counted_apart(corpus_copy):
    from stegwatch.format.manifest import read_manifest

    entries = read_manifest(corpus_copy).entries
    (corpus_copy / entries[0].file_path).write_bytes(b"")
    metrics = evaluate("v3", corpus_copy, latency_sample=0)
    assert metrics["unreadable"] == 1 and entries[0].file_path in metrics["unreadable_files"][0]["path"]
    # Files from the shipped model's training covers are left out and counted apart too.
    excluded = metrics["excluded_in_sample"]["files"]
    assert metrics["false_positive_rate"]["n"] + metrics["detection_rate"]["n"] + excluded == len(entries) - 1


def test_evaluate_cli_writes_metrics_json(smoke_corpus, tmp_path):
    result = runner.invoke(app, ["evaluate", "--model", "v3", "--corpus", str(smoke_corpus), "--out", str(tmp_path),
                                 "--latency-sample", "5", "--workers", "1"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["run"]["command"] == ""  # in-process: no command line of stegwatch's own to record
    schema = json.loads(runner.invoke(app, ["schema", "metrics"]).stdout)
    jsonschema.validate(metrics, schema)


def test_fp_regression_fails_on_a_new_false_positive(smoke_corpus, tmp_path):
    baseline = tmp_path / "fp-baseline.json"
    first = runner.invoke(app, ["fp-regression", "--model", "v4", "--corpus", str(smoke_corpus), "--baseline", str(baseline),
                                "--update-baseline", "--limit", "1", "--json", "--workers", "1"])
    assert first.exit_code == 0, first.output
    stored = json.loads(baseline.read_text())
    # The same model again: nothing new.
    again = runner.invoke(app, ["fp-regression", "--model", "v4", "--corpus", str(smoke_corpus), "--baseline", str(baseline),
                                "--limit", "1", "--json", "--workers", "1"])
    assert again.exit_code == 0 and json.loads(again.stdout)["changes"]["new"] == []
    # A lower threshold is a real regression: clean files that were below it are flagged now.
    worse = runner.invoke(app, ["fp-regression", "--model", "v4", "--corpus", str(smoke_corpus), "--baseline", str(baseline),
                                "--threshold", "0.01", "--limit", "1", "--json", "--workers", "1"])
    assert worse.exit_code == 1
    report = json.loads(worse.stdout)
    assert report["changes"]["new"] and "new false positive" in report["reasons"][0]
    assert len(report["false_positives"]) > len(stored["false_positives"])
    assert all(r["category"] and "score" in r for r in report["false_positives"])


def test_fp_regression_fails_when_the_upper_bound_is_over_the_limit(smoke_corpus):
    result = runner.invoke(app, ["fp-regression", "--model", "v3", "--corpus", str(smoke_corpus), "--json", "--workers", "1"])
    report = json.loads(result.stdout)
    # 152 clean files cannot bound the FPR under 0.05%, whatever the detector does.
    assert report["false_positive_rate"]["upper_bound"] > 0.0005
    assert result.exit_code == 1 and "upper bound" in report["reasons"][-1]


def test_md5_reads_every_roc_point_when_scores_are_tied():
    """sklearn's thinned ROC can drop the best point at or below 5% FPR; MD5 must not come out too high."""
    from stegwatch.evaluation.metrics import md5

    scores = np.repeat(np.linspace(1, 0, 40), 2)
    labels = np.tile([0, 1], 40)
    assert md5(labels, scores) == pytest.approx(0.95)


def test_a_method_without_clean_peers_gets_no_roc_curve_and_no_nan():
    import json

    from stegwatch.evaluation.evaluate import roc_curves

    labels = np.array([1, 1, 1, 0, 0])
    scores = np.array([0.9, 0.8, 0.3, 0.2, 0.1])
    methods = np.array(["alpha", "alpha", "jsteg", "", ""])
    containers = np.array(["PNG", "PNG", "JPEG", "PNG", "PNG"])
    curves = roc_curves(labels, scores, methods, containers=containers)
    assert set(curves) == {"alpha"}  # jsteg's JPEG has no clean JPEG beside it
    json.dumps(curves, allow_nan=False)
