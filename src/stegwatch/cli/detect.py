"""Detector verbs: ``train``, ``scan``, ``model-card render`` and ``schema``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from stegwatch.cli._app import (
    MODEL_HELP,
    TRAIN_EXTRA_HELP,
    ExecutorOption,
    SchedulerOption,
    app,
    card_app,
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

@app.command("train")
@verb(FileNotFoundError, ValueError)
def train_command(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the model file (model.onnx, v3_calibration.json, ...), model_card.json, training_log.jsonl.")],
    corpus: Annotated[Optional[Path], typer.Option(help="Corpus to train on (default: build/default-corpus with --preset).")] = None,
    preset: Annotated[Optional[str], typer.Option(help="Build (or reuse) this preset's corpus in build/<preset>-corpus and train on it.")] = None,
    model: Annotated[str, typer.Option(help="The detector kind to train (or calibrate): a registered key whose kind can be trained.")] = "v4",
    exclude_category: Annotated[Optional[list[str]], typer.Option("--exclude-category", help="Leave this clean category out of training (repeatable).")] = None,
    drop_stream: Annotated[Optional[list[str]], typer.Option("--drop-stream", help="Leave this feature stream out (repeatable).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split and the model.")] = 0,
    target_fpr: Annotated[float, typer.Option(help="False-positive rate the threshold is chosen for, on validation clean files.")] = DEFAULT_TARGET_FPR,
    workers: Annotated[Optional[int], typer.Option(help="Processes for feature extraction (default: all cores).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the model card as JSON.")] = False,
    train_extra: Annotated[Optional[list[Path]], typer.Option("--train-extra", help=TRAIN_EXTRA_HELP)] = None,
) -> None:
    """Train (or calibrate) a detector on a corpus split by cover_id; write the model and its card."""
    from stegwatch.detectors.registry import KINDS
    from stegwatch.detectors.train import TrainConfig, train
    from stegwatch.features.streams import STREAMS

    trainable = [key for key, kind in KINDS.items() if kind.train is not None]
    if model not in trainable:
        raise ConfigError(f"--model must be one of {', '.join(trainable)} (the detector kinds that can be trained)")
    unknown = [s for s in drop_stream or [] if s not in STREAMS]
    if unknown:
        raise ConfigError(f"unknown stream(s) {unknown}; streams: {', '.join(STREAMS)}")
    if corpus is None:
        from stegwatch.corpus.build import PRESETS, preset_corpus

        if preset is None:
            raise ConfigError(f"give --corpus DIR or --preset {'|'.join(PRESETS)}")
        with progress_bar("building corpus", not as_json) as progress:
            corpus = preset_corpus(preset, workers=workers_or_all(workers), progress=progress)
    config = TrainConfig(model=model, seed=seed, target_fpr=target_fpr, exclude_categories=tuple(exclude_category or ()),
                         drop_streams=tuple(drop_stream or ()), workers=workers_or_all(workers))
    command = command_line() or f"stegwatch train --model {model}"
    with progress_bar("features", not as_json) as progress:
        card = train(corpus, out_dir, config, command=command, progress=progress, extra=train_extra or ())
    if as_json:
        print_json(card)
        return
    held = card["held_out"]
    table = Table(title=f"{card['name']} {card['version']}: held-out part ({held['n_files']} files, covers never seen in training)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("count / n", justify="right")
    fpr = held["false_positive_rate"]
    table.add_row("false-positive rate", f"{fpr['rate']:.4%}" if fpr["rate"] is not None else "-", f"{fpr['count']} / {fpr['n']}")
    for key, row in held["detection_rate_by_method"].items():
        table.add_row(f"detection: {key}", f"{row['rate']:.2%}", f"{row['count']} / {row['n']}")
    table.add_row("AUC", f"{held['auc']:.4f}" if held["auc"] is not None else "-", "")
    out.print(table)
    out.print(f"threshold {card['threshold']['value']:.6f} for a target FPR of {card['threshold']['target_fpr']:.4%} "
              f"on {card['threshold']['n_clean']} validation clean files; written to {escape(str(out_dir))}")


@app.command("scan")
@verb(FileNotFoundError, ValueError)
def scan_command(
    paths: Annotated[list[str], typer.Argument(help="Files, folders (recursive) and globs.")],
    model: Annotated[str, typer.Option(help=MODEL_HELP)] = "v4",
    jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON record per line.")] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="CSV with one row per file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
    threshold: Annotated[Optional[float], typer.Option(help="Decision threshold on the score (default: the model's).")] = None,
    extract: Annotated[bool, typer.Option("--extract", help="Preview the payload where the detected method can be extracted.")] = False,
    workers: Annotated[Optional[int], typer.Option(help="Processes for feature extraction (default: all cores).")] = None,
    executor: ExecutorOption = "local",
    scheduler: SchedulerOption = None,
    cache: Annotated[Optional[Path], typer.Option(help="Feature cache file (default: $STEGWATCH_FEATURE_CACHE, else the default under .stegwatch/).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Compute every file's features; read and write no cache.")] = False,
) -> None:
    """Scan images with a detector: one record per file. Exit 0 when the scan completed, whatever it found."""
    from stegwatch.detectors.scan import scan
    from stegwatch.features.cache import DEFAULT_CACHE

    with progress_bar("scanning") as progress:
        result = scan(paths, model, threshold=threshold, workers=workers_or_all(workers), extract=extract,
                      scheduler=scheduler_for(executor, scheduler), cache=None if no_cache else (cache or DEFAULT_CACHE), progress=progress)
    detector, records = result.detector, result.records
    if jsonl:
        for record in records:
            print_json(record, indent=None, ensure_ascii=False)
    elif as_json:
        print_json(records, ensure_ascii=False)
    elif csv_out:
        import csv

        # Nested fields (why a file was flagged, every method's score) as JSON text in their cells.
        columns = ["path", "is_stego", "score", "method", "error", "model", "payload_length", "payload_preview",
                   "evidence", "method_scores"]
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for record in records:
            writer.writerow(record | {"model": f"{record['model'].get('name')} {record['model'].get('version')}"}
                            | {key: json.dumps(record.get(key) or {}, sort_keys=True) for key in ("evidence", "method_scores")})
    else:
        table = Table(title=f"{detector.name} {detector.version} (threshold {detector.threshold:.4f})")
        for column in ("file", "verdict", "score", "method", "detail"):
            table.add_column(column, justify="right" if column == "score" else "left")
        for r in records:
            if r["error"]:
                table.add_row(escape(r["path"]), "[yellow]unreadable[/yellow]", "-", "-", escape(r["error"]))
                continue
            verdict = "[red]stego[/red]" if r["is_stego"] else "[green]clean[/green]"
            detail = f"{r.get('payload_length', '')} bytes: {r['payload_preview']!r}" if r.get("payload_preview") else ""
            table.add_row(escape(r["path"]), verdict, f"{r['score']:.4f}", r["method"] or "-", escape(detail))
        out.print(table)
        flagged = sum(1 for r in records if r["is_stego"])
        errors = sum(1 for r in records if r["error"])
        out.print(f"{len(records)} files: {flagged} flagged, {errors} unreadable")


@card_app.command("render")
@verb(FileNotFoundError, ValueError)
def model_card_render(
    v3: Annotated[Optional[Path], typer.Option(help="Folder of the V3 model card (default: the shipped one).")] = None,
    v4: Annotated[Optional[Path], typer.Option(help="Folder of the V4 model card (default: the shipped one).")] = None,
    doc: Annotated[Path, typer.Option("--out", help="Markdown page to write.")] = Path("docs/detectors.md"),
    readme: Annotated[Optional[Path], typer.Option(help="Also refresh the quality block of this README.")] = None,
) -> None:
    """Render detector quality (V3 vs V4, held-out numbers) from the model cards."""
    from stegwatch.detectors import MODELS_DIR
    from stegwatch.reports.model_quality import render_documents

    for path in render_documents(v3 or MODELS_DIR / "v3", v4 or MODELS_DIR / "v4", doc, readme):
        out.print(f"wrote {escape(str(path))}")


@app.command("schema")
@verb()
def schema(
    name: Annotated[str, typer.Argument(help="manifest, sidecar, embedding or metrics")],
) -> None:
    """Print the JSON Schema of a record type."""
    from stegwatch.format.records import SCHEMAS, export_schema, json_schema_of

    if name == "metrics":
        from stegwatch.evaluation.schema import Metrics

        print_json(json_schema_of(Metrics))
    elif name in SCHEMAS:
        print_json(export_schema(name))
    else:
        raise ConfigError(f"unknown schema {name!r}; choose from {', '.join(sorted([*SCHEMAS, 'metrics']))}")
