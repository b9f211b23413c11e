"""The feature cache: one SQLite file of feature rows keyed by content hash and extractor version.

A row is served only for the same file content (its SHA-256, computed by the
reader, never trusted from a manifest) and the same :data:`FEATURE_VERSION`;
a changed file or a new extractor is recomputed. The file lives under
``.stegwatch/`` (``STEGWATCH_FEATURE_CACHE`` names another). SQLite in WAL
mode with a busy timeout makes concurrent runs safe: readers never block,
writers take turns, and each batch of rows is committed in one transaction,
so an interrupted run keeps what it finished. A cache that cannot be opened
or read is reported as a warning and the run goes on without it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from stegwatch.features.streams import FEATURE_VERSION, STREAMS, feature_names

log = logging.getLogger(__name__)

ENV_VAR = "STEGWATCH_FEATURE_CACHE"
DEFAULT_PATH = Path(".stegwatch") / "features.sqlite"
_BATCH = 500  # digests per SELECT (below SQLite's host-parameter limit)


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
        self.width = width if width is not None else len(feature_names(STREAMS))
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
                    if len(blob) == 8 * self.width:
                        found[digest] = np.frombuffer(blob, dtype="<f8").copy()
        except sqlite3.Error as exc:
            self._disable(f"cannot read feature cache {self.path}: {exc}")
            return {}
        return found

    def put_many(self, vectors: Mapping[str, np.ndarray]) -> None:
        """Store ``vectors`` in one transaction (rows of other extractor versions are dropped the first time)."""
        connection = self._connect()
        if connection is None or not vectors:
            return
        rows = [(digest, self.version, np.asarray(v, dtype="<f8").tobytes()) for digest, v in vectors.items()
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
