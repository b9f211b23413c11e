"""A third detector, registered from this test module alone, runs through scan, evaluate --folds and baseline.

Nothing in the library names it: this is the proof that the registry and the
detector protocol are all evaluation code needs (issue 13).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from stegwatch.cli import app, expand_models
from stegwatch.detectors import KINDS, Detector, DetectorKind, register
from stegwatch.detectors.base import StreamFeatureDetector
from stegwatch.features.streams import STREAMS, feature_names
from stegwatch.stats import threshold_for_fpr

runner = CliRunner()
FEATURE = "lsb.chi2_prefix"


class ToyDetector(StreamFeatureDetector):
    """Flags a file when one LSB statistic is high; "training" sets the threshold on clean rows."""

    name = "toy-detector"
    version = "0.1"
    trainable = True
    streams = ("lsb",)

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self._column = feature_names(STREAMS).index(FEATURE)

    def score_features(self, features):
        value = np.asarray(features[:, self._column], dtype=float)
        score = 1.0 - np.exp(-np.maximum(value, 0.0))
        return score, score[:, None], ["lsb.rgb"]

    def refit(self, data, train, *, seed, target_fpr, exclude_categories=(), drop_streams=()):
        clean = [i for i in train if data.entries[i].label == "clean" and data.entries[i].category not in exclude_categories]
        scores = self.score_features(data.features[clean])[0]
        return ToyDetector(threshold_for_fpr(scores, target_fpr))


@pytest.fixture
def toy_kind():
    kind = register(DetectorKind(key="toy", description="a test detector", load=lambda path, threshold: ToyDetector(threshold or 0.5)))
    yield kind
    KINDS.pop("toy")


def test_toy_detector_follows_the_protocol(toy_kind):
    assert isinstance(ToyDetector(), Detector)


def test_scan_evaluate_and_baseline_run_a_registered_third_detector(toy_kind, smoke_corpus, tmp_path):
    scanned = runner.invoke(app, ["scan", str(smoke_corpus / "stego"), "--model", "toy", "--jsonl", "--no-cache"])
    assert scanned.exit_code == 0, scanned.output
    records = [json.loads(line) for line in scanned.stdout.splitlines() if line.startswith("{")]
    assert records and all(r["model"]["name"] == "toy-detector" for r in records)
    assert {r["is_stego"] for r in records} == {True, False}  # real scores, not a constant

    evaluated = runner.invoke(app, ["evaluate", "--model", "toy", "--corpus", str(smoke_corpus), "--folds", "2",
                                    "--latency-sample", "0", "--out", str(tmp_path / "eval")])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["run"]["model"] == {"name": "toy-detector", "version": "0.1", "path": None, "sha256": None}
    folds = metrics["cross_validation"]
    assert folds["trained_per_fold"] is True and len(folds["per_fold"]) == 2
    # each fold's threshold was chosen by the toy's own refit, on that fold's training part
    assert all(fold["threshold"] != 0.5 for fold in folds["per_fold"])

    report = tmp_path / "report" / "baseline_report.md"
    result = runner.invoke(app, expand_models(["baseline", "--models", "v3", "toy", "--corpus", str(smoke_corpus),
                                               "--folds", "2", "--out", str(report)]))
    assert result.exit_code == 0, result.output
    saved = json.loads(report.with_suffix(".json").read_text())
    assert "toy-detector 0.1" in saved["results"]
    assert saved["comparisons"][0]["to"] == "toy-detector 0.1"
    assert "toy-detector 0.1" in report.read_text()


def test_an_unknown_model_is_a_one_line_error(smoke_corpus):
    result = runner.invoke(app, ["scan", str(smoke_corpus), "--model", "nope"])
    assert result.exit_code == 2
    assert "unknown model 'nope'" in result.output
