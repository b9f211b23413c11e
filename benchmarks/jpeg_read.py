#!/usr/bin/env python3
"""Reading a JPEG's coefficients: through an in-memory file against a temporary folder, in one run.

Usage: python benchmarks/jpeg_read.py [JPEG ...] [--repeats 5] [--out FILE.json]

jpeglib opens files by name only, so :func:`stegwatch.stego.dct.read_dct`
hands it the bytes through a scratch file (:func:`~stegwatch.stego.dct.scratch_path`):
on Linux an anonymous in-memory file named by its ``/proc/self/fd`` path,
elsewhere a file in a new temporary folder. Both ways read the same files,
interleaved (file by file, the order alternating between repeats), after one
untimed warm-up each; the run reports both times per file, their ratio, and
whether every coefficient and table read the same. Default files: the JPEG
fixtures of ``tests/data/sealwatch``. Every number is a measurement of this run.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from jpeg_calibrations import DEFAULT_IMAGES, jpeg_cli

from stegwatch.stego import dct

WAYS = ("temporary folder", "in-memory file")


def _read(data: bytes, way: str) -> dct.DctImage:
    real = dct._memory_file
    if way == "temporary folder":
        dct._memory_file = lambda: None
    try:
        return dct.read_dct(data)
    finally:
        dct._memory_file = real


def _arrays(image: dct.DctImage) -> list[np.ndarray]:
    return [a for a in (image.jpeg.Y, image.jpeg.Cb, image.jpeg.Cr, image.jpeg.qt) if a is not None]


def measure(paths: list[str], repeats: int = 5) -> dict:
    """Milliseconds per file of each way, and whether both read the same coefficients (None: no in-memory file here)."""
    files = [Path(p).read_bytes() for p in paths]
    if dct._memory_file() is None:
        return {"files": len(files), "repeats": repeats, "in_memory_available": False}
    for way in WAYS:
        _read(files[0], way)  # warm-up
    seconds = dict.fromkeys(WAYS, 0.0)
    same = True
    for repeat in range(repeats):
        for data in files:
            found = {}
            for way in WAYS if repeat % 2 == 0 else WAYS[::-1]:
                started = time.perf_counter()
                found[way] = _read(data, way)
                seconds[way] += time.perf_counter() - started
            same = same and all(np.array_equal(a, b) for a, b in zip(*(_arrays(found[w]) for w in WAYS), strict=True))
    ms = {way: 1000 * s / (repeats * len(files)) for way, s in seconds.items()}
    return {"files": len(files), "repeats": repeats, "in_memory_available": True, "ms_per_file": ms,
            "folder_over_memory": ms["temporary folder"] / ms["in-memory file"], "same_coefficients": same}


def render(result: dict) -> list[str]:
    """The Markdown section for ``docs/benchmarks.md``."""
    lines = ["## Reading JPEG coefficients (`benchmarks/jpeg_read.py`)", ""]
    if not result.get("in_memory_available"):
        return lines + ["No in-memory file on this system: coefficients are read through a temporary folder.", ""]
    ms = result["ms_per_file"]
    return lines + [
        f"`read_dct` on {result['files']} JPEG files, {result['repeats']} repeats, interleaved: jpeglib opens files by "
        "name, so the bytes reach it through a scratch file.",
        "",
        "| scratch file | ms per file |",
        "|---|---|",
        *(f"| {way} | {ms[way]:.2f} |" for way in WAYS),
        "",
        f"Temporary folder / in-memory file: **{result['folder_over_memory']:.2f}x**; the same coefficients and tables "
        f"either way: {'yes' if result['same_coefficients'] else 'NO'}.",
        "",
    ]


def main() -> None:
    jpeg_cli(__doc__, measure, render)


if __name__ == "__main__":
    main()
