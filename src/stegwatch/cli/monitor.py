"""Monitoring verbs: ``monitor``, ``history export`` and ``baseline accept``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from stegwatch.cli._app import (
    MODEL_HELP,
    CheckpointsOption,
    ExecutorOption,
    SchedulerOption,
    app,
    baseline_app,
    err,
    history_app,
    escape,
    out,
    print_json,
    scheduler_for,
    verb,
    workers_or_all,
)
from stegwatch.cli.evaluate import IN_SAMPLE_HELP, LABELS_HELP
from stegwatch.errors import ConfigError
from stegwatch.monitoring.history import DEFAULT_DB
from stegwatch.provenance import command_line


@app.command("monitor")
@verb(FileNotFoundError, ValueError, KeyError)
def monitor_command(
    model_version: Annotated[str, typer.Option("--model-version", help=MODEL_HELP)],
    dataset_path: Annotated[Optional[Path], typer.Option("--dataset-path", help="Corpus folder holding manifest.jsonl.")] = None,
    labels: Annotated[Optional[Path], typer.Option(help=LABELS_HELP)] = None,
    allow_in_sample: Annotated[bool, typer.Option("--allow-in-sample", help=IN_SAMPLE_HELP)] = False,
    by_source: Annotated[Optional[bool], typer.Option("--by-source/--no-by-source", help="Leave-one-cover-source-out refits (default: the config's \\[generalization] by_source, else on).")] = None,
    baseline: Annotated[Optional[str], typer.Option(help="Baseline run id or metrics file (default: the accepted baseline).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="TOML file of rules, alert sinks and the dashboard path.")] = None,
    db: Annotated[Path, typer.Option(help="History database.")] = DEFAULT_DB,
    dashboard: Annotated[Optional[Path], typer.Option(help="Markdown dashboard to write (default: the config's, else docs/grok/performance_dashboard.md).")] = None,
    fail_on: Annotated[Optional[str], typer.Option("--fail-on", help="Exit 1 on warning or critical.")] = None,
    latency_sample: Annotated[int, typer.Option(help="Files timed one by one for latency.")] = 50,
    workers: Annotated[Optional[int], typer.Option(help="Processes for feature extraction.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run's metrics, status and alerts as JSON.")] = False,
    split: Annotated[Optional[str], typer.Option(help="Only this split of the corpus: train or monitor (default: every file).")] = None,
    executor: ExecutorOption = "local",
    scheduler: SchedulerOption = None,
    checkpoints: CheckpointsOption = None,
) -> None:
    """Evaluate, record the run in the history, check the rules, send alerts, regenerate the dashboard."""
    from stegwatch.monitoring.monitor import monitor

    if fail_on not in (None, "warning", "critical"):
        raise ConfigError("--fail-on must be warning or critical")
    if (dataset_path is None) == (labels is None):
        raise ConfigError("give exactly one of --dataset-path (a stegwatch corpus) and --labels (a labelled CSV)")
    result = monitor(model_version, dataset_path, labels=labels, allow_in_sample=allow_in_sample, by_source=by_source, baseline=baseline, config=config, dashboard=dashboard, db=db, fail_on=fail_on,
                     workers=workers_or_all(workers), latency_sample=latency_sample, command=command_line(),
                     console=(lambda line: err.print(line, markup=False, highlight=False)),
                     scheduler=scheduler_for(executor, scheduler), split=split, checkpoints=checkpoints)
    if as_json:
        print_json({"run_id": result.metrics["run"]["run_id"], "status": result.status,
                    "alerts": [a.to_json_dict() for a in result.alerts],
                    "sinks": [vars(s) for s in result.sinks], "files": [str(f) for f in result.files]}, sort_keys=False)
    else:
        out.print(f"run {result.metrics['run']['run_id']}: status {result.status.upper()}, {len(result.alerts)} alert(s), "
                  f"{result.delivered} sent")
        excluded = result.metrics["excluded_in_sample"]
        if excluded["files"]:
            out.print(f"{excluded['files']} files ({excluded['cover_groups']} cover groups) from covers the model was fitted on: "
                      + ("kept (--allow-in-sample): this run is IN-SAMPLE" if excluded["kept"] else "left out"))
        for sink in result.sinks:
            if sink.error:
                err.print(f"[yellow]alert sink {escape(str(sink.sink))} failed after {sink.attempts} attempts: {escape(str(sink.error))}[/yellow]")
        out.print(f"dashboard: {escape(str(result.files[0]))} and {escape(str(result.files[1]))}")
    raise typer.Exit(result.exit_code)


@history_app.command("export")
@verb(ValueError)
def history_export(db: Annotated[Path, typer.Option(help="History database.")] = DEFAULT_DB) -> None:
    """Print every run of the history as JSON Lines (oldest first)."""
    from stegwatch.monitoring.history import export_jsonl

    sys.stdout.write(export_jsonl(db))


@baseline_app.command("accept")
@verb(KeyError, ValueError)
def baseline_accept(
    run_id: Annotated[str, typer.Argument(help="The run to accept as its model's baseline.")],
    db: Annotated[Path, typer.Option(help="History database.")] = DEFAULT_DB,
) -> None:
    """Accept a monitor run as the baseline of its model."""
    from stegwatch.monitoring.history import accept_baseline

    accept_baseline(run_id, db)
    out.print(f"baseline accepted: {escape(run_id)}")
