"""Evaluation verbs: ``evaluate``, ``fp-regression``, ``dataset-metrics``, ``logs`` and ``ablate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from stegwatch.cli._app import (
    MODEL_HELP,
    TRAIN_EXTRA_HELP,
    CheckpointsOption,
    ExecutorOption,
    SchedulerOption,
    app,
    counts_table,
    err,
    escape,
    out,
    print_json,
    progress_bar,
    scheduler_for,
    verb,
    workers_or_all,
)
from stegwatch.errors import ConfigError
from stegwatch.provenance import command_line
from stegwatch.stats import DEFAULT_TARGET_FPR

LABELS_HELP = ("A CSV of path,label[,method][,group][,source] (paths relative to it; label clean or stego), "
               "used instead of --corpus: any labelled folder, no stegwatch corpus needed.")
IN_SAMPLE_HELP = ("Keep files whose covers the model was trained or calibrated on (left out by default); "
                  "the run and every document from it are marked in-sample.")


def one_source(corpus: Path | None, labels: Path | None) -> Path:
    """The one of ``--corpus`` and ``--labels`` that was given."""
    if (corpus is None) == (labels is None):
        raise ConfigError("give exactly one of --corpus (a stegwatch corpus) and --labels (a labelled CSV)")
    return corpus if corpus is not None else labels


@app.command("evaluate")
@verb(FileNotFoundError, ValueError)
def evaluate_command(
    model: Annotated[str, typer.Option(help=MODEL_HELP)],
    corpus: Annotated[Optional[Path], typer.Option(help="Corpus folder holding manifest.jsonl.")] = None,
    labels: Annotated[Optional[Path], typer.Option(help=LABELS_HELP)] = None,
    folds: Annotated[Optional[int], typer.Option(help="k-fold cross-validation grouped by cover_id (the detector is refitted per fold: V4 retrained, V3 recalibrated).")] = None,
    allow_in_sample: Annotated[bool, typer.Option("--allow-in-sample", help=IN_SAMPLE_HELP)] = False,
    by_source: Annotated[bool, typer.Option("--by-source", help="Add leave-one-cover-source-out FPR and detection, and their gap to the in-source readings (refits per source).")] = False,
    train_extra: Annotated[Optional[list[Path]], typer.Option("--train-extra", help=TRAIN_EXTRA_HELP + " Needs --folds or --by-source.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Folder for metrics.json (written atomically).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics.json to stdout.")] = False,
    target_fpr: Annotated[float, typer.Option(help="The false-positive rate to prove (and, per fold, to choose thresholds for).")] = DEFAULT_TARGET_FPR,
    threshold: Annotated[Optional[float], typer.Option(help="Override the model's threshold (without folds).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the fold assignment.")] = 0,
    latency_sample: Annotated[int, typer.Option(help="Files timed one by one for latency (0: skip).")] = 100,
    workers: Annotated[Optional[int], typer.Option(help="Processes for feature extraction (default: all cores).")] = None,
    split: Annotated[Optional[str], typer.Option(help="Only this split of the corpus: train or monitor (default: every file).")] = None,
    executor: ExecutorOption = "local",
    scheduler: SchedulerOption = None,
    checkpoints: CheckpointsOption = None,
) -> None:
    """Evaluate a detector: FPR with file- and cover-group intervals, detection per method, ROC/AUC, P_E, MD5, folds, latency.

    Files from covers the model was trained or calibrated on are left out and counted (--allow-in-sample keeps them).
    """
    from stegwatch.evaluation.evaluate import METRICS_FILE, evaluate

    source = one_source(corpus, labels)
    with progress_bar("features", not as_json) as progress:
        metrics = evaluate(model, corpus, labels=labels, folds=folds, seed=seed, target_fpr=target_fpr, threshold=threshold,
                           workers=workers_or_all(workers), latency_sample=latency_sample, command=command_line(), progress=progress,
                           scheduler=scheduler_for(executor, scheduler), out=out_dir, split=split,
                           allow_in_sample=allow_in_sample, by_source=by_source, train_extra=train_extra,
                           checkpoints=checkpoints)
    if as_json:
        print_json(metrics)
        return
    fpr = metrics["false_positive_rate"]
    in_sample = " \\[IN-SAMPLE]" if metrics["in_sample"] else ""
    model = escape(f"{metrics['run']['model']['name']} {metrics['run']['model']['version']}")
    table = Table(title=f"{model} on {escape(str(source))} (run {escape(metrics['run']['run_id'])}){in_sample}")
    for column in ("measure", "value", "95% interval (files)", "95% interval (cover groups)", "n files (cover groups)"):
        table.add_column(column, justify="left" if column == "measure" else "right")

    def row(name: str, r: dict) -> None:
        value = f"{r['rate']:.4%}" if r["rate"] is not None else "-"
        table.add_row(escape(name), value, f"{r['ci_low']:.4%} - {r['ci_high']:.4%}", f"{r['group_ci_low']:.4%} - {r['group_ci_high']:.4%}",
                      f"{r['count']} / {r['n']} ({r['n_groups']})")

    row("false-positive rate", fpr)
    for key, r in metrics["false_positive_rate_by_category"].items():
        row(f"  FPR {key}", r)
    for key, r in metrics["detection_rate_by_method"].items():
        row(f"detection {key}", r)
    table.add_row("ROC AUC", f"{metrics['roc_auc']:.4f}" if metrics["roc_auc"] is not None else "-", "", "")
    table.add_row("P_E / MD5", f"{metrics['p_e']:.4f} / {metrics['md5']:.4f}" if metrics["p_e"] is not None else "-", "", "")
    out.print(table)
    proven = "proven" if metrics["fpr_target_proven"] else "not proven"
    out.print(f"FPR below {metrics['fpr_target']:.4%}: {proven} (upper bound {fpr['group_upper_bound']:.4%} over "
              f"{fpr['n_groups']} cover groups, {fpr['upper_bound']:.4%} if the {fpr['n']} clean files were independent; "
              f"zero false positives on {metrics['n_needed_photographs_for_target']} independent photographs would prove it); "
              f"{metrics['unreadable']} unreadable files")
    excluded = metrics["excluded_in_sample"]
    if excluded["files"]:
        what = "evaluated anyway (--allow-in-sample): this run is IN-SAMPLE" if excluded["kept"] else "left out"
        out.print(f"{excluded['files']} files ({excluded['cover_groups']} cover groups) descend from covers the model was "
                  f"trained or calibrated on: {what}")
    elif not excluded["training_covers_known"]:
        out.print("[yellow]the model does not record its training covers: in-sample files could not be excluded[/yellow]")
    if metrics["cross_validation"]:
        thresholds = ", ".join(f"{t:.6f}" for t in metrics["cross_validation"]["thresholds"])
        out.print(f"each fold decided at its own threshold: {thresholds}")
    general = metrics.get("generalization")
    if general and general.get("available"):
        inside, outside = general["in_source"], general["out_of_source"]
        out.print(f"out-of-source FPR {outside['false_positive_rate']['rate']:.3%} (group upper bound "
                  f"{outside['false_positive_rate']['group_upper_bound']:.3%}) against in-source "
                  f"{inside['false_positive_rate']['rate']:.3%} ({inside['false_positive_rate']['group_upper_bound']:.3%}); "
                  f"detection {outside['detection_rate']['rate']:.2%} against {inside['detection_rate']['rate']:.2%}")
    elif general:
        out.print(f"generalization: {escape(str(general['reason']))}")
    if metrics["latency"]:
        lat = metrics["latency"]
        out.print(f"latency p50 {lat['per_image_ms']['p50']:.1f} ms, p95 {lat['per_image_ms']['p95']:.1f} ms; {lat['images_per_second']:.1f} images/s")
    if out_dir:
        out.print(f"wrote {escape(str(Path(out_dir) / METRICS_FILE))}")


@app.command("fp-regression")
@verb(FileNotFoundError, ValueError)
def fp_regression_command(
    model: Annotated[str, typer.Option(help=MODEL_HELP)],
    corpus: Annotated[Path, typer.Option(help="Corpus folder holding manifest.jsonl.")],
    baseline: Annotated[Optional[Path], typer.Option(help="Baseline of false positives (JSON).")] = None,
    update_baseline: Annotated[bool, typer.Option("--update-baseline", help="Write the current false positives as the new baseline.")] = False,
    limit: Annotated[float, typer.Option(help="Fail when the FPR's one-sided 95% upper bound exceeds this.")] = DEFAULT_TARGET_FPR,
    threshold: Annotated[Optional[float], typer.Option(help="Override the model's threshold.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    workers: Annotated[Optional[int], typer.Option(help="Processes for feature extraction.")] = None,
    allow_in_sample: Annotated[bool, typer.Option("--allow-in-sample", help=IN_SAMPLE_HELP)] = False,
) -> None:
    """List every false positive on clean files and compare with a baseline. Exit 1 on a new one or a high FPR bound.

    The limit is checked against the FPR's upper bound over cover groups.
    """
    from stegwatch.evaluation.fp_regression import fp_regression

    report = fp_regression(model, corpus, baseline=baseline, update_baseline=update_baseline, limit=limit,
                           threshold=threshold, workers=workers_or_all(workers), command=command_line(),
                           allow_in_sample=allow_in_sample)
    if as_json:
        print_json(report)
    else:
        table = Table(title=escape(f"False positives of {report['model']['name']} {report['model']['version']}"))
        for column in ("change", "category", "file", "score"):
            table.add_column(column)
        for change in ("new", "unchanged", "fixed"):
            for r in report["changes"][change]:
                table.add_row(change, escape(r["category"]), escape(r["file_path"]), f"{r['score']:.4f}")
        out.print(table)
        fpr = report["false_positive_rate"]
        excluded = report["excluded_in_sample"]
        if excluded["files"]:
            out.print(f"{excluded['files']} clean files ({excluded['cover_groups']} cover groups) from covers the model was fitted on: "
                      + ("kept (--allow-in-sample): IN-SAMPLE" if excluded["kept"] else "left out"))
        out.print(f"FPR {fpr['count']}/{fpr['n']} files ({fpr['n_groups']} cover groups; upper bound {fpr['group_upper_bound']:.4%} "
                  f"over groups, {fpr['upper_bound']:.4%} over files; limit {report['limit']:.4%}); "
                  + ("; ".join(report["reasons"]) if report["failed"] else "no regression"))
    raise typer.Exit(1 if report["failed"] else 0)


@app.command("dataset-metrics")
@verb()
def dataset_metrics_command(
    corpus: Annotated[Path, typer.Argument(help="Corpus folder holding manifest.jsonl.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    no_validate: Annotated[bool, typer.Option("--no-validate", help="Skip proving labels (validate-streams).")] = False,
    workers: Annotated[Optional[int], typer.Option(help="Processes to use (default: all cores).")] = None,
) -> None:
    """Dataset quality: counts, balance, entropy, near-duplicates, cover sources, label validity."""
    from stegwatch.evaluation.dataset import dataset_metrics

    metrics = dataset_metrics(corpus, workers=workers_or_all(workers), validate=not no_validate)
    if as_json:
        print_json(metrics)
        return
    for name, counts in metrics["counts"].items():
        if name in ("label", "method", "format", "mode"):
            out.print(counts_table(f"Files per {name}", name, counts))
    table = Table(title="Balance and diversity")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("flag")
    for name, row in metrics["balance"].items():
        table.add_row(f"largest deviation from an even {name} split", f"{row['max_deviation']:.3f}", "over 0.10" if row["flagged"] else "")
    for name, value in metrics["entropy"].items():
        table.add_row(f"normalized entropy of {name}", f"{value:.3f}", "")
    near = metrics["near_duplicates"]
    table.add_row("near-duplicates within a cover_id", f"{near['within_cover_rate']:.3%}", "")
    table.add_row("near-duplicates across cover_ids", f"{near['across_cover_rate']:.3%} ({near['across_cover_files']} files)", "")
    table.add_row("distinct cover sources / cover_ids", f"{metrics['distinct_cover_sources']} / {metrics['distinct_cover_ids']}", "")
    table.add_row("independent photographs", str(metrics["independent_photographs"]), "")
    for method, auc in (metrics.get("container_auc") or {}).items():
        table.add_row(f"container-only AUC: {escape(method)}", "-" if auc is None else f"{auc:.3f}", "" if auc is None or auc <= 0.6 else "shortcut")
    if "label_validity" in metrics:
        v = metrics["label_validity"]
        table.add_row("stego labels proven", f"{v['stego_passed']} / {v['stego_checked']}", "" if v["stego_passed"] == v["stego_checked"] else "check")
    out.print(table)


@app.command("logs")
@verb(ValueError)
def logs_command(
    paths: Annotated[list[Path], typer.Argument(help="Training logs (files, or TensorBoard run folders).", readable=False)],
    fmt: Annotated[Optional[str], typer.Option("--format", help="stegwatch, csv, keras-history, tensorboard or starlight (default: detect).")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Write loss curves to this PNG.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the tidy table, summary and problems as JSON.")] = False,
) -> None:
    """Parse training logs into one tidy table (run, step, metric, value) and summarize convergence."""
    from stegwatch.evaluation.logs import FORMATS, convergence, parse_logs, plot_losses

    if fmt and fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    parsed = parse_logs(paths, fmt)
    summary = convergence(parsed.table)
    if plot and not parsed.table.empty:
        plot_losses(parsed.table, plot)
    if as_json:
        print_json({"formats": parsed.formats, "rows": parsed.table.to_dict(orient="records"), "convergence": summary,
                    "problems": parsed.problems})
        return
    table = Table(title="Convergence")
    for column in ("run", "format", "steps", "best step", "final train loss", "final val loss", "gap", "stalled since"):
        table.add_column(column)

    def fmt_number(value) -> str:
        return "-" if value is None else f"{value:.4f}"

    for run, row in summary.items():
        table.add_row(escape(str(run)), parsed.formats.get(run, "?"), str(row["steps"]), str(row.get("best_step")),
                      fmt_number(row.get("final_train_loss")), fmt_number(row.get("final_val_loss")),
                      fmt_number(row.get("train_val_gap")), str(row.get("stopped_improving_since") or "-"))
    out.print(table)
    for problem in parsed.problems:
        where = f"line {problem['line']}" if problem.get("line") else "file"
        err.print(f"[yellow]{escape(str(problem['run']))} {escape(str(where))}[/yellow]: {escape(str(problem['reason']))} (skipped)")
    if plot:
        out.print(f"wrote {escape(str(plot))}")


@app.command("ablate")
@verb(FileNotFoundError, ValueError)
def ablate_command(
    corpus: Annotated[Path, typer.Option(help="Corpus folder holding manifest.jsonl.")],
    by: Annotated[str, typer.Option(help="category (negatives) or stream (features).")],
    model: Annotated[str, typer.Option(help="The trainable detector whose settings are retrained: a registered key or a model file.")] = "v4",
    folds: Annotated[int, typer.Option(help="Grouped folds, the same for every variant.")] = 3,
    only: Annotated[Optional[list[str]], typer.Option("--only", help="Ablate only these categories or streams (repeatable).")] = None,
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Write the ablation JSON here.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the folds.")] = 0,
    workers: Annotated[Optional[int], typer.Option(help="Processes for feature extraction.")] = None,
    train_extra: Annotated[Optional[list[Path]], typer.Option("--train-extra", help=TRAIN_EXTRA_HELP)] = None,
    checkpoints: CheckpointsOption = None,
) -> None:
    """Retrain a trainable detector without each negatives category (or each stream) on the same grouped folds; report the changes."""
    from stegwatch.evaluation.ablation import ablate

    result = ablate(model, corpus, by=by, folds=folds, seed=seed, only=only, workers=workers_or_all(workers), command=command_line(),
                    out=out_file, train_extra=train_extra or (), checkpoints=checkpoints)
    table = Table(title=f"Ablation by {by} ({folds} folds); full model FPR {result['full']['false_positive_rate']['count']}/"
                        f"{result['full']['false_positive_rate']['n']}, AUC {result['full']['roc_auc']:.4f}")
    for column in ("without", "FPR", "change in FPR (points)", "change in AUC"):
        table.add_column(column)
    for item, row in result["variants"].items():
        fpr = row["false_positive_rate"]
        table.add_row(item, f"{fpr['count']}/{fpr['n']}", f"{100 * row['change']['false_positive_rate']:+.3f}", f"{row['change']['roc_auc']:+.4f}")
    out.print(table)
