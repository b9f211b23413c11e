#!/usr/bin/env python3
"""Feature extraction on a pool of workers, with one BLAS thread per worker against BLAS's own thread count, in one run.

Usage: python benchmarks/blas_threads.py [--corpus build/default-corpus] [--sample 400] [--workers 2] [--repeats 2]

stegwatch computes a file's features with one BLAS thread
(:func:`stegwatch.parallel.one_blas_thread`). Left to itself, numpy's
OpenBLAS starts a thread per core for long dot products, so a scan's
workers (one per core) each bring as many threads again and compete for
the same cores. Here the same files go through the same kind of pool
(spawned workers, chunks of 16, as a scan's) twice per repeat, in
alternating order: once as shipped, once with the one-thread limit taken
out in the workers (BLAS's own thread count). The run reports files per
second for each, their ratio, and the largest absolute difference between
the two ways' feature values (the last bits a split dot product changes).
Every number is a measurement of this run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

WAYS = ("BLAS's own threads", "one BLAS thread (shipped)")
CHUNK = 16


def _set_up(way: str) -> None:
    """Pool initializer: as a scan's worker; for BLAS's own threads, the one-thread limit replaced by nothing."""
    from stegwatch.features import statistics, streams
    from stegwatch.parallel import keep_freed_memory

    keep_freed_memory()
    if way == WAYS[0]:
        streams.one_blas_thread = statistics.one_blas_thread = contextlib.nullcontext


def _features(chunk: list[str]) -> list[np.ndarray | None]:
    from stegwatch.features.table import features_for_path

    return [features_for_path(path).vector for path in chunk]


def _run(way: str, paths: list[str], workers: int) -> tuple[float, list]:
    chunks = [paths[i:i + CHUNK] for i in range(0, len(paths), CHUNK)]
    started = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_set_up,
                             initargs=(way,)) as pool:
        rows = [row for chunk in pool.map(_features, chunks) for row in chunk]
    return time.perf_counter() - started, rows


def measure(paths: list[str], *, workers: int = 2, repeats: int = 2) -> dict:
    """Files per second each way (pool start-up included, as in a scan) and the largest difference between their rows."""
    seconds = dict.fromkeys(WAYS, 0.0)
    rows = {}
    for repeat in range(repeats):
        for way in WAYS if repeat % 2 == 0 else WAYS[::-1]:
            elapsed, rows[way] = _run(way, paths, workers)
            seconds[way] += elapsed
    pairs = [(a, b) for a, b in zip(rows[WAYS[0]], rows[WAYS[1]], strict=True) if a is not None and b is not None]
    differences = [float(np.max(np.abs(a - b))) for a, b in pairs]
    per_s = {way: repeats * len(paths) / s for way, s in seconds.items()}
    return {"files": len(paths), "workers": workers, "repeats": repeats, "files_per_s": per_s,
            "one_over_own": per_s[WAYS[1]] / per_s[WAYS[0]], "max_abs_difference": max(differences, default=0.0),
            "files_differing": sum(d > 0 for d in differences)}


def render(result: dict) -> list[str]:
    """The Markdown section for ``docs/benchmarks.md``."""
    per_s = result["files_per_s"]
    return [
        "## BLAS threads in the scan's workers (`benchmarks/blas_threads.py`)",
        "",
        f"Every stream of {result['files']} files of the sample on {result['workers']} spawned workers, "
        f"{result['repeats']} repeats in alternating order, pool start-up included: with BLAS's own thread count in "
        "each worker, and with one BLAS thread per worker as shipped.",
        "",
        "| BLAS in each worker | files per second |",
        "|---|---|",
        *(f"| {way} | {per_s[way]:.1f} |" for way in WAYS),
        "",
        f"One thread / own threads: **{result['one_over_own']:.2f}x**; the two ways' values differ in "
        f"{result['files_differing']} of {result['files']} files, by at most {result['max_abs_difference']:.1e} "
        "(a dot product split among threads rounds differently).",
        "",
    ]


def main() -> None:
    from stegwatch.format.manifest import read_manifest

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="build/default-corpus")
    parser.add_argument("--sample", type=int, default=400)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", help="also write the result as JSON here")
    args = parser.parse_args()
    corpus = Path(args.corpus)
    entries = read_manifest(corpus).entries
    step = max(1, len(entries) // args.sample)
    paths = [str(corpus / e.file_path) for e in entries[::step]][: args.sample]
    result = measure(paths, workers=args.workers, repeats=args.repeats)
    result["machine"] = {"cpu_count": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print("\n".join(render(result)))


if __name__ == "__main__":
    main()
