"""`stegwatch baseline` and `stegwatch ablate` end to end on the smoke corpus."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from stegwatch.cli import app, expand_models
from stegwatch.reports.baseline import paired_bootstrap

runner = CliRunner()

SECTIONS = ("## Overall", "## Significance", "## Method-specific breakdowns", "### Detection per payload",
            "### Method attribution", "## Generalization: leave one cover source out", "## Ablations")


def test_models_take_several_values():
    assert expand_models(["baseline", "--models", "v3", "v4", "x.onnx", "--corpus", "c", "--ablations", "a.json", "b.json"]) == [
        "baseline", "--models", "v3", "--models", "v4", "--models", "x.onnx", "--corpus", "c",
        "--ablations", "a.json", "--ablations", "b.json"]


def test_paired_bootstrap_interval_contains_the_difference():
    files = [f"{i:04d}" for i in range(200)]
    before = {"evaluated": files, "groups": files, "flagged": files[:100]}
    after = {"evaluated": files, "groups": files, "flagged": files[:140]}
    result = paired_bootstrap(before, after, seed=0, reps=500)
    assert result["difference"] == pytest.approx(0.2) and result["ci_low"] < 0.2 < result["ci_high"] and result["ci_low"] > 0


def test_ablate_and_baseline_report_end_to_end(smoke_corpus, tmp_path):
    ablation_file = tmp_path / "ablation_stream.json"
    checkpoints = tmp_path / "refits"
    ablate_args = ["ablate", "--corpus", str(smoke_corpus), "--by", "stream", "--folds", "2", "--only", "dct",
                   "--only", "meta", "--out", str(ablation_file), "--workers", "1", "--checkpoints", str(checkpoints)]
    ablated = runner.invoke(app, ablate_args)
    assert ablated.exit_code == 0, ablated.output
    ablation = json.loads(ablation_file.read_text())
    assert ablation["refits"] == {"directory": str(checkpoints), "kept": True, "fitted": 6, "reused": 0}
    # Run again (a stopped run resumed): every refit is taken from its checkpoint, and every number is the same.
    assert runner.invoke(app, ablate_args).exit_code == 0
    resumed = json.loads(ablation_file.read_text())
    assert resumed["refits"] == {"directory": str(checkpoints), "kept": True, "fitted": 0, "reused": 6}
    assert (resumed["full"], resumed["variants"]) == (ablation["full"], ablation["variants"])
    assert set(ablation["variants"]) == {"dct", "meta"} and ablation["folds"] == 2
    assert "change" in ablation["variants"]["meta"]
    # P_E per method, full and without the stream, and its change (where detection at the threshold cannot move).
    assert set(ablation["variants"]["meta"]["change"]["p_e_by_method"]) <= set(ablation["full"]["p_e_by_method"])
    assert ablation["full"]["p_e_by_method"] and ablation["variants"]["meta"]["change"]["p_e_by_method"]
    category = runner.invoke(app, ["ablate", "--corpus", str(smoke_corpus), "--by", "category", "--folds", "2",
                                   "--only", "noise_lsb", "--out", str(tmp_path / "ablation_category.json"), "--workers", "1"])
    assert category.exit_code == 0, category.output
    # The category left out of training is still measured.
    assert "noise_lsb" in json.loads((tmp_path / "ablation_category.json").read_text())["variants"]["noise_lsb"]["false_positive_rate_by_category"]

    report_file = tmp_path / "report" / "baseline_report.md"
    args = expand_models(["baseline", "--models", "v3", "v4", "--corpus", str(smoke_corpus), "--folds", "2", "--out", str(report_file),
                          "--ablations", str(ablation_file), "--ablations", str(tmp_path / "ablation_category.json"), "--workers", "1",
                          "--latency-sample", "5", "--checkpoints", str(checkpoints)])
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = report_file.read_text()
    for section in SECTIONS:
        assert section in text, section
    assert "against stegwatch-v3" in text and "file-level McNemar p (reference)" in text and "95% interval (cover groups)" in text
    assert "oracle: detection at 0.05% FPR" in text and "thresholds per fold" in text
    assert "Without one stream" in text and "Without one category" in text and "largest P_E rise (method)" in text
    report = json.loads(report_file.with_suffix(".json").read_text())
    assert report["identity"]["corpus"]["manifest_sha256"] in text
    # Feature cost per family, one measurement for both stegwatch columns (no anchor here: no fraction of it).
    cost = report["feature_cost"]["stegwatch"]
    assert cost["errors"] == [] and cost["files_timed"]["spatial"] > 0 and cost["ms_by_family"]["spatial"] > 0
    row = next(line for line in text.splitlines() if line.startswith("| feature cost per JPEG / other file (ms)"))
    assert row.count(f"{cost['ms_by_family']['spatial']:.1f}") == 2 and "of the anchor's" not in text
    for general in report["generalization"].values():  # both models are refitted, so both have per-source readings
        assert general["available"]
        assert set(general["sources"]) <= {"pypi:scikit-image", "pypi:scikit-learn", "pypi:matplotlib", "pypi:PyWavelets"}
    assert (report_file.parent / "roc_alpha.png").read_bytes()[:4] == b"\x89PNG"
    assert report_file.with_suffix(".html").read_text().count("data:image/png;base64,") >= 2
    # V4's fold refits are the ablation's full model's (same folds, seed and rows); its per-source ones are new. V3's
    # recalibrations are not kept.
    v3, v4 = (report["results"][name]["refits"] for name in report["identity"]["evaluation_runs"])
    assert v4["reused"] == 2 and v4["fitted"] >= 1 and not v3["kept"] and v3["reused"] == 0
    # Re-running the same command reproduces the tables (the evaluation is deterministic), V4's refits all reused.
    rerun = runner.invoke(app, args)
    assert rerun.exit_code == 0
    again = json.loads(report_file.with_suffix(".json").read_text())["results"]
    assert [r["refits"]["fitted"] for r in again.values()] == [v3["fitted"], 0]

    def tables(markdown: str) -> list[str]:
        timed = ("latency", "throughput", "feature cost")
        return [line for line in markdown.splitlines() if line.startswith("|") and not any(t in line for t in timed)]

    assert tables(report_file.read_text()) == tables(text)
    # Re-rendering the stored JSON (a template change) reproduces every table, columns in the run's order.
    from stegwatch.reports.baseline import render_report

    render_report(json.loads(report_file.with_suffix(".json").read_text()), tmp_path / "again" / "baseline_report.md")
    assert tables((tmp_path / "again" / "baseline_report.md").read_text()) == tables(text)
    assert np.isfinite(report["comparisons"][0]["comparison"]["false_positive_rate"]["mcnemar"]["p_value"])


def test_a_stored_evaluation_stands_for_its_model_and_one_of_other_settings_is_refused(smoke_corpus, tmp_path):
    """`baseline --evaluations` reuses `evaluate --folds K --by-source` runs: a long report can be made a model at a time."""
    evaluated = runner.invoke(app, ["evaluate", "--model", "v3", "--corpus", str(smoke_corpus), "--folds", "2", "--by-source",
                                    "--latency-sample", "0", "--workers", "1", "--out", str(tmp_path / "v3")])
    assert evaluated.exit_code == 0, evaluated.output
    stored_file = tmp_path / "v3" / "metrics.json"
    stored = json.loads(stored_file.read_text())

    def baseline(*more, out="r/baseline_report.md"):
        return runner.invoke(app, expand_models(["baseline", "--models", "v3", "--corpus", str(smoke_corpus), "--workers", "1",
                                                 "--latency-sample", "0", "--out", str(tmp_path / out), *more]))

    # Made in another checkout: the model file's path differs, its sha256 does not.
    moved = json.loads(stored_file.read_text())
    moved["run"]["model"]["path"] = "/elsewhere/stegwatch/detectors/models/v3/v3_calibration.json"
    (tmp_path / "elsewhere").mkdir()
    stored_file = tmp_path / "elsewhere" / "metrics.json"
    stored_file.write_text(json.dumps(moved))
    result = baseline("--folds", "2", "--evaluations", str(stored_file))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r" / "baseline_report.json").read_text())
    name = next(iter(report["results"]))
    assert report["identity"]["evaluation_runs"][name] == stored["run"]["run_id"]  # not evaluated again
    assert report["identity"]["reused_evaluations"][name]["file"] == str(stored_file)
    assert report["identity"]["models"][name]["path"] != moved["run"]["model"]["path"]  # this checkout's model file
    assert report["identity"]["corpus"]["path"] == str(smoke_corpus)
    assert report["results"][name]["false_positive_rate"] == stored["false_positive_rate"]
    text = (tmp_path / "r" / "baseline_report.md").read_text()
    assert f"a stored run given with `--evaluations` (`{stored_file}`" in text and stored["run"]["command"] in text
    assert stored["run"]["run_id"] in (tmp_path / "r" / "baseline_report.html").read_text()
    # The same report evaluated afresh has the same tables.
    fresh = baseline("--folds", "2", out="fresh/baseline_report.md")
    assert fresh.exit_code == 0, fresh.output

    def tables(markdown: str) -> list[str]:
        return [line for line in markdown.splitlines() if line.startswith("|") and "latency" not in line and "feature cost" not in line]

    assert tables((tmp_path / "fresh" / "baseline_report.md").read_text()) == tables(text)

    # Refused before any model is evaluated (v4 is listed first and would be refitted) and before anything is written.
    def tampered(name: str, change) -> Path:
        document = json.loads(stored_file.read_text())
        change(document)
        (tmp_path / f"{name}.json").write_text(json.dumps(document))
        return tmp_path / f"{name}.json"

    cv = "cross_validation"
    cases = {
        "another assignment": (lambda d: d[cv]["fold_of_cover"].update(
            {k: 1 - v for k, v in list(d[cv]["fold_of_cover"].items())[:1]}), "other folds"),
        "another seed": (lambda d: d[cv].update(seed=5), "its seed is 5"),
        "another corpus": (lambda d: d["run"]["corpus"].update(manifest_sha256="0" * 64), "another corpus"),
        "one split": (lambda d: d["run"]["corpus"].update(split="monitor"), "split only"),
        "another target": (lambda d: d.update(fpr_target=0.01), "target FPR"),
        "no by-source": (lambda d: d.update(generalization=None), "evaluate --by-source"),
        "extra training": (lambda d: d[cv].update(extra_training=[{"path": "t", "manifest_sha256": "1" * 64, "files": 9,
                                                                   "cover_groups": 3}]), "training-only files"),
        "another model": (lambda d: d["run"]["model"].update(sha256="0" * 64), "none of --models"),
    }
    for case, (change, words) in cases.items():
        refused = runner.invoke(app, expand_models([
            "baseline", "--models", "v4", "v3", "--corpus", str(smoke_corpus), "--workers", "1", "--folds", "2",
            "--latency-sample", "0", "--out", str(tmp_path / "x" / "baseline_report.md"),
            "--evaluations", str(tampered(case.replace(" ", "-"), change))]))
        assert refused.exit_code == 2 and words in " ".join(refused.output.split()), (case, refused.output)
    other_folds = baseline("--folds", "3", "--evaluations", str(stored_file), out="x/baseline_report.md")
    assert other_folds.exit_code == 2 and "grouped folds" in other_folds.output
    twice = baseline("--folds", "2", "--evaluations", str(stored_file), str(tmp_path / "v3" / "metrics.json"), out="x/baseline_report.md")
    assert twice.exit_code == 2 and "are of the same model" in twice.output
    (tmp_path / "junk.json").write_text("{}")
    junk = baseline("--folds", "2", "--evaluations", str(tmp_path / "junk.json"), out="x/baseline_report.md")
    assert junk.exit_code == 2 and "not a stegwatch metrics document" in junk.output
    assert not (tmp_path / "x").exists()
    assert stored["cross_validation"]["seed"] == 0  # recorded, so a run of another seed is refused even with equal folds


def test_baseline_accept_still_works_and_report_needs_arguments(tmp_path):
    assert runner.invoke(app, ["baseline"]).exit_code == 2
    assert runner.invoke(app, ["baseline", "accept", "nope", "--db", str(tmp_path / "h.db")]).exit_code == 2


def test_the_anchor_without_its_extra_says_how_to_install_it(smoke_corpus, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_sealwatch(name, *args, **kwargs):
        if name == "sealwatch" or name.startswith("sealwatch."):
            raise ImportError("No module named 'sealwatch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sealwatch)
    result = runner.invoke(app, expand_models(["baseline", "--models", "v3", "--corpus", str(smoke_corpus), "--anchor", "sealwatch",
                                               "--out", str(tmp_path / "r.md")]))
    assert result.exit_code == 2 and "pip install 'stegwatch[anchor]'" in result.output
    assert not (tmp_path / "r.md").exists()  # refused before any work
    unknown = runner.invoke(app, expand_models(["baseline", "--models", "v3", "--corpus", str(smoke_corpus), "--anchor", "nope"]))
    assert unknown.exit_code == 2 and "unknown anchor" in unknown.output


def test_the_sealwatch_anchor_is_a_column_on_the_same_folds(smoke_corpus, tmp_path):
    pytest.importorskip("sealwatch")  # the optional extra stegwatch[anchor]; not installed in CI
    from stegwatch.reports.baseline import baseline_report

    report = baseline_report(["v3"], smoke_corpus, folds=2, out=tmp_path / "baseline_report.md", latency_sample=0,
                             anchor="sealwatch")
    names = list(report["results"])
    anchor = report["results"][names[-1]]
    assert names[-1].startswith("sealwatch-anchor") and anchor["anchor"]["cost_ms_by_family"]
    v3 = report["results"][names[0]]
    assert anchor["cross_validation"]["fold_of_cover"] == v3["cross_validation"]["fold_of_cover"]
    assert len(anchor["cross_validation"]["thresholds"]) == 2 and anchor["latency"]["per_image_ms"]["p50"] > 0
    assert "sealwatch's own extractors and FLD ensemble" in (tmp_path / "baseline_report.md").read_text()
    # stegwatch's features timed on the anchor's timed files: a fraction of the anchor's cost per family.
    assert report["feature_cost"]["stegwatch"]["files_timed"] == anchor["anchor"]["cost_files_timed"]
    assert "of the anchor's" in (tmp_path / "baseline_report.md").read_text()


def test_sealwatch_rows_come_back_from_the_anchor_cache_equal_and_a_sample_is_still_timed(smoke_corpus, tmp_path,
                                                                                         monkeypatch):
    sealwatch = pytest.importorskip("sealwatch")  # the optional extra stegwatch[anchor]; not installed in CI
    monkeypatch.setenv("STEGWATCH_FEATURE_CACHE", str(tmp_path / "cache" / "features.sqlite"))
    from stegwatch.evaluation.anchor import TIMED_PER_FAMILY, _extract_all, anchor_cache_path
    from stegwatch.features.corpus import load_corpus_features

    data = load_corpus_features(smoke_corpus)
    data = data.subset(np.arange(0, len(data.entries), 3))
    families, first, timings, errors = _extract_all(sealwatch, data, smoke_corpus, workers=2)
    assert anchor_cache_path("jpeg").exists() and anchor_cache_path("spatial").exists()
    again_families, again, again_timings, _ = _extract_all(sealwatch, data, smoke_corpus, workers=1)
    assert errors == []
    assert (families == again_families).all()
    for family in first:
        np.testing.assert_array_equal(first[family], again[family])
    timed = ~np.isnan(again_timings)
    assert 0 < timed.sum() <= 2 * TIMED_PER_FAMILY < len(data.entries) and (~np.isnan(timings)).all()


def test_a_file_sealwatch_cannot_read_is_an_error_record(tmp_path):
    pytest.importorskip("sealwatch")  # the optional extra stegwatch[anchor]; not installed in CI
    from stegwatch.evaluation.anchor import _extract_one

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)  # a JPEG header and nothing else
    vector, _, reason = _extract_one(str(broken))
    assert vector is None and "sealwatch cannot extract it" in reason


def test_a_stored_report_keeps_its_columns_in_the_order_they_were_run():
    from stegwatch.reports.baseline import column_order

    # json.dumps(sort_keys=True) stores "results" alphabetically; the comparison chain keeps the run's order.
    report = {"results": {"sealwatch-anchor 1": {}, "stegwatch-v3 3.0": {}, "stegwatch-v4 4.2": {}},
              "comparisons": [{"from": "stegwatch-v3 3.0", "to": "stegwatch-v4 4.2"},
                              {"from": "stegwatch-v4 4.2", "to": "sealwatch-anchor 1"}]}
    assert column_order(report) == ["stegwatch-v3 3.0", "stegwatch-v4 4.2", "sealwatch-anchor 1"]
    assert column_order({"results": {"b": {}, "a": {}}, "comparisons": []}) == ["a", "b"]


def test_the_committed_report_is_its_json_rendered_and_every_table_is_whole(tmp_path):
    """A template change re-renders the committed report from its JSON; no row falls out of its table."""
    from stegwatch.reports.baseline import render_report

    root = Path(__file__).parents[1] / "docs" / "grok"
    render_report(json.loads((root / "baseline_report.json").read_text()), tmp_path / "baseline_report.md")
    text = (tmp_path / "baseline_report.md").read_text()
    assert text == (root / "baseline_report.md").read_text()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|")):  # a table starts: header, then rule
            assert i + 1 < len(lines) and lines[i + 1].startswith("|---"), f"line {i + 1} is a row outside its table: {line[:60]}"
