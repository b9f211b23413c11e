#!/usr/bin/env python3
"""The JPEG calibrations of the ``dct`` stream: as shipped beside their textbook form, in one run.

Usage: python benchmarks/jpeg_calibrations.py [JPEG ...] [--repeats 5] [--out FILE.json]

Fridrich, Goljan and Hogea's F5 estimate and OutGuess blockiness slopes
(``stegwatch.features.statistics``) each decompress the luminance and
recompress a calibrated copy. The textbook form below computes each
statistic on its own: every channel decompressed to whole pixels, blockiness
summed over the laid-out image, OutGuess's simulated changes gathered and
scattered. The shipped form (:func:`~stegwatch.features.statistics.jpeg_calibrations`)
decompresses the luminance once for both, rounds only the pixels on the
blocks' edges for the blockiness of the channels it makes, and flips the
chosen coefficients with one XOR. Both run on the same files, interleaved
(textbook, then shipped, file by file), after one untimed warm-up each; the
run reports both times, their ratio, and the largest absolute difference
between their values (0: the shipped models read these values, so the
shortcut may change no bit). Default files: the JPEG fixtures of
``tests/data/sealwatch``. Every number is a measurement of this run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from stegwatch.features.statistics import (
    blockiness,
    compress_blocks,
    decompress_blocks,
    f5_calibrated_beta,
    jpeg_calibrations,
)
from stegwatch.stego.dct import read_dct

DEFAULT_IMAGES = Path(__file__).resolve().parents[1] / "tests" / "data" / "sealwatch"


def textbook_calibrations(coefficients: np.ndarray, qt: np.ndarray, *, crop: int = 4,
                          seed: int = 0) -> tuple[float, tuple[float, float]]:
    """F5's estimate and OutGuess's slopes, each statistic computed on its own from whole decoded pixels."""
    beta = f5_calibrated_beta(coefficients, qt)
    if min(coefficients.shape[:2]) < 3:
        return beta, (0.0, 0.0)
    rng = np.random.default_rng(seed)
    pixels = decompress_blocks(coefficients, qt)
    height, width = ((pixels.shape[0] - crop) // 8) * 8, ((pixels.shape[1] - crop) // 8) * 8
    calibrated = compress_blocks(pixels[crop:crop + height, crop:crop + width], qt)
    slopes = []
    for channel in (coefficients, calibrated):
        changed = np.array(channel, dtype=np.int16)
        usable = (changed != 0) & (changed != 1)
        usable[..., 0, 0] = False
        changed[usable & (rng.random(changed.shape) < 0.5)] ^= 1
        slopes.append(blockiness(decompress_blocks(changed, qt)) - blockiness(decompress_blocks(channel, qt)))
    return beta, (slopes[0], slopes[1])


def _flat(found: tuple[float, tuple[float, float]]) -> np.ndarray:
    return np.asarray([found[0], *found[1]])


def measure(paths: list[str], repeats: int = 5) -> dict:
    """Milliseconds per file of each form (luminance channel, coefficients read before timing) and their difference."""
    channels = [(image.Y, image.luma_qt) for image in (read_dct(Path(p).read_bytes()) for p in paths)]
    forms = {"textbook": textbook_calibrations, "shipped": jpeg_calibrations}
    for form in forms.values():
        form(*channels[0])  # warm-up
    seconds = dict.fromkeys(forms, 0.0)
    difference = 0.0
    for _ in range(repeats):
        for y, qt in channels:
            found = {}
            for name, form in forms.items():
                started = time.perf_counter()
                found[name] = form(y, qt)
                seconds[name] += time.perf_counter() - started
            difference = max(difference, float(np.max(np.abs(_flat(found["textbook"]) - _flat(found["shipped"])))))
    ms = {name: 1000 * s / (repeats * len(channels)) for name, s in seconds.items()}
    sizes = sorted({f"{y.shape[1] * 8}x{y.shape[0] * 8}" for y, _ in channels})
    return {"files": len(channels), "sizes": sizes, "repeats": repeats, "ms_per_file": ms,
            "textbook_over_shipped": ms["textbook"] / ms["shipped"], "max_abs_difference": difference}


def render(result: dict) -> list[str]:
    """The Markdown section for ``docs/benchmarks.md``."""
    ms = result["ms_per_file"]
    return [
        "## JPEG calibrations of the `dct` stream (`benchmarks/jpeg_calibrations.py`)",
        "",
        f"F5's calibrated estimate and OutGuess's blockiness slopes on the luminance of {result['files']} JPEG files "
        f"({', '.join(result['sizes'][:4])}{', ...' if len(result['sizes']) > 4 else ''}), {result['repeats']} repeats, "
        "interleaved: each statistic computed on its own from whole decoded pixels (textbook), and as `extract_streams` "
        "computes them (one decompression for both, blockiness from the blocks' edges).",
        "",
        "| form | ms per file |",
        "|---|---|",
        f"| textbook | {ms['textbook']:.2f} |",
        f"| shipped | {ms['shipped']:.2f} |",
        "",
        f"Textbook / shipped: **{result['textbook_over_shipped']:.2f}x**; largest absolute difference between their values: "
        f"{result['max_abs_difference']:.2e} (the shipped models read these values: the shortcut may change no bit).",
        "",
    ]


def jpeg_cli(doc: str, measure_files, render_result) -> None:
    """The command line of a JPEG benchmark: files (default: the JPEG fixtures), ``--repeats``, ``--out`` JSON;
    ``measure_files(paths, repeats)`` gives the result and ``render_result(result)`` its Markdown lines."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("images", nargs="*", help="JPEG files (default: the JPEG fixtures of tests/data/sealwatch)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", help="also write the result as JSON here")
    args = parser.parse_args()
    paths = args.images or sorted(str(p) for p in DEFAULT_IMAGES.glob("*.jpg"))
    result = measure_files(paths, args.repeats)
    result["machine"] = {"cpu_count": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print("\n".join(render_result(result)))


def main() -> None:
    jpeg_cli(__doc__, measure, render)


if __name__ == "__main__":
    main()
