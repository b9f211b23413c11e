"""Any labelled folder as a corpus: a CSV of ``path,label[,method][,group][,source]``.

Users bring their own labelled images (BOSSbase, ALASKA2, a production
sample) without building a stegwatch corpus. Paths are relative to the CSV's
folder and may not leave it (as a manifest's paths may not leave its corpus).
``label`` is ``clean`` or ``stego`` (``cover``, ``0`` and ``1`` are accepted).
``group`` names the cover group (files of one photograph); without the column,
each file is its own group, which is stated in the metrics. ``source`` names
where the photograph came from (for ``--by-source``).

A bad row (unknown label, path outside the folder, a path listed twice) is an
error record naming the line and the reason; the other rows are used.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np

from stegwatch.errors import ConfigError, EmptyCorpus
from stegwatch.features.cache import DEFAULT_CACHE, FeatureCache
from stegwatch.features.corpus import CorpusFeatures, load_corpus_features
from stegwatch.features.table import features_for_paths
from stegwatch.format.manifest import RootResolver
from stegwatch.format.records import ManifestEntry, check_relative_path

LABELS = {"clean": "clean", "cover": "clean", "0": "clean", "stego": "stego", "1": "stego"}
REQUIRED = ("path", "label")
OPTIONAL = ("method", "group", "source")


def _entry(path: str, label: str, method: str | None, group: str, source: str | None) -> ManifestEntry:
    # Only what evaluation reads; the rest (sha256, size) comes from the one read of the file.
    return ManifestEntry.model_construct(
        file_path=path, label=label, method=(method or "unknown") if label == "stego" else None,
        category="labelled" if label == "clean" else f"stego:{method or 'unknown'}", constraint=None, cover_id=group,
        cover_source=source, payload_bytes=None, payload_bpp=None, payload_bpnzac=None, payload_sha256=None,
        payload_kind=None, split=None, sha256="", format=Path(path).suffix.lstrip(".").upper() or "unknown", mode="",
        width=1, height=1)


def read_labels(csv_path: str | Path) -> tuple[list[ManifestEntry], list[dict], dict]:
    """Entries from the CSV, error records for the rows that cannot be used, and where the labels came from
    (how groups were formed, and the CSV's SHA-256 from the same read)."""
    csv_path = Path(csv_path)
    try:
        content = csv_path.read_bytes()
        text = content.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--labels {csv_path}: cannot be read: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ConfigError(f"--labels {csv_path}: the header must name {', '.join(REQUIRED)} (and may name "
                          f"{', '.join(OPTIONAL)}); missing: {', '.join(missing)}")
    has_group = "group" in columns
    entries, errors, seen = [], [], {}
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        where = f"{csv_path}:{line}"
        label = LABELS.get(row.get("label", "").lower())
        if label is None:
            errors.append({"path": where, "reason": f"label {row.get('label')!r} is not clean or stego"})
            continue
        try:
            path = check_relative_path(row.get("path", ""))
        except ValueError as exc:
            errors.append({"path": where, "reason": f"path {row.get('path')!r}: {exc}"})
            continue
        if path in seen:
            errors.append({"path": where, "reason": f"{path} is listed twice (first on line {seen[path]})"})
            continue
        seen[path] = line
        group = row.get("group") if has_group and row.get("group") else f"file:{path}"
        entries.append(_entry(path, label, row.get("method") or None, group, row.get("source") or None))
    groups = "the group column" if has_group else "each file its own group (the CSV has no group column)"
    return entries, errors, {"source": "labels-csv", "path": str(csv_path), "groups": groups,
                             "sha256": hashlib.sha256(content).hexdigest()}


def load_labelled_features(
    csv_path: str | Path, *, workers: int = 1, progress=None, scheduler: str | None = None,
    cache: FeatureCache | str | Path | None = DEFAULT_CACHE,
) -> CorpusFeatures:
    """Feature rows for every readable file the CSV lists (see the module docstring); unreadable ones become errors."""
    csv_path = Path(csv_path)
    root = csv_path.parent
    entries, errors, labels = read_labels(csv_path)
    paths = []
    usable = []
    resolve = RootResolver(root).resolve
    for entry in entries:
        try:
            paths.append(resolve(entry.file_path))
            usable.append(entry)
        except ValueError as exc:
            errors.append({"path": str(root / entry.file_path), "reason": str(exc)})
    rows = features_for_paths(paths, workers=workers, cache=cache, progress=progress, scheduler=scheduler)
    keep = [i for i, r in enumerate(rows) if r.vector is not None]
    errors += [{"path": rows[i].path, "reason": rows[i].error} for i in range(len(rows)) if rows[i].vector is None]
    if not keep:
        first = f"; first: {errors[0]['path']}: {errors[0]['reason']}" if errors else ""
        raise EmptyCorpus(str(csv_path), f"no file listed can be used ({len(errors)} refused or unreadable{first})")
    kept = []
    for i in keep:
        entry = usable[i]
        entry.sha256 = rows[i].sha256 or ""
        kept.append(entry)
    return CorpusFeatures(kept, np.stack([rows[i].vector for i in keep]), errors, labels["sha256"], None, labels)


def load_rows(corpus: str | Path | None, labels: str | Path | None, *, workers: int = 1, progress=None,
              scheduler: str | None = None, split: str | None = None,
              leave_out_covers: frozenset[str] | None = None) -> CorpusFeatures:
    """Feature rows of a stegwatch corpus (its ``split`` only, if given) or of a labelled CSV: exactly one of the two.

    ``leave_out_covers`` (corpus only): cover groups whose files are not read (see :func:`load_corpus_features`).
    """
    if (corpus is None) == (labels is None):
        raise ConfigError("give a corpus or a labels CSV (not both)")
    if labels is not None:
        return load_labelled_features(labels, workers=workers, progress=progress, scheduler=scheduler)
    return load_corpus_features(corpus, workers=workers, progress=progress, scheduler=scheduler, split=split,
                                leave_out_covers=leave_out_covers)
