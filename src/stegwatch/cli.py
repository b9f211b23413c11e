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
    files: Annotated[list[Path], typer.Argument(help="Image files to search.")],
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


@app.command("schema")
def schema(
    name: Annotated[str, typer.Argument(help="manifest, sidecar or embedding")],
) -> None:
    """Print the JSON Schema of a record type."""
    from stegwatch.format.records import export_schema

    try:
        print(json.dumps(export_schema(name), indent=2, sort_keys=True))
    except KeyError as exc:
        err.print(f"[red]{exc.args[0]}[/red]")
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
