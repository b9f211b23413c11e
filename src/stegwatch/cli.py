"""The ``stegwatch`` command: a thin layer of verbs over the library.

Exit codes: 0 the job completed and found nothing wrong; 1 the job completed
and found a problem (a label that failed, an unreadable file, a failed job);
2 the command could not run (bad arguments, a conflicting output folder, no
manifest).
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from stegwatch import __version__

app = typer.Typer(
    name="stegwatch",
    help="Honest eyes for image-steganography detectors.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
corpus_app = typer.Typer(help="Build labelled benchmark corpora in the Starlight format.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")
card_app = typer.Typer(help="Documents rendered from model cards.", no_args_is_help=True)
app.add_typer(card_app, name="model-card")
history_app = typer.Typer(help="The monitor run history.", no_args_is_help=True)
app.add_typer(history_app, name="history")
baseline_app = typer.Typer(
    help="The V3-vs-V4 baseline report (stegwatch baseline --models v3 v4 --corpus DIR), "
    "and monitor baselines (stegwatch baseline accept RUN).",
    invoke_without_command=True,
)
app.add_typer(baseline_app, name="baseline")

out = Console()
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        out.print(f"stegwatch {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """stegwatch: corpora, detectors, evaluation and monitoring for steganalysis."""


ExecutorOption = Annotated[str, typer.Option("--executor", help="local (process pool) or dask (a Dask distributed cluster).")]
SchedulerOption = Annotated[Optional[str], typer.Option("--scheduler", help="Dask scheduler address (default with --executor dask: a LocalCluster here).")]


def _scheduler(executor: str, scheduler: str | None) -> str | None:
    """None for the local process pool; a Dask scheduler address (or a LocalCluster) for ``dask``."""
    from stegwatch.corpus._parallel import LOCAL_CLUSTER

    if executor not in ("local", "dask"):
        err.print("[red]--executor must be local or dask[/red]")
        raise typer.Exit(2)
    if executor == "local":
        if scheduler:
            err.print("[red]--scheduler needs --executor dask[/red]")
            raise typer.Exit(2)
        return None
    return scheduler or LOCAL_CLUSTER


def _workers(value: int | None) -> int:
    return value if value and value > 0 else (os.cpu_count() or 1)


@contextmanager
def _progress(label: str, enabled: bool = True):
    """A progress bar on stderr; yields a (done, total) callback."""
    if not enabled or not err.is_terminal and os.environ.get("STEGWATCH_PROGRESS") != "1":
        yield None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def _counts_table(title: str, column: str, counts: dict[str, int]) -> Table:
    table = Table(title=title)
    table.add_column(column)
    table.add_column("files", justify="right")
    for key, value in sorted(counts.items()):
        table.add_row(key, str(value))
    table.add_row("[bold]total[/bold]", f"[bold]{sum(counts.values())}[/bold]")
    return table


def _methods_table(counts: dict[str, int]) -> Table:
    from stegwatch.stego import METHODS

    table = Table(title="Stego files per method")
    for column in ("method", "category", "payload unit", "files"):
        table.add_column(column, justify="right" if column == "files" else "left")
    for key, method in METHODS.items():
        if key in counts:
            table.add_row(key, method.category, _UNITS.get(method.payload_unit, method.payload_unit), str(counts[key]))
    table.add_row("[bold]total[/bold]", "", "", f"[bold]{sum(counts.values())}[/bold]")
    return table


_UNITS = {"bpp": "bits per pixel", "bpnzac": "bits per non-zero AC coefficient", "bytes": "bytes"}


@corpus_app.command("build")
def corpus_build(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder of the corpus (created if missing).")],
    preset: Annotated[str, typer.Option(help="smoke (a few hundred files) or default (about 10,000).")] = "default",
    covers: Annotated[Optional[list[Path]], typer.Option("--covers", help="Folder of your own cover images (repeatable).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for every random choice; same seed, same bytes.")] = 0,
    workers: Annotated[Optional[int], typer.Option(help="Processes to use (default: all cores).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Build (or resume, or confirm) a labelled corpus."""
    from stegwatch.corpus.build import PRESETS, BuildConflict, build_corpus

    if preset not in PRESETS:
        err.print(f"[red]unknown preset {preset!r}; choose from {', '.join(PRESETS)}[/red]")
        raise typer.Exit(2)
    try:
        with _progress("building", not as_json) as progress:
            report = build_corpus(out_dir, preset=preset, seed=seed, covers=covers or [], workers=_workers(workers), progress=progress)
    except BuildConflict as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(report.to_json_dict(), indent=2, sort_keys=True))
    else:
        data = report.to_json_dict()
        out.print(_counts_table("Files per label", "label", data["by_label"]))
        out.print(_methods_table(data["by_method"]))
        by_label_category = {}
        for entry in report.entries:
            key = f"{entry.label}: {entry.category}"
            by_label_category[key] = by_label_category.get(key, 0) + 1
        out.print(_counts_table("Files per label and category", "label: category", by_label_category))
        out.print(
            f"{len(report.entries)} files, {report.bytes_on_disk / 1e6:.1f} MB on disk in {report.out}; "
            f"{report.jobs_run} made, {report.jobs_reused} already there; {report.seconds:.1f} s"
        )
        for error in report.errors:
            err.print(f"[yellow]skipped[/yellow] {error.path}: {error.reason}")
        for method_key, hint in report.skipped_methods.items():
            err.print(f"[yellow]method {method_key} skipped[/yellow]: {hint}")
    failed_jobs = [e for e in report.errors if e.path.startswith(("photo:", "negative:", "stego:", "user:"))]
    raise typer.Exit(1 if failed_jobs else 0)


@app.command("validate-streams")
def validate_streams(
    corpus: Annotated[Path, typer.Argument(help="Corpus folder holding manifest.jsonl.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    workers: Annotated[Optional[int], typer.Option(help="Processes to use (default: all cores).")] = None,
) -> None:
    """Prove every label: extract each stego payload, search every clean file."""
    from stegwatch.corpus.validate import validate_corpus
    from stegwatch.format.manifest import ManifestError

    try:
        with _progress("validating", not as_json) as progress:
            report = validate_corpus(corpus, workers=_workers(workers), progress=progress)
    except ManifestError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    data = report.to_json_dict()
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
        raise typer.Exit(0 if report.ok else 1)
    methods = Table(title="Stego files: every label proven by extraction (payload_sha256) or by change rate (simulators)")
    for column in ("method", "checked", "passed", "failed", "unverified", "unreadable", "proof"):
        methods.add_column(column, justify="left" if column in ("method", "proof") else "right")
    for name, row in report.by_method().items():
        style = "green" if row.passed == row.checked else "red"
        proof = "change rate" if row.by_change_rate else "extraction"
        methods.add_row(name, str(row.checked), f"[{style}]{row.passed}[/{style}]", str(row.failed), str(row.unverified), str(row.errors), proof)
    out.print(methods)
    clean = Table(title="Clean files: payload-shaped extractions (every unkeyed extractor, both bit orders)")
    for column in ("category", "checked", "payload-shaped", "unreadable"):
        clean.add_column(column, justify="left" if column == "category" else "right")
    for name, row in report.by_clean_category().items():
        clean.add_row(name, str(row.checked), str(row.payload_shaped), str(row.errors))
    out.print(clean)
    for error in report.manifest_errors:
        err.print(f"[red]manifest[/red] {error.where}: {error.reason}")
    for check in data["problems"][:50]:
        detail = check["reason"] or "; ".join(f"{f['method']} {f['stream']}: {f['preview']!r}" for f in check["found"])
        err.print(f"[yellow]{check['status']}[/yellow] {check['file_path']}: {detail}")
    if not report.ok:
        verdict = "[red]some labels could not be proven[/red]"
    elif report.unverified:
        verdict = f"[yellow]{len(report.unverified)} stego labels could not be checked on this machine (see above)[/yellow]"
    else:
        verdict = "[green]every stego label proven[/green]"
    out.print(f"{len(report.checks)} files checked: {verdict}")
    raise typer.Exit(0 if report.ok else 1)


@app.command("extract")
def extract(
    # readable=False: an unreadable file is reported with the others' results, not refused while parsing arguments.
    files: Annotated[list[Path], typer.Argument(help="Image files to search.", readable=False)],
    method: Annotated[Optional[str], typer.Option(help="Only this method's stream (default: all).")] = None,
    key: Annotated[Optional[str], typer.Option(help="Key for keyed methods (lsbm); default: the sidecar's.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON record per file.")] = False,
) -> None:
    """Print what each stream of each file holds (both bit orders, lenient framing)."""
    from stegwatch.corpus.validate import describe
    from stegwatch.format.files import UnreadableFile, load_carrier
    from stegwatch.format.manifest import ManifestError, read_sidecar
    from stegwatch.stego import METHODS, extract_all

    if method and method not in METHODS:
        err.print(f"[red]unknown method {method!r}; known: {', '.join(METHODS)}[/red]")
        raise typer.Exit(2)
    unreadable = 0
    for path in files:
        record: dict = {"path": str(path), "error": None, "streams": {}}
        try:
            carrier = load_carrier(path)
        except UnreadableFile as exc:
            unreadable += 1
            record["error"] = exc.reason
        else:
            hint_order, hint_key = None, key
            try:
                sidecar = read_sidecar(path)
            except ManifestError:
                sidecar = None
            if sidecar is not None:
                hint_order, hint_key = sidecar.embedding.bit_order, key or sidecar.key
            found = extract_all(carrier, methods=[method] if method else None, bit_order=hint_order, key=hint_key)
            record["format"], record["mode"], record["size"] = carrier.format, carrier.image.mode, list(carrier.image.size)
            record["streams"] = {name: [describe(x) | {"payload_shaped": x.payload_shaped} for x in xs] for name, xs in found.items()}
        if as_json:
            print(json.dumps(record, sort_keys=True, ensure_ascii=False))
            continue
        if record["error"]:
            err.print(f"[red]{path}: {record['error']}[/red]")
            continue
        table = Table(title=f"{path} ({record['format']}, {record['mode']}, {record['size'][0]}x{record['size'][1]})")
        for column in ("method", "stream", "bit order", "bytes", "payload-shaped", "preview"):
            table.add_column(column)
        for name, xs in record["streams"].items():
            if not xs:
                table.add_row(name, "-", "-", "0", "no", "[dim]nothing found[/dim]")
            for x in xs:
                table.add_row(name, x["stream"], x["bit_order"] or "-", str(x["length"]), "yes" if x["payload_shaped"] else "no", x["preview"])
        out.print(table)
    raise typer.Exit(1 if unreadable else 0)


@app.command("train")
def train_command(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for model.onnx (or v3_calibration.json), model_card.json, training_log.jsonl.")],
    corpus: Annotated[Optional[Path], typer.Option(help="Corpus to train on (default: build/default-corpus with --preset).")] = None,
    preset: Annotated[Optional[str], typer.Option(help="Build (or reuse) this preset's corpus in build/<preset>-corpus and train on it.")] = None,
    model: Annotated[str, typer.Option(help="v4 (learned, ONNX) or v3 (calibrate the classical statistics).")] = "v4",
    exclude_category: Annotated[Optional[list[str]], typer.Option("--exclude-category", help="Leave this clean category out of training (repeatable).")] = None,
    drop_stream: Annotated[Optional[list[str]], typer.Option("--drop-stream", help="Leave this feature stream out (repeatable).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split and the model.")] = 0,
    target_fpr: Annotated[float, typer.Option(help="False-positive rate the threshold is chosen for, on validation clean files.")] = 0.0005,
    workers: Annotated[Optional[int], typer.Option(help="Processes for feature extraction (default: all cores).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the model card as JSON.")] = False,
) -> None:
    """Train V4 (or calibrate V3) on a corpus split by cover_id; write the model and its card."""
    from stegwatch.detectors.train import TrainConfig, train
    from stegwatch.features.streams import STREAMS

    if model not in ("v3", "v4"):
        err.print("[red]--model must be v3 or v4[/red]")
        raise typer.Exit(2)
    unknown = [s for s in drop_stream or [] if s not in STREAMS]
    if unknown:
        err.print(f"[red]unknown stream(s) {unknown}; streams: {', '.join(STREAMS)}[/red]")
        raise typer.Exit(2)
    if corpus is None:
        if preset is None:
            err.print("[red]give --corpus DIR or --preset smoke|default[/red]")
            raise typer.Exit(2)
        from stegwatch.corpus.build import build_corpus

        corpus = Path("build") / f"{preset}-corpus"
        with _progress("building corpus", not as_json) as progress:
            build_corpus(corpus, preset=preset, seed=0, workers=_workers(workers), progress=progress)
    config = TrainConfig(model=model, seed=seed, target_fpr=target_fpr, exclude_categories=tuple(exclude_category or ()),
                         drop_streams=tuple(drop_stream or ()), workers=_workers(workers))
    command = _command_line() or f"stegwatch train --model {model}"
    try:
        with _progress("features", not as_json) as progress:
            card = train(corpus, out_dir, config, command=command, progress=progress)
    except (FileNotFoundError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(card, indent=2, sort_keys=True))
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
              f"on {card['threshold']['n_clean']} validation clean files; written to {out_dir}")


@app.command("scan")
def scan_command(
    paths: Annotated[list[str], typer.Argument(help="Files, folders (recursive) and globs.")],
    model: Annotated[str, typer.Option(help="v3, v4, or a model file (.onnx / V3 .json).")] = "v4",
    jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON record per line.")] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="CSV with one row per file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
    threshold: Annotated[Optional[float], typer.Option(help="Decision threshold on the score (default: the model's).")] = None,
    extract: Annotated[bool, typer.Option("--extract", help="Preview the payload where the detected method can be extracted.")] = False,
    workers: Annotated[Optional[int], typer.Option(help="Processes for feature extraction (default: all cores).")] = None,
    executor: ExecutorOption = "local",
    scheduler: SchedulerOption = None,
    cache: Annotated[Optional[Path], typer.Option(help="Feature cache file (default: $STEGWATCH_FEATURE_CACHE or .stegwatch/features.sqlite).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Compute every file's features; read and write no cache.")] = False,
) -> None:
    """Scan images with a detector: one record per file. Exit 0 when the scan completed, whatever it found."""
    from stegwatch.detectors import load_detector
    from stegwatch.detectors.scan import scan

    try:
        detector = load_detector(model, threshold)
    except (FileNotFoundError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    from stegwatch.features.cache import default_cache_path

    with _progress("scanning") as progress:
        records = scan(paths, detector, workers=_workers(workers), extract=extract, scheduler=_scheduler(executor, scheduler),
                       cache=None if no_cache else (cache or default_cache_path()), progress=progress)
    if jsonl:
        for record in records:
            print(json.dumps(record, sort_keys=True, ensure_ascii=False))
    elif as_json:
        print(json.dumps(records, indent=2, sort_keys=True, ensure_ascii=False))
    elif csv_out:
        import csv

        columns = ["path", "is_stego", "score", "method", "error", "model", "payload_length", "payload_preview"]
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for record in records:
            writer.writerow(record | {"model": f"{record['model'].get('name')} {record['model'].get('version')}"})
    else:
        table = Table(title=f"{detector.name} {detector.version} (threshold {detector.threshold:.4f})")
        for column in ("file", "verdict", "score", "method", "detail"):
            table.add_column(column, justify="right" if column == "score" else "left")
        for r in records:
            if r["error"]:
                table.add_row(r["path"], "[yellow]unreadable[/yellow]", "-", "-", r["error"])
                continue
            verdict = "[red]stego[/red]" if r["is_stego"] else "[green]clean[/green]"
            detail = f"{r.get('payload_length', '')} bytes: {r['payload_preview']!r}" if r.get("payload_preview") else ""
            table.add_row(r["path"], verdict, f"{r['score']:.4f}", r["method"] or "-", detail)
        out.print(table)
        flagged = sum(1 for r in records if r["is_stego"])
        errors = sum(1 for r in records if r["error"])
        out.print(f"{len(records)} files: {flagged} flagged, {errors} unreadable")


@app.command("evaluate")
def evaluate_command(
    model: Annotated[str, typer.Option(help="v3, v4, or a model file (.onnx / V3 .json).")],
    corpus: Annotated[Path, typer.Option(help="Corpus folder holding manifest.jsonl.")],
    folds: Annotated[Optional[int], typer.Option(help="k-fold cross-validation grouped by cover_id (V4 is retrained per fold).")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Folder for metrics.json (written atomically).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics.json to stdout.")] = False,
    target_fpr: Annotated[float, typer.Option(help="The false-positive rate to prove (and, per fold, to choose thresholds for).")] = 0.0005,
    threshold: Annotated[Optional[float], typer.Option(help="Override the model's threshold (without folds).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the fold assignment.")] = 0,
    latency_sample: Annotated[int, typer.Option(help="Files timed one by one for latency (0: skip).")] = 100,
    workers: Annotated[Optional[int], typer.Option(help="Processes for feature extraction (default: all cores).")] = None,
    executor: ExecutorOption = "local",
    scheduler: SchedulerOption = None,
) -> None:
    """Evaluate a detector: FPR with exact intervals, detection per method, ROC/AUC, P_E, MD5, folds, latency."""
    from stegwatch.evaluation.evaluate import evaluate
    from stegwatch.format.files import write_text_atomic

    try:
        with _progress("features", not as_json) as progress:
            metrics = evaluate(model, corpus, folds=folds, seed=seed, target_fpr=target_fpr, threshold=threshold,
                               workers=_workers(workers), latency_sample=latency_sample, command=_command_line(), progress=progress,
                               scheduler=_scheduler(executor, scheduler))
    except (FileNotFoundError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    text = json.dumps(metrics, indent=2, sort_keys=True) + "\n"
    if out_dir:
        write_text_atomic(Path(out_dir) / "metrics.json", text)
    if as_json:
        print(text, end="")
        return
    fpr = metrics["false_positive_rate"]
    table = Table(title=f"{metrics['run']['model']['name']} {metrics['run']['model']['version']} on {corpus} (run {metrics['run']['run_id']})")
    for column in ("measure", "value", "95% interval", "count / n"):
        table.add_column(column, justify="left" if column == "measure" else "right")

    def row(name: str, r: dict) -> None:
        value = f"{r['rate']:.4%}" if r["rate"] is not None else "-"
        table.add_row(name, value, f"{r['ci_low']:.4%} - {r['ci_high']:.4%}", f"{r['count']} / {r['n']}")

    row("false-positive rate", fpr)
    for key, r in metrics["false_positive_rate_by_category"].items():
        row(f"  FPR {key}", r)
    for key, r in metrics["detection_rate_by_method"].items():
        row(f"detection {key}", r)
    table.add_row("ROC AUC", f"{metrics['roc_auc']:.4f}" if metrics["roc_auc"] is not None else "-", "", "")
    table.add_row("P_E / MD5", f"{metrics['p_e']:.4f} / {metrics['md5']:.4f}" if metrics["p_e"] is not None else "-", "", "")
    out.print(table)
    proven = "proven" if metrics["fpr_target_proven"] else "not proven"
    out.print(f"FPR below {metrics['fpr_target']:.4%}: {proven} (upper bound {fpr['upper_bound']:.4%} with {fpr['n']} clean files; "
              f"zero false positives on {metrics['n_needed_for_target']} would prove it); {metrics['unreadable']} unreadable files")
    if metrics["latency"]:
        lat = metrics["latency"]
        out.print(f"latency p50 {lat['per_image_ms']['p50']:.1f} ms, p95 {lat['per_image_ms']['p95']:.1f} ms; {lat['images_per_second']:.1f} images/s")
    if out_dir:
        out.print(f"wrote {Path(out_dir) / 'metrics.json'}")


@app.command("fp-regression")
def fp_regression_command(
    model: Annotated[str, typer.Option(help="v3, v4, or a model file.")],
    corpus: Annotated[Path, typer.Option(help="Corpus folder holding manifest.jsonl.")],
    baseline: Annotated[Optional[Path], typer.Option(help="Baseline of false positives (JSON).")] = None,
    update_baseline: Annotated[bool, typer.Option("--update-baseline", help="Write the current false positives as the new baseline.")] = False,
    limit: Annotated[float, typer.Option(help="Fail when the FPR's one-sided 95% upper bound exceeds this.")] = 0.0005,
    threshold: Annotated[Optional[float], typer.Option(help="Override the model's threshold.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    workers: Annotated[Optional[int], typer.Option(help="Processes for feature extraction.")] = None,
) -> None:
    """List every false positive on clean files and compare with a baseline. Exit 1 on a new one or a high FPR bound."""
    from stegwatch.evaluation.fp_regression import fp_regression

    try:
        report = fp_regression(model, corpus, baseline=baseline, update_baseline=update_baseline, limit=limit,
                               threshold=threshold, workers=_workers(workers), command=_command_line())
    except (FileNotFoundError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        table = Table(title=f"False positives of {report['model']['name']} {report['model']['version']}")
        for column in ("change", "category", "file", "score"):
            table.add_column(column)
        for change in ("new", "unchanged", "fixed"):
            for r in report["changes"][change]:
                table.add_row(change, r["category"], r["file_path"], f"{r['score']:.4f}")
        out.print(table)
        fpr = report["false_positive_rate"]
        out.print(f"FPR {fpr['count']}/{fpr['n']} (upper bound {fpr['upper_bound']:.4%}, limit {report['limit']:.4%}); "
                  + ("; ".join(report["reasons"]) if report["failed"] else "no regression"))
    raise typer.Exit(1 if report["failed"] else 0)


@app.command("dataset-metrics")
def dataset_metrics_command(
    corpus: Annotated[Path, typer.Argument(help="Corpus folder holding manifest.jsonl.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    no_validate: Annotated[bool, typer.Option("--no-validate", help="Skip proving labels (validate-streams).")] = False,
    workers: Annotated[Optional[int], typer.Option(help="Processes to use (default: all cores).")] = None,
) -> None:
    """Dataset quality: counts, balance, entropy, near-duplicates, cover sources, label validity."""
    from stegwatch.evaluation.dataset import dataset_metrics
    from stegwatch.format.manifest import ManifestError

    try:
        metrics = dataset_metrics(corpus, workers=_workers(workers), validate=not no_validate)
    except ManifestError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(metrics, indent=2, sort_keys=True))
        return
    for name, counts in metrics["counts"].items():
        if name in ("label", "method", "format", "mode"):
            out.print(_counts_table(f"Files per {name}", name, counts))
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
    if "label_validity" in metrics:
        v = metrics["label_validity"]
        table.add_row("stego labels proven", f"{v['stego_passed']} / {v['stego_checked']}", "" if v["stego_passed"] == v["stego_checked"] else "check")
    out.print(table)


@app.command("logs")
def logs_command(
    paths: Annotated[list[Path], typer.Argument(help="Training logs (files, or TensorBoard run folders).", readable=False)],
    fmt: Annotated[Optional[str], typer.Option("--format", help="stegwatch, csv, keras-history, tensorboard or starlight (default: detect).")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Write loss curves to this PNG.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the tidy table, summary and problems as JSON.")] = False,
) -> None:
    """Parse training logs into one tidy table (run, step, metric, value) and summarize convergence."""
    from stegwatch.evaluation.logs import FORMATS, convergence, parse_logs, plot_losses

    if fmt and fmt not in FORMATS:
        err.print(f"[red]unknown format {fmt!r}; choose from {', '.join(FORMATS)}[/red]")
        raise typer.Exit(2)
    try:
        parsed = parse_logs(paths, fmt)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    summary = convergence(parsed.table)
    if plot and not parsed.table.empty:
        plot_losses(parsed.table, plot)
    if as_json:
        print(json.dumps({"formats": parsed.formats, "rows": parsed.table.to_dict(orient="records"), "convergence": summary,
                          "problems": parsed.problems}, indent=2, sort_keys=True))
        return
    table = Table(title="Convergence")
    for column in ("run", "format", "steps", "best step", "final train loss", "final val loss", "gap", "stalled since"):
        table.add_column(column)

    def fmt_number(value) -> str:
        return "-" if value is None else f"{value:.4f}"

    for run, row in summary.items():
        table.add_row(run, parsed.formats.get(run, "?"), str(row["steps"]), str(row.get("best_step")),
                      fmt_number(row.get("final_train_loss")), fmt_number(row.get("final_val_loss")),
                      fmt_number(row.get("train_val_gap")), str(row.get("stopped_improving_since") or "-"))
    out.print(table)
    for problem in parsed.problems:
        where = f"line {problem['line']}" if problem.get("line") else "file"
        err.print(f"[yellow]{problem['run']} {where}[/yellow]: {problem['reason']} (skipped)")
    if plot:
        out.print(f"wrote {plot}")


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on (default: loopback only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    db: Annotated[Path, typer.Option(help="History database (monitor runs; production events are stored beside them).")] = Path(".stegwatch/history.db"),
    config: Annotated[Optional[Path], typer.Option(help="TOML file of rules, alert sinks and a [serve] table.")] = None,
) -> None:
    """Serve the live dashboard, the history API, production event ingestion and Prometheus metrics.

    Writes need a bearer token: set STEGWATCH_TOKEN (or the [serve] token_env variable) before starting;
    without one, writes are refused.
    """
    from stegwatch.serving.app import create_app
    from stegwatch.serving.config import ServeConfig
    from stegwatch.serving.server import serve

    try:
        settings = ServeConfig.load(config, db=db)
        application = create_app(settings)
    except (FileNotFoundError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]listening on {host}: reachable from other machines; put it behind TLS[/yellow]")
    if not os.environ.get(settings.token_env):
        err.print(f"[yellow]{settings.token_env} is not set: event and feedback writes will be refused[/yellow]")
    err.print(f"stegwatch serve on http://{host}:{port}/ (history {settings.db})")
    serve(application, settings, host=host, port=port)


@app.command("monitor")
def monitor_command(
    model_version: Annotated[str, typer.Option("--model-version", help="v3, v4, or a model file.")],
    dataset_path: Annotated[Path, typer.Option("--dataset-path", help="Corpus folder holding manifest.jsonl.")],
    baseline: Annotated[Optional[str], typer.Option(help="Baseline run id or metrics file (default: the accepted baseline).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="TOML file of rules, alert sinks and the dashboard path.")] = None,
    db: Annotated[Path, typer.Option(help="History database.")] = Path(".stegwatch/history.db"),
    dashboard: Annotated[Optional[Path], typer.Option(help="Markdown dashboard to write (default: the config's, else docs/grok/performance_dashboard.md).")] = None,
    fail_on: Annotated[Optional[str], typer.Option("--fail-on", help="Exit 1 on warning or critical.")] = None,
    latency_sample: Annotated[int, typer.Option(help="Files timed one by one for latency.")] = 50,
    workers: Annotated[Optional[int], typer.Option(help="Processes for feature extraction.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run's metrics, status and alerts as JSON.")] = False,
    executor: ExecutorOption = "local",
    scheduler: SchedulerOption = None,
) -> None:
    """Evaluate, record the run in the history, check the rules, send alerts, regenerate the dashboard."""
    from stegwatch.monitoring.monitor import MonitorConfig, monitor

    if fail_on not in (None, "warning", "critical"):
        err.print("[red]--fail-on must be warning or critical[/red]")
        raise typer.Exit(2)
    try:
        loaded = MonitorConfig.load(config)
        if dashboard is not None:
            loaded.dashboard = dashboard
        result = monitor(model_version, dataset_path, baseline=baseline, config=loaded, db=db, fail_on=fail_on,
                         workers=_workers(workers), latency_sample=latency_sample, command=_command_line(),
                         console=(lambda line: err.print(line, markup=False, highlight=False)),
                         scheduler=_scheduler(executor, scheduler))
    except (FileNotFoundError, ValueError, KeyError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps({"run_id": result.metrics["run"]["run_id"], "status": result.status,
                          "alerts": [a.to_json_dict() for a in result.alerts],
                          "sinks": [vars(s) for s in result.sinks], "files": [str(f) for f in result.files]}, indent=2))
    else:
        out.print(f"run {result.metrics['run']['run_id']}: status {result.status.upper()}, {len(result.alerts)} alert(s), "
                  f"{result.delivered} sent")
        for sink in result.sinks:
            if sink.error:
                err.print(f"[yellow]alert sink {sink.sink} failed after {sink.attempts} attempts: {sink.error}[/yellow]")
        out.print(f"dashboard: {result.files[0]} and {result.files[1]}")
    raise typer.Exit(result.exit_code)


@history_app.command("export")
def history_export(db: Annotated[Path, typer.Option(help="History database.")] = Path(".stegwatch/history.db")) -> None:
    """Print every run of the history as JSON Lines (oldest first)."""
    from stegwatch.monitoring.history import export_jsonl

    try:
        sys.stdout.write(export_jsonl(db))
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@baseline_app.callback()
def baseline_report_command(
    ctx: typer.Context,
    models: Annotated[Optional[list[str]], typer.Option("--models", help="Models to compare, in order (v3 v4 or files).")] = None,
    corpus: Annotated[Optional[Path], typer.Option(help="Corpus folder holding manifest.jsonl.")] = None,
    folds: Annotated[int, typer.Option(help="Grouped folds (V4 retrained per fold).")] = 5,
    out_file: Annotated[Path, typer.Option("--out", help="Markdown report (HTML and JSON twins beside it).")] = Path("docs/grok/baseline_report.md"),
    ablations: Annotated[Optional[list[Path]], typer.Option("--ablations", help="Ablation JSON from stegwatch ablate (repeatable).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the folds and the bootstrap.")] = 0,
    workers: Annotated[Optional[int], typer.Option(help="Processes for feature extraction.")] = None,
) -> None:
    """Write the baseline report: overall numbers, significance, breakdowns, cover-source mismatch, ablations."""
    if ctx.invoked_subcommand is not None:
        return
    if not models or corpus is None:
        err.print("[red]give --models M [M ...] and --corpus DIR (or use `stegwatch baseline accept RUN`)[/red]")
        raise typer.Exit(2)
    from stegwatch.reports.baseline import baseline_report

    try:
        report = baseline_report(models, corpus, folds=folds, seed=seed, out=out_file, ablations=ablations,
                                 workers=_workers(workers), command=_command_line())
    except (FileNotFoundError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    for pair in report["comparisons"]:
        for sentence in pair["verdicts"]:
            out.print(sentence)
    out.print(f"wrote {out_file} (and .html, .json); report run {report['identity']['run_id']}")


@app.command("ablate")
def ablate_command(
    corpus: Annotated[Path, typer.Option(help="Corpus folder holding manifest.jsonl.")],
    by: Annotated[str, typer.Option(help="category (negatives) or stream (features).")],
    model: Annotated[str, typer.Option(help="The V4 model whose settings are retrained.")] = "v4",
    folds: Annotated[int, typer.Option(help="Grouped folds, the same for every variant.")] = 3,
    only: Annotated[Optional[list[str]], typer.Option("--only", help="Ablate only these categories or streams (repeatable).")] = None,
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Write the ablation JSON here.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the folds.")] = 0,
    workers: Annotated[Optional[int], typer.Option(help="Processes for feature extraction.")] = None,
) -> None:
    """Retrain V4 without each negatives category (or each stream) on the same grouped folds; report the changes."""
    from stegwatch.evaluation.ablation import ablate
    from stegwatch.format.files import write_text_atomic

    try:
        result = ablate(model, corpus, by=by, folds=folds, seed=seed, only=only, workers=_workers(workers), command=_command_line())
    except (FileNotFoundError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if out_file:
        write_text_atomic(out_file, json.dumps(result, indent=1, sort_keys=True) + "\n")
    table = Table(title=f"Ablation by {by} ({folds} folds); full model FPR {result['full']['false_positive_rate']['count']}/"
                        f"{result['full']['false_positive_rate']['n']}, AUC {result['full']['roc_auc']:.4f}")
    for column in ("without", "FPR", "change in FPR (points)", "change in AUC"):
        table.add_column(column)
    for item, row in result["variants"].items():
        fpr = row["false_positive_rate"]
        table.add_row(item, f"{fpr['count']}/{fpr['n']}", f"{100 * row['change']['false_positive_rate']:+.3f}", f"{row['change']['roc_auc']:+.4f}")
    out.print(table)


@baseline_app.command("accept")
def baseline_accept(
    run_id: Annotated[str, typer.Argument(help="The run to accept as its model's baseline.")],
    db: Annotated[Path, typer.Option(help="History database.")] = Path(".stegwatch/history.db"),
) -> None:
    """Accept a monitor run as the baseline of its model."""
    from stegwatch.monitoring.history import accept_baseline

    try:
        accept_baseline(run_id, db)
    except (KeyError, ValueError) as exc:
        err.print(f"[red]{exc.args[0]}[/red]")
        raise typer.Exit(2) from None
    out.print(f"baseline accepted: {run_id}")


def _command_line() -> str:
    """The command as typed, for run records; empty when stegwatch was not started from its own command."""
    program = Path(sys.argv[0]).name if sys.argv else ""
    if program == "stegwatch":
        return "stegwatch " + " ".join(sys.argv[1:])
    if program == "monitor_performance.py":
        return "scripts/monitor_performance.py " + " ".join(sys.argv[1:])
    return ""


@card_app.command("render")
def model_card_render(
    v3: Annotated[Optional[Path], typer.Option(help="Folder of the V3 model card (default: the shipped one).")] = None,
    v4: Annotated[Optional[Path], typer.Option(help="Folder of the V4 model card (default: the shipped one).")] = None,
    doc: Annotated[Path, typer.Option("--out", help="Markdown page to write.")] = Path("docs/detectors.md"),
    readme: Annotated[Optional[Path], typer.Option(help="Also refresh the quality block of this README.")] = None,
) -> None:
    """Render detector quality (V3 vs V4, held-out numbers) from the model cards."""
    from stegwatch.detectors import MODELS_DIR
    from stegwatch.reports.model_quality import render_documents

    try:
        written = render_documents(v3 or MODELS_DIR / "v3", v4 or MODELS_DIR / "v4", doc, readme)
    except (FileNotFoundError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    for path in written:
        out.print(f"wrote {path}")


@app.command("schema")
def schema(
    name: Annotated[str, typer.Argument(help="manifest, sidecar, embedding or metrics")],
) -> None:
    """Print the JSON Schema of a record type."""
    from stegwatch.format.records import export_schema, json_schema_of

    if name == "metrics":
        from stegwatch.evaluation.schema import Metrics

        print(json.dumps(json_schema_of(Metrics), indent=2, sort_keys=True))
        return
    try:
        print(json.dumps(export_schema(name), indent=2, sort_keys=True))
    except KeyError as exc:
        err.print(f"[red]{exc.args[0]} or metrics[/red]")
        raise typer.Exit(2) from None


@app.command("methods")
def methods(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the steganography methods stegwatch can embed and extract."""
    from stegwatch.stego import METHODS

    rows = [
        {"key": m.key, "category": m.category, "technique": m.technique, "ai42": m.ai42, "carriers": list(m.carriers),
         "bit_order": m.ordered, "keyed": m.keyed, "payload_unit": m.payload_unit, "framing": m.framing,
         "proof": "change rate" if m.simulated else "extraction", "requires": list(m.requires), "description": m.description}
        for m in METHODS.values()
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="Steganography methods")
    for column in ("key", "category", "technique", "carriers", "bit order", "keyed", "description"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["key"], r["category"], r["technique"], ", ".join(r["carriers"]), "yes" if r["bit_order"] else "-", "yes" if r["keyed"] else "-", r["description"])
    out.print(table)


#: Options that take several values after one flag (``--models v3 v4``).
MULTI_VALUE_OPTIONS = ("--models", "--ablations")


def expand_models(argv: list[str]) -> list[str]:
    """``--models v3 v4`` (several values after one flag) -> ``--models v3 --models v4``, as typer needs."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        out.append(argv[i])
        if argv[i] in MULTI_VALUE_OPTIONS:
            flag = argv[i]
            i += 1
            first = True
            while i < len(argv) and not argv[i].startswith("-"):
                if not first:
                    out.append(flag)
                out.append(argv[i])
                first = False
                i += 1
            continue
        i += 1
    return out


def run() -> None:
    """The console script: the CLI, with ``--models`` taking several values."""
    app(expand_models(sys.argv[1:]), prog_name="stegwatch")


if __name__ == "__main__":  # pragma: no cover
    run()
