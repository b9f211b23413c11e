"""What features cost per file, by format family, timed the same way for stegwatch and for the anchor.

The issue's cost target compares feature costs: stegwatch's against the
reference pipeline's (:mod:`stegwatch.evaluation.anchor`). A scan's latency
(model, pool and all) is not that number, so the baseline report times both
on the same files: :data:`TIMED_PER_FAMILY` files of each family drawn by
:func:`timed_files`, each from its path to its feature vector (read, decode,
extract), one file per call in a pool of the run's workers, after a warm-up
(:func:`warm_up`) so that no timed file pays for a process's first imports.

For stegwatch that is every stream (:func:`stegwatch.features.streams.extract_streams`),
which V3 and V4 share; the pool's workers are set up as a scan's
(:func:`stegwatch.parallel.init_worker`). Both pipelines extract with one
BLAS thread per worker (:func:`stegwatch.parallel.one_blas_thread`), so
neither pays for threads that compete with the other worker's.
"""

from __future__ import annotations

import io
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: The format families whose costs are reported apart (a JPEG's features read its coefficients).
FAMILIES = ("jpeg", "spatial")
#: Files timed per family, for the anchor's cost per image and for stegwatch's.
TIMED_PER_FAMILY = 40


def file_family(head: bytes) -> str:
    """``jpeg`` for a file that starts as a JPEG, ``spatial`` for any other."""
    return "jpeg" if head[:3] == b"\xff\xd8\xff" else "spatial"


def path_family(path: Path) -> str:
    with Path(path).open("rb") as handle:
        return file_family(handle.read(3))


def timed_files(families: np.ndarray, *, per_family: int = TIMED_PER_FAMILY, seed: int = 0) -> list[int]:
    """Indices of the files whose cost is timed: ``per_family`` of each family at random (fewer where it has fewer),
    the same draw for every pipeline timed in one run."""
    families = np.asarray(families, dtype=object)
    rng = np.random.default_rng(seed)
    timed: set[int] = set()
    for family in FAMILIES:
        mine = np.flatnonzero(families == family)
        if mine.size:
            timed.update(rng.choice(mine, min(per_family, mine.size), replace=False).tolist())
    return sorted(timed)


_warmed: set[str] = set()


def warm_up(key: str, extract: Callable[[Path], object]) -> None:
    """Run ``extract`` once per process (per ``key``), untimed, on a small PNG and a small JPEG: the lazy imports and
    first-call set-up of a pipeline's JPEG and spatial paths, which no timed file should pay for."""
    if key in _warmed:
        return
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory(prefix="stegwatch-warm-up-") as folder:
        for kind in ("PNG", "JPEG"):
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format=kind)
            path = Path(folder) / f"warm-up.{kind.lower()}"
            path.write_bytes(buffer.getvalue())
            try:
                extract(path)
            except Exception:  # noqa: BLE001 - a pipeline that cannot read it fails on the timed files, each recorded
                log.warning("warm-up of %s failed on a %s file", key, kind)
    _warmed.add(key)


def _stegwatch_features(path: Path) -> None:
    from stegwatch.features.streams import extract_streams
    from stegwatch.format.files import carrier_from_bytes, read_file_bytes

    extract_streams(carrier_from_bytes(read_file_bytes(path), str(path)))


def _stegwatch_cost(item: tuple[int, str]) -> tuple[int, float | None, str | None]:
    """``(index, milliseconds, None)`` from the path to every stream's values, or ``(index, None, reason)``."""
    index, path = item
    warm_up("stegwatch", _stegwatch_features)
    started = time.perf_counter()
    try:
        _stegwatch_features(Path(path))
    except Exception as exc:  # an unreadable file is an error record; the cost of the others still stands
        return index, None, f"{type(exc).__name__}: {exc}"
    return index, 1000 * (time.perf_counter() - started), None


def stegwatch_feature_cost(paths: list[str], families: np.ndarray, timed: list[int], *, workers: int = 1) -> dict:
    """stegwatch's feature cost per file, by family, on the files ``timed`` (indices into ``paths``).

    Returns ``ms_by_family`` (mean milliseconds), ``files_timed`` and ``errors``
    (one record per file that could not be read, naming it and the reason).
    """
    from stegwatch.parallel import map_unordered

    timings: dict[str, list[float]] = {family: [] for family in FAMILIES}
    errors = []
    run = map_unordered(_stegwatch_cost, [(i, str(paths[i])) for i in timed], workers=workers, chunk_size=1)
    for chunk in run:
        for index, ms, reason in chunk:
            if ms is None:
                errors.append({"path": str(paths[index]), "reason": reason})
            else:
                timings[str(families[index])].append(ms)
    return {"ms_by_family": {f: float(np.mean(t)) for f, t in timings.items() if t},
            "files_timed": {f: len(t) for f, t in timings.items()},
            "errors": errors}
