"""``stegwatch baseline``: the report comparing detectors on one corpus (``baseline accept`` is a monitor verb)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from stegwatch.cli._app import TRAIN_EXTRA_HELP, CheckpointsOption, baseline_app, escape, out, verb, workers_or_all
from stegwatch.errors import ConfigError
from stegwatch.provenance import command_line


@baseline_app.callback()
@verb(FileNotFoundError, ValueError)
def baseline_report_command(
    ctx: typer.Context,
    models: Annotated[Optional[list[str]], typer.Option("--models", help="Detectors to compare, in order: registered keys or model files.")] = None,
    corpus: Annotated[Optional[Path], typer.Option(help="Corpus folder holding manifest.jsonl.")] = None,
    folds: Annotated[int, typer.Option(help="Grouped folds (trainable detectors retrained per fold).")] = 5,
    out_file: Annotated[Path, typer.Option("--out", help="Markdown report (HTML and JSON twins beside it).")] = Path("docs/grok/baseline_report.md"),
    ablations: Annotated[Optional[list[Path]], typer.Option("--ablations", help="Ablation JSON from stegwatch ablate (repeatable).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the folds and the bootstrap.")] = 0,
    workers: Annotated[Optional[int], typer.Option(help="Processes for feature extraction.")] = None,
    train_extra: Annotated[Optional[list[Path]], typer.Option("--train-extra", help=TRAIN_EXTRA_HELP)] = None,
    evaluations: Annotated[Optional[list[Path]], typer.Option("--evaluations", help="Stored runs of `stegwatch evaluate --folds K --by-source` (their metrics.json) that stand for the models they evaluated, instead of evaluating them again: same model file, corpus, folds and target, checked.")] = None,
    latency_sample: Annotated[int, typer.Option(help="Files timed one by one for latency, per model.")] = 50,
    anchor: Annotated[Optional[str], typer.Option(help="Add the field's reference pipeline as a last column, on the same folds: sealwatch (DCTR/SPAM with its FLD ensemble; needs the optional extra stegwatch\\[anchor]).")] = None,
    checkpoints: CheckpointsOption = None,
) -> None:
    """Write the baseline report: overall numbers, significance, breakdowns, cover-source mismatch, ablations."""
    if ctx.invoked_subcommand is not None:
        return
    if not models or corpus is None:
        raise ConfigError("give --models M [M ...] and --corpus DIR (or use `stegwatch baseline accept RUN`)")
    from stegwatch.reports.baseline import baseline_report

    report = baseline_report(models, corpus, folds=folds, seed=seed, out=out_file, ablations=ablations,
                             workers=workers_or_all(workers), command=command_line(), anchor=anchor,
                             train_extra=train_extra, latency_sample=latency_sample, evaluations=evaluations,
                             checkpoints=checkpoints)
    for pair in report["comparisons"]:
        for sentence in pair["verdicts"]:
            out.print(escape(sentence))  # names models and methods, which a model card or manifest spells
    out.print(f"wrote {escape(str(out_file))} (and .html, .json); report run {report['identity']['run_id']}")
