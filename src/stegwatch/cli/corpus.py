"""Corpus verbs: ``corpus build``, ``validate-streams``, ``extract`` and ``methods``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from stegwatch.cli._app import app, corpus_app, counts_table, err, escape, out, print_json, progress_bar, verb, workers_or_all


def _methods_table(counts: dict[str, int]) -> Table:
    from stegwatch.stego import METHODS

    table = Table(title="Stego files per method")
    for column in ("method", "category", "payload unit", "files"):
        table.add_column(column, justify="right" if column == "files" else "left")
    for key, method in METHODS.items():
        if key in counts:
            table.add_row(key, method.category, method.payload_unit_description, str(counts[key]))
    table.add_row("[bold]total[/bold]", "", "", f"[bold]{sum(counts.values())}[/bold]")
    return table


@corpus_app.command("build")
@verb()
def corpus_build(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder of the corpus (created if missing).")],
    preset: Annotated[str, typer.Option(help="smoke (a few hundred files), default (about 10,000), training (3,000 exact "
                                         "cover/stego pairs per learned method, train split only) or training-smoke.")] = "default",
    covers: Annotated[Optional[list[Path]], typer.Option("--covers", help="Folder of your own cover images (repeatable).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for every random choice; same seed, same bytes.")] = 0,
    workers: Annotated[Optional[int], typer.Option(help="Processes to use (default: all cores).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Build (or resume, or confirm) a labelled corpus."""
    from stegwatch.corpus.build import build_corpus

    with progress_bar("building", not as_json) as progress:
        report = build_corpus(out_dir, preset=preset, seed=seed, covers=covers or [], workers=workers_or_all(workers), progress=progress)
    if as_json:
        print_json(report.to_json_dict())
    else:
        data = report.to_json_dict()
        out.print(counts_table("Files per label", "label", data["by_label"]))
        out.print(_methods_table(data["by_method"]))
        out.print(counts_table("Files per label and category", "label: category", report.counts("label", "category")))
        out.print(
            f"{len(report.entries)} files, {report.bytes_on_disk / 1e6:.1f} MB on disk in {escape(str(report.out))}; "
            f"{report.jobs_run} made, {report.jobs_reused} already there; {report.seconds:.1f} s"
        )
        out.print(f"{report.independent_photographs} independent photographs")
        if data["pairs_by_method"]:
            out.print(counts_table("Exact cover/stego pairs", "method", data["pairs_by_method"]))
        for package, row in report.missing_covers.items():
            what = f"{row['missing']} listed files missing" + (f", {row['mismatched']} with other bytes" if row["mismatched"] else "")
            err.print(f"[yellow]covers from {package} not used[/yellow] ({what}): install with: {row['install']}")
        for error in report.errors:
            err.print(f"[yellow]skipped[/yellow] {escape(str(error.path))}: {escape(str(error.reason))}")
        for method_key, hint in report.skipped_methods.items():
            err.print(f"[yellow]method {escape(method_key)} skipped[/yellow]: {escape(hint)}")
    raise typer.Exit(1 if report.failed_jobs else 0)


@app.command("validate-streams")
@verb()
def validate_streams(
    corpus: Annotated[Path, typer.Argument(help="Corpus folder holding manifest.jsonl.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    workers: Annotated[Optional[int], typer.Option(help="Processes to use (default: all cores).")] = None,
) -> None:
    """Prove every label: extract each stego payload, search every clean file."""
    from stegwatch.corpus.validate import validate_corpus

    with progress_bar("validating", not as_json) as progress:
        report = validate_corpus(corpus, workers=workers_or_all(workers), progress=progress)
    data = report.to_json_dict()
    if as_json:
        print_json(data)
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
        err.print(f"[red]manifest[/red] {escape(str(error.where))}: {escape(str(error.reason))}")
    for check in data["problems"][:50]:
        detail = check["reason"] or "; ".join(f"{f['method']} {f['stream']}: {f['preview']!r}" for f in check["found"])
        err.print(f"[yellow]{check['status']}[/yellow] {escape(check['file_path'])}: {escape(detail)}")
    if not report.ok:
        verdict = "[red]some labels could not be proven[/red]"
    elif report.unverified:
        verdict = f"[yellow]{len(report.unverified)} stego labels could not be checked on this machine (see above)[/yellow]"
    else:
        verdict = "[green]every stego label proven[/green]"
    out.print(f"{len(report.checks)} files checked: {verdict}")
    raise typer.Exit(0 if report.ok else 1)


@app.command("extract")
@verb()
def extract(
    # readable=False: an unreadable file is reported by the library with the rest, not refused while parsing.
    files: Annotated[list[Path], typer.Argument(help="Image files to search.", readable=False)],
    method: Annotated[Optional[str], typer.Option(help="Only this method's stream (default: all).")] = None,
    key: Annotated[Optional[str], typer.Option(help="Key for keyed methods (lsbm, lsbr, f5, outguess, steghide); default: the sidecar's.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON record per file.")] = False,
) -> None:
    """Print what each stream of each file holds (both bit orders, lenient framing)."""
    from stegwatch.corpus.validate import extract_file

    unreadable = 0
    for path in files:
        record = extract_file(path, method=method, key=key)
        unreadable += bool(record["error"])
        if as_json:
            print_json(record, indent=None, ensure_ascii=False)
        elif record["error"]:
            err.print(f"[red]{escape(str(path))}: {escape(record['error'])}[/red]")
        else:
            out.print(_streams_table(path, record))
    raise typer.Exit(1 if unreadable else 0)


def _streams_table(path: Path, record: dict) -> Table:
    table = Table(title=f"{escape(str(path))} ({record['format']}, {record['mode']}, {record['size'][0]}x{record['size'][1]})")
    for column in ("method", "stream", "bit order", "bytes", "payload-shaped", "preview"):
        table.add_column(column)
    for name, xs in record["streams"].items():
        if not xs:
            table.add_row(name, "-", "-", "0", "no", "[dim]nothing found[/dim]")
        for x in xs:
            table.add_row(name, x["stream"], x["bit_order"] or "-", str(x["length"]), "yes" if x["payload_shaped"] else "no", escape(x["preview"]))
    return table


@app.command("methods")
@verb()
def methods(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the steganography methods stegwatch can embed and extract."""
    from stegwatch.stego import METHODS

    rows = [
        {"key": m.key, "category": m.category, "technique": m.technique, "ai42": m.ai42, "carriers": list(m.carriers),
         "bit_order": m.ordered, "keyed": m.keyed, "payload_unit": m.payload_unit,
         "payload_unit_description": m.payload_unit_description, "framing": m.framing,
         "proof": "change rate" if m.simulated else "extraction", "requires": list(m.requires), "description": m.description}
        for m in METHODS.values()
    ]
    if as_json:
        print_json(rows, sort_keys=False)
        return
    table = Table(title="Steganography methods")
    for column in ("key", "category", "technique", "carriers", "bit order", "keyed", "description"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["key"], r["category"], r["technique"], ", ".join(r["carriers"]), "yes" if r["bit_order"] else "-", "yes" if r["keyed"] else "-", r["description"])
    out.print(table)


@app.command("covers")
@verb()
def covers_command(
    doc: Annotated[Optional[Path], typer.Option("--doc", help="Also write the cover document here (docs/covers.md).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """The curated cover photographs: per package, version, licences, photographs listed and present, what to install."""
    from stegwatch.corpus.covers import covers_report

    summary = covers_report(doc)
    if as_json:
        print_json(summary)
        return
    table = Table(title="Cover photographs (src/stegwatch/corpus/covers.tsv)")
    for column in ("package", "version", "photos", "present", "cut-outs", "present", "set-up"):
        table.add_column(column, justify="left" if column in ("package", "version", "set-up") else "right")
    for p in summary["packages"]:
        table.add_row(p["package"], p["installed_version"] or f"{p['listed_version']} (not installed)", str(p["photos_listed"]),
                      str(p["photos_present"]), str(p["alpha_cutouts_listed"]), str(p["alpha_cutouts_present"]),
                      "yes" if p["installed_by_setup"] else "optional")
    table.add_row("[bold]total[/bold]", "", f"[bold]{summary['photos_listed']}[/bold]", f"[bold]{summary['photos_present']}[/bold]",
                  str(summary["alpha_cutouts_listed"]), str(summary["alpha_cutouts_present"]), "")
    out.print(table)
    for package, row in summary["missing"].items():
        what = f"{row['missing']} files missing" + (f", {row['mismatched']} with other bytes" if row["mismatched"] else "")
        optional = "" if package in summary["setup_packages"] or package.startswith("pypi:") else " (optional)"
        err.print(f"[yellow]{package}[/yellow]{optional}: {what}; install with: {row['install']}")
    if doc is not None:
        out.print(f"wrote {escape(str(doc))}")
