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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stegwatch.parallel import map_unordered
from stegwatch.features.cache import DEFAULT_CACHE, FeatureCache, default_cache_path
from stegwatch.features.streams import STREAMS, extract_streams, feature_vector
from stegwatch.format.files import DEFAULT_LIMITS, ReadLimits, UnreadableFile, carrier_from_bytes, read_file_bytes


@dataclass
class FileFeatures:
    """One file's feature row (``vector``), or the reason it has none (``error``).

    ``extractions`` (only when asked for) holds, per unkeyed method, the
    length and a safe preview of the first payload its extractor finds.
    """

    path: str
    sha256: str | None
    vector: np.ndarray | None
    error: str | None = None
    extractions: dict[str, dict] | None = None


#: A unit of work: a path (the worker reads it), or a path with the bytes already read (and hashed) by the caller.
WorkItem = str | tuple[str, bytes]
PREVIEW_CHARS = 60


def _extractions(carrier) -> dict[str, dict]:
    from stegwatch.stego import METHODS

    found = {}
    for key, method in METHODS.items():
        if method.keyed or method.simulated:
            continue
        payloads = method.extract(carrier)
        if payloads:
            found[key] = {"payload_length": len(payloads[0].payload), "payload_preview": payloads[0].preview(PREVIEW_CHARS)}
    return found


def features_for_path(item: WorkItem, limits: ReadLimits = DEFAULT_LIMITS, extract: bool = False) -> FileFeatures:
    """All streams of one file, concatenated in :data:`STREAMS` order; an error record if unreadable.

    ``item`` is a path, or ``(path, data)`` when the caller has read the file
    already (it is not read again). ``extract`` adds :attr:`FileFeatures.extractions`.
    """
    path, data = (item, None) if isinstance(item, str) else item
    try:
        data = read_file_bytes(path, limits) if data is None else data
        carrier = carrier_from_bytes(data, path, limits)
    except UnreadableFile as exc:
        return FileFeatures(path, None, None, exc.reason)
    digest = hashlib.sha256(data).hexdigest()
    try:
        vector = feature_vector(extract_streams(carrier), STREAMS)
        found = _extractions(carrier) if extract else None
    except Exception as exc:  # a feature bug must not stop a batch; the record names it
        return FileFeatures(path, digest, None, f"feature extraction failed: {type(exc).__name__}: {exc}")
    return FileFeatures(path, digest, vector, extractions=found)


def _open_cache(cache: FeatureCache | str | Path | None) -> tuple[FeatureCache | None, bool]:
    """The cache to use and whether this call opened it (and so closes it)."""
    if cache is None or isinstance(cache, FeatureCache):
        return cache, False
    return FeatureCache(default_cache_path() if cache == DEFAULT_CACHE else cache), True


def features_for_paths(
    paths: list[str],
    *,
    workers: int = 1,
    cache: FeatureCache | str | Path | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
    progress=None,
    scheduler: str | None = None,
    extract: bool = False,
) -> list[FileFeatures]:
    """Feature rows for ``paths`` (same order).

    ``cache``: None (no cache), :data:`DEFAULT_CACHE` (the default file), a
    :class:`FeatureCache` or the path of one. Each file is read once: with a
    cache, here, where its bytes are hashed and a row whose content hash is
    cached is served without decoding (a changed file has a new hash and is
    recomputed; a hash is never taken on trust); the bytes of the others go
    to the workers. Without a cache the workers read the files. New rows are
    committed in batches as they finish, so an interrupted run keeps its work.
    ``extract`` adds each file's extractions (cached rows are then recomputed,
    since extraction needs the decoded image).
    """
    store, opened = _open_cache(cache)
    try:
        return _features_for_paths(paths, workers, store, limits, progress, scheduler, extract)
    finally:
        if opened and store is not None:
            store.close()


def _features_for_paths(paths, workers, store, limits, progress, scheduler, extract) -> list[FileFeatures]:
    results: list[FileFeatures | None] = [None] * len(paths)
    index_of: dict[str, list[int]] = {}
    for i, path in enumerate(paths):
        index_of.setdefault(path, []).append(i)
    done = 0

    def finish(row: FileFeatures) -> None:
        nonlocal done
        for i in index_of[row.path]:
            results[i] = row
        done += len(index_of[row.path])

    def work() -> Iterator[WorkItem]:
        if store is None:
            yield from index_of
            return
        unique = list(index_of)
        for start in range(0, len(unique), _READ_BATCH):
            read: dict[str, tuple[bytes, str]] = {}
            for path in unique[start:start + _READ_BATCH]:
                try:
                    data = read_file_bytes(path, limits)
                except UnreadableFile as exc:
                    finish(FileFeatures(path, None, None, exc.reason))
                    continue
                read[path] = (data, hashlib.sha256(data).hexdigest())
            cached = {} if extract else store.get_many({digest for _, digest in read.values()})
            for path, (data, digest) in read.items():
                if digest in cached:
                    finish(FileFeatures(path, digest, cached[digest]))
                else:
                    yield (path, data)
            if progress:
                progress(done, len(paths))

    if progress:
        progress(0, len(paths))
    func = functools.partial(features_for_path, limits=limits, extract=extract)
    fresh: dict[str, np.ndarray] = {}
    for chunk in map_unordered(func, work(), workers=workers, chunk_size=16, scheduler=scheduler):
        for row in chunk:
            finish(row)
            if row.vector is not None and row.sha256:
                fresh[row.sha256] = row.vector
        if progress:
            progress(done, len(paths))
        if store is not None and len(fresh) >= _COMMIT_EVERY:
            store.put_many(fresh)
            fresh = {}
    if store is not None:
        store.put_many(fresh)
    return [r for r in results if r is not None]


_COMMIT_EVERY = 256
_READ_BATCH = 256  # files read and looked up per cache query
