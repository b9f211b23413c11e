"""Evaluation that cannot fool itself: cover-group intervals, in-sample exclusion, per-fold refits, labelled CSVs."""

import csv
import json

import numpy as np
import pytest

from stegwatch.detectors.train import TrainConfig, train
from stegwatch.evaluation.evaluate import evaluate
from stegwatch.evaluation.schema import Metrics
from stegwatch.format.manifest import read_manifest
from stegwatch.reports.baseline import paired_bootstrap
from stegwatch.stats import cluster_bootstrap_difference, group_rate_record, n_needed_zero_failures


def test_errors_concentrated_in_two_groups_widen_the_group_bound_well_beyond_the_file_bound():
    groups = np.repeat([f"photo:{i}" for i in range(10)], 100)
    flags = np.zeros(1000, dtype=bool)
    flags[0:6] = True      # group 0
    flags[100:106] = True  # group 1
    record = group_rate_record(flags, groups)
    assert record["n"] == 1000 and record["n_groups"] == 10 and record["count"] == 12
    assert record["design_effect"] > 3
    assert record["group_upper_bound"] > 5 * record["upper_bound"]
    assert record["group_ci_low"] <= record["ci_low"] and record["group_ci_high"] >= record["ci_high"]


def test_errors_spread_over_many_groups_keep_the_group_bound_near_the_file_bound():
    rng = np.random.default_rng(0)
    groups = np.repeat([f"photo:{i}" for i in range(1000)], 10)
    flags = np.zeros(10_000, dtype=bool)
    flags[rng.choice(1000, 200, replace=False) * 10] = True  # one error in each of 200 groups
    record = group_rate_record(flags, groups)
    assert record["design_effect"] < 1.2
    assert record["group_upper_bound"] == pytest.approx(record["upper_bound"], rel=0.1)


def test_zero_events_prove_no_more_than_the_groups_themselves_and_the_bound_is_monotone():
    groups = np.repeat([f"photo:{i}" for i in range(300)], 25)
    flags = np.zeros(groups.size, dtype=bool)
    zero = group_rate_record(flags, groups)
    assert zero["group_upper_bound"] == pytest.approx(1 - 0.05 ** (1 / 300))
    assert zero["upper_bound"] < 0.0005 < zero["group_upper_bound"]  # 7,500 files prove it; 300 photographs do not
    flags[7] = True
    one = group_rate_record(flags, groups)
    assert one["group_upper_bound"] >= zero["group_upper_bound"]
    # 5,990 independent photographs with zero false positives prove 0.05%.
    many = group_rate_record(np.zeros(2 * n_needed_zero_failures(0.0005), dtype=bool),
                             np.repeat([f"p{i}" for i in range(n_needed_zero_failures(0.0005))], 2))
    assert many["group_upper_bound"] < 0.0005


def test_the_paired_bootstrap_resamples_cover_groups():
    groups = np.repeat([f"g{i}" for i in range(20)], 50)
    before = np.zeros(1000)
    after = np.zeros(1000)
    after[:100] = 1  # the whole difference sits in two groups
    by_group = cluster_bootstrap_difference(before, after, groups, seed=0)
    by_file = cluster_bootstrap_difference(before, after, [str(i) for i in range(1000)], seed=0)
    assert by_group["difference"] == pytest.approx(0.1) and by_group["groups"] == 20
    assert (by_group["ci_high"] - by_group["ci_low"]) > 2 * (by_file["ci_high"] - by_file["ci_low"])
    files = [f"{i:04d}" for i in range(1000)]
    decisions = paired_bootstrap({"evaluated": files, "groups": list(groups), "flagged": []},
                                 {"evaluated": files, "groups": list(groups), "flagged": files[:100]}, seed=0)
    assert decisions["groups"] == 20 and decisions["ci_low"] == pytest.approx(by_group["ci_low"])


@pytest.fixture(scope="module")
def v3_trained(smoke_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("v3-trained")
    card = train(smoke_corpus, out, TrainConfig(model="v3", split=None))
    return out / "v3_calibration.json", card


def test_the_model_card_lists_its_training_covers_and_evaluation_leaves_them_out(smoke_corpus, v3_trained):
    model, card = v3_trained
    covers = set(card["training_cover_ids"])
    entries = read_manifest(smoke_corpus).entries
    inside = [e for e in entries if e.cover_id in covers]
    assert covers and inside and len(inside) < len(entries)
    metrics = evaluate(model, smoke_corpus, latency_sample=0)
    assert metrics["in_sample"] is False
    assert metrics["excluded_in_sample"] == {"training_covers_known": True, "files": len(inside),
                                             "cover_groups": len({e.cover_id for e in inside}), "kept": False}
    assert metrics["false_positive_rate"]["n"] + metrics["detection_rate"]["n"] == len(entries) - len(inside)
    kept = evaluate(model, smoke_corpus, latency_sample=0, allow_in_sample=True)
    assert kept["in_sample"] is True and kept["excluded_in_sample"]["kept"]
    assert kept["false_positive_rate"]["n"] + kept["detection_rate"]["n"] == len(entries)


def _without_run(metrics):
    return {k: v for k, v in metrics.items() if k not in ("run", "latency")}


def test_files_of_training_covers_are_not_even_read_when_the_run_would_only_drop_them(smoke_corpus, v3_trained, monkeypatch,
                                                                                        tmp_path):
    import stegwatch.features.corpus as corpus_module
    from stegwatch.errors import EmptyCorpus
    from stegwatch.features.labels import load_rows
    from stegwatch.monitoring.monitor import monitor

    model, card = v3_trained
    covers = set(card["training_cover_ids"])
    entries = read_manifest(smoke_corpus).entries
    inside = {str((smoke_corpus / e.file_path).resolve()) for e in entries if e.cover_id in covers}
    reading = corpus_module.features_for_paths
    read: list[list[str]] = []
    monkeypatch.setattr(corpus_module, "features_for_paths", lambda paths, **kw: read.append(list(paths)) or reading(paths, **kw))
    # Read only what is scored; every number equals the run that reads everything and then drops the same files.
    skipped = evaluate(model, smoke_corpus, latency_sample=0)
    assert not inside & set(read[-1]) and len(read[-1]) == len(entries) - len(inside)
    full = evaluate(model, smoke_corpus, latency_sample=0, data=load_rows(smoke_corpus, None))
    assert len(read[-1]) == len(entries)
    assert _without_run(skipped) == _without_run(full)
    assert skipped["excluded_in_sample"]["files"] == len(inside)
    # The monitor reads as little, unless a section fits on those files too (the leave-one-source-out refits).
    monitor(model, smoke_corpus, by_source=False, dashboard=tmp_path / "d" / "dash.md", db=tmp_path / "h.db",
            latency_sample=0, console=lambda line: None)
    assert not inside & set(read[-1])
    for kept in (dict(allow_in_sample=True), dict(folds=2), dict(by_source=True)):
        evaluate(model, smoke_corpus, latency_sample=0, **kept)
        assert inside <= set(read[-1]), kept
    # A corpus made only of training covers is read whole and refused with the in-sample reason.
    only_inside = tmp_path / "only-inside"
    only_inside.mkdir()
    (only_inside / "manifest.jsonl").write_text("".join(e.model_dump_json() + "\n" for e in entries if e.cover_id in covers))
    for e in entries:
        if e.cover_id in covers:
            (only_inside / e.file_path).parent.mkdir(parents=True, exist_ok=True)
            (only_inside / e.file_path).write_bytes((smoke_corpus / e.file_path).read_bytes())
    with pytest.raises(EmptyCorpus, match="descends from a cover"):
        evaluate(model, only_inside, latency_sample=0)


def test_an_in_sample_run_says_so_in_its_dashboard(smoke_corpus, v3_trained, tmp_path):
    from stegwatch.monitoring.monitor import monitor

    model, _ = v3_trained
    dashboard = tmp_path / "dash" / "performance_dashboard.md"
    result = monitor(model, smoke_corpus, allow_in_sample=True, by_source=False, dashboard=dashboard, db=tmp_path / "h.db",
                     latency_sample=0, console=lambda line: None)
    assert result.metrics["in_sample"]
    assert "IN-SAMPLE RUN" in dashboard.read_text() and "IN-SAMPLE RUN" in dashboard.with_suffix(".html").read_text()
    clean = monitor(model, smoke_corpus, by_source=False, dashboard=dashboard, db=tmp_path / "h.db", latency_sample=0,
                    console=lambda line: None)
    text = dashboard.read_text()
    assert not clean.metrics["in_sample"] and "IN-SAMPLE RUN" not in text
    assert f"{clean.metrics['excluded_in_sample']['files']} files" in text and "were left out" in text
    assert "cover groups)" in text


def test_with_folds_v3_is_recalibrated_per_fold_and_every_fold_has_its_own_threshold(smoke_corpus):
    metrics = evaluate("v3", smoke_corpus, folds=3, latency_sample=0)
    cross = metrics["cross_validation"]
    assert cross["trained_per_fold"] is True and metrics["threshold"] is None
    assert len(set(cross["thresholds"])) == 3
    assert [fold["threshold"] for fold in cross["per_fold"]] == cross["thresholds"]
    assert metrics["excluded_in_sample"]["files"] == 0  # out-of-fold: nothing to leave out


def test_the_oracle_reading_is_labelled_and_the_schema_has_the_group_fields(smoke_corpus):
    metrics = evaluate("v4", smoke_corpus, latency_sample=0, allow_in_sample=True)
    assert "detection_at_fpr" not in metrics
    assert all(row["oracle"] for row in metrics["oracle_detection_at_fpr"].values())
    fields = Metrics.model_json_schema()["$defs"]["RateRecord"]["properties"]
    assert {"n_groups", "group_ci_low", "group_ci_high", "group_upper_bound"} <= set(fields)
    assert metrics["fpr_target_proven"] == (metrics["false_positive_rate"]["group_upper_bound"] < metrics["fpr_target"])
    assert metrics["n_needed_photographs_for_target"] == n_needed_zero_failures(metrics["fpr_target"])
    for record in metrics["detection_rate_by_method"].values():
        assert 1 <= record["n_groups"] <= record["n"]


def _labels_csv(corpus, path, *, with_group=True):
    entries = read_manifest(corpus).entries
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "method", "group", "source"] if with_group else ["path", "label", "method"])
        for e in entries:
            row = [e.file_path, e.label, e.method or ""]
            writer.writerow(row + [e.cover_id, e.cover_source or ""] if with_group else row)
    return entries


def test_a_labelled_csv_gives_the_numbers_of_a_corpus_run_over_the_same_files(smoke_corpus):
    csv_path = smoke_corpus / "labels.csv"  # beside the manifest: its paths are relative to the corpus root
    try:
        _labels_csv(smoke_corpus, csv_path)
        from_csv = evaluate("v4", labels=csv_path, latency_sample=0, allow_in_sample=True)
    finally:
        csv_path.unlink()
    from_corpus = evaluate("v4", smoke_corpus, latency_sample=0, allow_in_sample=True)
    assert from_csv["run"]["corpus"]["labels"]["source"] == "labels-csv"
    for key in ("false_positive_rate", "detection_rate"):
        for field in ("count", "n", "n_groups", "group_upper_bound"):
            assert from_csv[key][field] == pytest.approx(from_corpus[key][field]), (key, field)
    assert {m: r["count"] for m, r in from_csv["detection_rate_by_method"].items()} == \
        {m: r["count"] for m, r in from_corpus["detection_rate_by_method"].items()}
    assert from_csv["roc_auc"] == pytest.approx(from_corpus["roc_auc"])


def test_a_csv_without_groups_makes_each_file_its_own_group_and_says_so(smoke_corpus, tmp_path):
    csv_path = smoke_corpus / "labels-nogroup.csv"
    try:
        entries = _labels_csv(smoke_corpus, csv_path, with_group=False)
        with csv_path.open("a", encoding="utf-8") as handle:
            handle.write("../outside.png,clean,\nmissing.png,maybe,\n")
        metrics = evaluate("v3", labels=csv_path, latency_sample=0, allow_in_sample=True)
    finally:
        csv_path.unlink()
    assert "own group" in metrics["run"]["corpus"]["labels"]["groups"]
    assert metrics["false_positive_rate"]["n_groups"] == metrics["false_positive_rate"]["n"]
    reasons = json.dumps(metrics["unreadable_files"])
    assert "escapes" in reasons and "'maybe' is not clean or stego" in reasons
    assert metrics["false_positive_rate"]["n"] + metrics["detection_rate"]["n"] == len(entries)


def test_evaluate_and_monitor_take_labels_from_the_cli(smoke_corpus, tmp_path):
    from typer.testing import CliRunner

    from stegwatch.cli import app

    csv_path = smoke_corpus / "labels-cli.csv"
    try:
        _labels_csv(smoke_corpus, csv_path)
        result = CliRunner().invoke(app, ["evaluate", "--model", "v3", "--labels", str(csv_path), "--latency-sample", "0",
                                          "--workers", "1", "--allow-in-sample", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["run"]["corpus"]["labels"]["groups"] == "the group column"
        both = CliRunner().invoke(app, ["evaluate", "--model", "v3", "--labels", str(csv_path), "--corpus", str(smoke_corpus)])
        assert both.exit_code == 2 and "exactly one" in both.output
        monitored = CliRunner().invoke(app, ["monitor", "--model-version", "v3", "--labels", str(csv_path), "--no-by-source",
                                             "--db", str(tmp_path / "h.db"), "--dashboard", str(tmp_path / "d" / "dash.md"),
                                             "--latency-sample", "0", "--workers", "1", "--allow-in-sample"])
        assert monitored.exit_code == 0, monitored.output
    finally:
        csv_path.unlink()


def test_by_source_reports_in_and_out_of_source_readings_of_the_same_files(smoke_corpus):
    metrics = evaluate("v3", smoke_corpus, folds=3, latency_sample=0, by_source=True)
    general = metrics["generalization"]
    assert general["available"]
    assert set(general["sources"]) <= {"pypi:scikit-image", "pypi:scikit-learn", "pypi:matplotlib", "pypi:PyWavelets"}
    inside, outside = general["in_source"], general["out_of_source"]
    assert inside["false_positive_rate"]["n"] == outside["false_positive_rate"]["n"] > 0
    gap = general["gap"]["false_positive_rate"]
    assert gap["difference"] == pytest.approx(outside["false_positive_rate"]["rate"] - inside["false_positive_rate"]["rate"])
    assert gap["ci_low"] <= gap["difference"] <= gap["ci_high"]


def test_p_e_per_method_is_read_on_that_methods_files_and_the_clean_ones(smoke_corpus):
    metrics = evaluate("v3", smoke_corpus, latency_sample=0, allow_in_sample=True)
    by_method = metrics["p_e_by_method"]
    assert set(by_method) == set(metrics["detection_rate_by_method"])
    assert all(value is not None and 0 <= value <= 0.5 for value in by_method.values())
    separated = [m for m, auc in metrics["roc_auc_by_method"].items() if auc == 1.0]
    chance = [m for m, auc in metrics["roc_auc_by_method"].items() if auc is not None and auc < 0.6]
    assert separated and all(by_method[m] == 0 for m in separated)
    assert all(by_method[m] > 0.2 for m in chance)
    # Per payload: the same reading on each method@rate's files; a method with one payload bin reads the same.
    by_payload = metrics["p_e_by_payload"]
    assert set(by_payload) == set(metrics["detection_rate_by_payload"])
    assert all(value is not None and 0 <= value <= 0.5 for value in by_payload.values())
    single = [m for m in by_method if [k.split("@")[0] for k in by_payload].count(m) == 1]
    assert single and all(by_payload[next(k for k in by_payload if k.startswith(f"{m}@"))] == by_method[m] for m in single)


def test_a_change_in_a_few_cover_groups_is_not_called_significant():
    """The percentile bootstrap excludes 0 whenever every changed group moved one way; the group sign test does not."""
    from stegwatch.stats import significant_change

    groups = [str(i // 2) for i in range(600)]  # 300 groups of 2 files
    before = np.zeros(600)
    four = before.copy()
    four[[0, 2, 4, 6]] = 1  # four gains, in four groups
    boot = cluster_bootstrap_difference(before, four, groups, seed=0)
    assert boot["ci_low"] > 0 and boot["sign_test"] == {"groups_up": 4, "groups_down": 0, "p_value": 0.125}
    assert not significant_change(boot)
    one_lost = cluster_bootstrap_difference(np.eye(1, 600, 0).ravel(), before, groups, seed=0)
    assert not significant_change(one_lost)
    many = before.copy()
    many[0:80:2] = 1  # forty gains in forty groups
    assert significant_change(cluster_bootstrap_difference(before, many, groups, seed=0))
    assert significant_change({"difference": 0.1, "ci_low": 0.05, "ci_high": 0.15})  # older records: the interval
    # Twelve groups up by many files, forty-five down by one: the interval is above 0, but most groups went down.
    up_groups, down_groups = range(0, 12), range(100, 145)
    sizes_before, sizes_after = np.zeros(600 + 12 * 20), np.zeros(600 + 12 * 20)
    labels = [str(i // 2) for i in range(600)] + [str(g) for g in up_groups for _ in range(20)]
    sizes_after[600:] = 1  # twenty extra files in each of the twelve groups, all gained
    for g in down_groups:
        sizes_before[2 * g] = 1  # one file lost in each of forty-five groups
    against = cluster_bootstrap_difference(sizes_before, sizes_after, labels, seed=0)
    assert against["ci_low"] > 0 and against["sign_test"]["groups_down"] > against["sign_test"]["groups_up"]
    assert not significant_change(against)


def test_equal_false_positive_rates_are_said_to_be_equal():
    from stegwatch.reports.baseline import verdicts

    boot = {"difference": 0.0, "ci_low": 0.0, "ci_high": 0.0, "sign_test": {"groups_up": 0, "groups_down": 0, "p_value": 1.0}}
    comparison = {"detection": {}, "false_positive_rate": {"bootstrap": boot, "mcnemar": {"p_value": 1.0}, "significant": False}}
    [sentence] = verdicts("A", "B", comparison)
    assert sentence.startswith("B's false-positive rate equals A's on these files") and "significantly" not in sentence
