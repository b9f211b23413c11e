"""Scanning files, folders and globs with any detector."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from stegwatch.detectors.base import Detector, detections_from_scores
from stegwatch.detectors.registry import load_detector
from stegwatch.features.table import features_for_paths
from stegwatch.format.files import IMAGE_SUFFIXES


def expand_paths(arguments: list[str]) -> list[str]:
    """Files as given; folders walked recursively (image files only); globs expanded. Order kept, no repeats.

    An argument that names an existing file or folder is taken as it is, even
    where its name holds ``*``, ``?`` or ``[`` (``img[1].png`` is that file,
    not ``img1.png``). Any other argument with those characters is a glob: the
    folders it matches are walked, everything else it matches is kept (a
    dangling link or a special file gets its error record when read), and a
    glob that matches nothing is kept as it is, so that it gets an error
    record too instead of vanishing from the run.
    """
    seen: set[str] = set()
    out: list[str] = []

    def add(path: str) -> None:
        if path not in seen:
            seen.add(path)
            out.append(path)

    def walk(folder: Path) -> None:
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(files):
                if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                    add(str(Path(root) / name))

    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            walk(path)
        elif os.path.lexists(argument) or not any(ch in argument for ch in "*?["):
            add(argument)  # a missing file still gets its own error record
        else:
            matches = sorted(glob.glob(argument, recursive=True))
            for match in matches:
                if Path(match).is_dir():
                    walk(Path(match))
                else:
                    add(match)
            if not matches:
                add(argument)
    return out


@dataclass
class ScanResult:
    """The records of one scan, and the detector that made them."""

    detector: Detector
    records: list[dict]


def scan(arguments: list[str], model: str | Path | Detector, *, threshold: float | None = None, workers: int = 1,
         extract: bool = False, scheduler: str | None = None, cache=None, progress=None) -> ScanResult:
    """One record per file found under ``arguments``, by ``model`` (a registered key, a model file or a detector).

    ``threshold`` overrides the model's; ``cache``: None (no cache), ``DEFAULT_CACHE``,
    a feature cache or its path.

    ``extract`` adds ``payload_length`` and a short, safe ``payload_preview``
    where the detected method can be extracted without a key; the features
    and the extraction come from the same single read of each file.
    """
    detector = model if isinstance(model, Detector) else load_detector(model, threshold)
    paths = expand_paths(arguments)
    if not extract:
        detections = detector.detect(paths, workers=workers, scheduler=scheduler, cache=cache, progress=progress)
        return ScanResult(detector, [d.to_json_dict() for d in detections])
    rows = features_for_paths(paths, workers=workers, scheduler=scheduler, cache=cache, progress=progress, extract=True)
    records = []
    for row, detection in zip(rows, detections_from_scores(detector, paths, rows), strict=True):
        record = detection.to_json_dict()
        found = (row.extractions or {}).get(detection.method or "") if detection.is_stego else None
        if found:
            record |= found
        records.append(record)
    return ScanResult(detector, records)
