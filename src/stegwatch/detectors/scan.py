"""Scanning files, folders and globs with any detector."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from stegwatch.format.files import IMAGE_SUFFIXES
from stegwatch.detectors.base import Detection, Detector
from stegwatch.format.files import UnreadableFile, load_carrier
from stegwatch.stego import METHODS

PREVIEW_CHARS = 60


def expand_paths(arguments: list[str]) -> list[str]:
    """Files as given; folders walked recursively (image files only); globs expanded. Order kept, no repeats."""
    seen: set[str] = set()
    out: list[str] = []

    def add(path: str) -> None:
        if path not in seen:
            seen.add(path)
            out.append(path)

    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                        add(str(Path(root) / name))
        elif any(ch in argument for ch in "*?["):
            for match in sorted(glob.glob(argument, recursive=True)):
                if Path(match).is_file():
                    add(match)
        else:
            add(argument)  # a missing file still gets its own error record
    return out


def add_extractions(detections: list[Detection]) -> list[dict]:
    """Records with a short, safe preview of the payload where a detected method can be extracted."""
    records = []
    for detection in detections:
        record = detection.to_json_dict()
        method = METHODS.get(detection.method or "")
        if detection.is_stego and method is not None and not method.keyed and not method.simulated:
            try:
                found = method.extract(load_carrier(detection.path))
            except UnreadableFile:
                found = []
            if found:
                record["payload_length"] = len(found[0].payload)
                record["payload_preview"] = found[0].preview(PREVIEW_CHARS)
        records.append(record)
    return records


def scan(arguments: list[str], detector: Detector, *, workers: int = 1, extract: bool = False,
         scheduler: str | None = None, cache=None, progress=None) -> list[dict]:
    """One record per file found under ``arguments`` (``cache``: a feature cache or its path, or None)."""
    detections = detector.detect(expand_paths(arguments), workers=workers, scheduler=scheduler, cache=cache, progress=progress)
    return add_extractions(detections) if extract else [d.to_json_dict() for d in detections]
