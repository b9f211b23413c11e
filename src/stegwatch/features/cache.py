"""The feature cache: one SQLite file of feature rows keyed by content hash and extractor version.

A row is served only for the same file content (its SHA-256, computed by the
reader, never trusted from a manifest) and the same :data:`FEATURE_VERSION`;
a changed file or a new extractor is recomputed. The file lives under
``.stegwatch/`` (``STEGWATCH_FEATURE_CACHE`` names another). SQLite in WAL
mode with a busy timeout makes concurrent runs safe: readers never block,
writers take turns, and each batch of rows is committed in one transaction,
so an interrupted run keeps what it finished. A cache that cannot be opened
or read is reported as a warning and the run goes on without it.

A row is stored compressed (zlib), the rich streams' values
(:data:`RICH_STREAMS`, float32 when extracted) as float32 and every other
value as float64, so a row read back equals the row extracted bit for bit
at about a fifteenth of its float64 size (a JPEG's row about 21 KB, any other
about 2 KB, where DCTR's 8,000 values are zeros).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import warnings
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from stegwatch.features.streams import FEATURE_VERSION, RICH_STREAMS, STREAMS, feature_names

log = logging.getLogger(__name__)

ENV_VAR = "STEGWATCH_FEATURE_CACHE"
DEFAULT_PATH = Path(".stegwatch") / "features.sqlite"
_BATCH = 500  # digests per SELECT (below SQLite's host-parameter limit)
_ZLIB_LEVEL = 1  # about as small as level 6 on these rows, at half the time


#: ``cache=DEFAULT_CACHE``: use :func:`default_cache_path` (the one place the default is chosen).
DEFAULT_CACHE = "default"


def default_cache_path() -> Path:
    """``$STEGWATCH_FEATURE_CACHE`` if set, else ``.stegwatch/features.sqlite`` in the working folder."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_PATH)


class FeatureCacheWarning(UserWarning):
    """The cache could not be used; the run computed its features instead."""


class FeatureCache:
    """Feature vectors by content SHA-256 for one extractor version, stored in one SQLite file."""

    def __init__(self, path: str | Path, *, version: int = FEATURE_VERSION, width: int | None = None) -> None:
        self.path = Path(path)
        self.version = version
        names = feature_names(STREAMS)
        self.width = width if width is not None else len(names)
        # Columns stored as float32: the rich streams' (for the extractor's own width; a custom width stores float64).
        single = [n.split(".", 1)[0] in RICH_STREAMS for n in names] if self.width == len(names) else [False] * self.width
        self._single = np.asarray(single, dtype=bool)
        self._blob_size = 4 * int(self._single.sum()) + 8 * int((~self._single).sum())
        self._connection: sqlite3.Connection | None = None
        self._pruned = False
        self.disabled_reason: str | None = None

    def _connect(self) -> sqlite3.Connection | None:
        if self._connection is not None or self.disabled_reason:
            return self._connection
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            connection.execute("PRAGMA busy_timeout = 60000")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS features (sha256 TEXT NOT NULL, version INTEGER NOT NULL, "
                "vector BLOB NOT NULL, PRIMARY KEY (sha256, version)) WITHOUT ROWID"
            )
        except (sqlite3.Error, OSError) as exc:
            self._disable(f"cannot open feature cache {self.path}: {exc}")
            return None
        self._connection = connection
        return connection

    def _disable(self, reason: str) -> None:
        self.disabled_reason = reason
        log.warning("%s; computing features without it", reason)
        warnings.warn(f"{reason}; computing features without it", FeatureCacheWarning, stacklevel=3)
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def get_many(self, digests: Iterable[str]) -> dict[str, np.ndarray]:
        """Cached vectors for those of ``digests`` that have one (for this version and width)."""
        connection = self._connect()
        if connection is None:
            return {}
        wanted = list(dict.fromkeys(digests))
        found: dict[str, np.ndarray] = {}
        try:
            for start in range(0, len(wanted), _BATCH):
                batch = wanted[start: start + _BATCH]
                marks = ",".join("?" * len(batch))
                rows = connection.execute(
                    f"SELECT sha256, vector FROM features WHERE version = ? AND sha256 IN ({marks})", [self.version, *batch]
                )
                for digest, blob in rows:
                    vector = self._decode(blob)
                    if vector is not None:
                        found[digest] = vector
        except sqlite3.Error as exc:
            self._disable(f"cannot read feature cache {self.path}: {exc}")
            return {}
        return found

    def put_many(self, vectors: Mapping[str, np.ndarray]) -> None:
        """Store ``vectors`` in one transaction (rows of other extractor versions are dropped the first time)."""
        connection = self._connect()
        if connection is None or not vectors:
            return
        rows = [(digest, self.version, self._encode(np.asarray(v))) for digest, v in vectors.items()
                if np.asarray(v).shape == (self.width,)]
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                if not self._pruned:
                    connection.execute("DELETE FROM features WHERE version != ?", (self.version,))
                connection.executemany("INSERT OR REPLACE INTO features (sha256, version, vector) VALUES (?, ?, ?)", rows)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            self._pruned = True
        except sqlite3.Error as exc:
            self._disable(f"cannot write feature cache {self.path}: {exc}")

    def _encode(self, vector: np.ndarray) -> bytes:
        """The float64 columns then the float32 ones, little-endian, compressed."""
        raw = vector[~self._single].astype("<f8").tobytes() + vector[self._single].astype("<f4").tobytes()
        return zlib.compress(raw, _ZLIB_LEVEL)

    def _decode(self, blob: bytes) -> np.ndarray | None:
        """The row :meth:`_encode` stored (float64), or None for a blob of another layout."""
        try:
            raw = zlib.decompress(blob)
        except zlib.error:
            return None
        if len(raw) != self._blob_size:
            return None
        doubles = 8 * int((~self._single).sum())
        vector = np.empty(self.width)
        vector[~self._single] = np.frombuffer(raw, dtype="<f8", count=doubles // 8)
        vector[self._single] = np.frombuffer(raw, dtype="<f4", offset=doubles)
        return vector

    def __len__(self) -> int:
        connection = self._connect()
        if connection is None:
            return 0
        return int(connection.execute("SELECT COUNT(*) FROM features WHERE version = ?", (self.version,)).fetchone()[0])

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> FeatureCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["DEFAULT_CACHE", "DEFAULT_PATH", "ENV_VAR", "FeatureCache", "FeatureCacheWarning", "default_cache_path"]
