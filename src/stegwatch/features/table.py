"""Feature tables: every file of a corpus (or a list of paths) as one row of stream features.

Rows can be served from a :class:`~stegwatch.features.cache.FeatureCache`
(one SQLite file under ``.stegwatch/``), keyed by each file's SHA-256 and
:data:`FEATURE_VERSION`, so a changed file (or a new extractor) is recomputed
and an unchanged one is read back. Unreadable files become error records,
never rows.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stegwatch.parallel import map_unordered
from stegwatch.features.cache import FeatureCache
from stegwatch.features.streams import STREAMS, extract_streams, feature_vector
from stegwatch.format.files import DEFAULT_LIMITS, ReadLimits, UnreadableFile, carrier_from_bytes, read_file_bytes


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


def _open_cache(cache: FeatureCache | str | Path | None) -> tuple[FeatureCache | None, bool]:
    """The cache to use and whether this call opened it (and so closes it)."""
    if cache is None or isinstance(cache, FeatureCache):
        return cache, False
    return FeatureCache(cache), True


def features_for_paths(
    paths: list[str],
    *,
    workers: int = 1,
    cache: FeatureCache | str | Path | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
    progress=None,
    scheduler: str | None = None,
) -> list[FileFeatures]:
    """Feature rows for ``paths`` (same order).

    With a cache (a :class:`FeatureCache` or the path of one), each file is
    read and hashed here, and a row whose content hash is cached is served
    without decoding; a changed file has a new hash and is recomputed. Never
    trusts a hash it did not compute. New rows are committed in batches as
    they finish, so an interrupted run keeps its work.
    """
    store, opened = _open_cache(cache)
    try:
        return _features_for_paths(paths, workers, store, limits, progress, scheduler)
    finally:
        if opened and store is not None:
            store.close()


def _features_for_paths(paths, workers, store, limits, progress, scheduler) -> list[FileFeatures]:
    results: list[FileFeatures | None] = [None] * len(paths)
    digests: dict[int, str] = {}
    if store is not None:
        for i, path in enumerate(paths):
            try:
                digests[i] = hashlib.sha256(read_file_bytes(path, limits)).hexdigest()
            except UnreadableFile as exc:
                results[i] = FileFeatures(path, None, None, exc.reason)
        cached = store.get_many(digests.values())
        for i, digest in digests.items():
            if digest in cached:
                results[i] = FileFeatures(paths[i], digest, cached[digest])
    todo = [i for i in range(len(paths)) if results[i] is None]
    done = len(paths) - len(todo)
    if progress:
        progress(done, len(paths))
    func = functools.partial(features_for_path, limits=limits)
    index_of: dict[str, list[int]] = {}
    for i in todo:
        index_of.setdefault(paths[i], []).append(i)
    fresh: dict[str, np.ndarray] = {}
    for chunk in map_unordered(func, list(index_of), workers=workers, chunk_size=16, scheduler=scheduler):
        for row in chunk:
            for i in index_of[row.path]:
                results[i] = row
            if row.vector is not None and row.sha256:
                fresh[row.sha256] = row.vector
        done += sum(len(index_of[row.path]) for row in chunk)
        if progress:
            progress(done, len(paths))
        if store is not None and len(fresh) >= _COMMIT_EVERY:
            store.put_many(fresh)
            fresh = {}
    if store is not None:
        store.put_many(fresh)
    return [r for r in results if r is not None]


_COMMIT_EVERY = 256
