"""Feature tables: every file of a corpus (or a list of paths) as one row of stream features.

Rows are cached in one ``.npz`` file per corpus, keyed by each file's SHA-256
and :data:`FEATURE_VERSION`, so a changed file (or a new extractor) is
recomputed and an unchanged one is read back. Unreadable files become error
records, never rows.
"""

from __future__ import annotations

import functools
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stegwatch.corpus._parallel import map_unordered
from stegwatch.features.streams import FEATURE_VERSION, STREAMS, extract_streams, feature_vector
from stegwatch.format.files import DEFAULT_LIMITS, ReadLimits, UnreadableFile, carrier_from_bytes, read_file_bytes, write_bytes_atomic

CACHE_NAME = f".stegwatch-features-v{FEATURE_VERSION}.npz"


@dataclass
class FileFeatures:
    path: str
    sha256: str | None
    vector: np.ndarray | None
    error: str | None = None


def features_for_path(path: str, limits: ReadLimits = DEFAULT_LIMITS) -> FileFeatures:
    """All streams of one file, concatenated in :data:`STREAMS` order; an error record if unreadable."""
    try:
        data = read_file_bytes(path, limits)
        carrier = carrier_from_bytes(data, path, limits)
    except UnreadableFile as exc:
        return FileFeatures(path, None, None, exc.reason)
    digest = hashlib.sha256(data).hexdigest()
    try:
        vector = feature_vector(extract_streams(carrier), STREAMS)
    except Exception as exc:  # a feature bug must not stop a batch; the record names it
        return FileFeatures(path, digest, None, f"feature extraction failed: {type(exc).__name__}: {exc}")
    return FileFeatures(path, digest, vector)


def _load_cache(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return dict(zip(data["sha256"].tolist(), data["vectors"], strict=True))
    except (OSError, ValueError, KeyError):
        return {}


def _save_cache(path: Path, cache: dict[str, np.ndarray]) -> None:
    if not cache:
        return
    keys = sorted(cache)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, sha256=np.asarray(keys), vectors=np.stack([cache[k] for k in keys]))
    write_bytes_atomic(path, buffer.getvalue())


def features_for_paths(
    paths: list[str],
    *,
    workers: int = 1,
    cache_file: Path | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
    progress=None,
    scheduler: str | None = None,
) -> list[FileFeatures]:
    """Feature rows for ``paths`` (same order).

    With a cache file, each file is read and hashed here, and a row whose
    content hash is cached is served without decoding; a changed file has a
    new hash and is recomputed. Never trusts a hash it did not compute.
    """
    cache = _load_cache(cache_file) if cache_file else {}
    results: list[FileFeatures | None] = [None] * len(paths)
    todo = []
    for i, path in enumerate(paths):
        if cache:
            try:
                digest = hashlib.sha256(read_file_bytes(path, limits)).hexdigest()
            except UnreadableFile as exc:
                results[i] = FileFeatures(path, None, None, exc.reason)
                continue
            if digest in cache:
                results[i] = FileFeatures(path, digest, cache[digest])
                continue
        todo.append(i)
    done = len(paths) - len(todo)
    if progress:
        progress(done, len(paths))
    func = functools.partial(features_for_path, limits=limits)
    index_of: dict[str, list[int]] = {}
    for i in todo:
        index_of.setdefault(paths[i], []).append(i)
    for chunk in map_unordered(func, list(index_of), workers=workers, chunk_size=16, scheduler=scheduler):
        for row in chunk:
            for i in index_of[row.path]:
                results[i] = row
            if row.vector is not None and row.sha256:
                cache[row.sha256] = row.vector
        done += sum(len(index_of[row.path]) for row in chunk)
        if progress:
            progress(done, len(paths))
    if cache_file and todo:
        _save_cache(cache_file, cache)
    return [r for r in results if r is not None]
