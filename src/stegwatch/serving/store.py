"""Production events and feedback, in the monitor's history database (SQLite, WAL).

Each request is one ``BEGIN IMMEDIATE`` transaction, so concurrent writers
take turns and a kill mid-request leaves either the whole batch or none of
it. ``request_id`` is the primary key: an identical retry is counted as a
duplicate and not stored again; a different body under a used id is a
conflict, reported, and the whole batch holding it is not stored. Connections are per thread (the web
server runs handlers on a thread pool).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stegwatch.monitoring import history
from stegwatch.serving.events import Feedback, ScanEvent

_SCHEMA = """
CREATE TABLE IF NOT EXISTS production_events (
    request_id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    received REAL NOT NULL,
    model_version TEXT NOT NULL,
    latency_ms REAL NOT NULL,
    score REAL,
    verdict TEXT NOT NULL,
    method TEXT,
    image_format TEXT NOT NULL,
    image_bytes INTEGER NOT NULL,
    width INTEGER,
    height INTEGER,
    error TEXT,
    body_sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS production_events_by_time ON production_events (ts);
CREATE TABLE IF NOT EXISTS production_feedback (
    request_id TEXT PRIMARY KEY REFERENCES production_events (request_id),
    label TEXT NOT NULL,
    reviewer TEXT,
    received REAL NOT NULL
);
"""

COLUMNS = ("request_id", "ts", "model_version", "latency_ms", "score", "verdict", "method", "image_format", "label")


@dataclass
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    conflicts: list[str] = field(default_factory=list)

    def to_json_dict(self) -> dict:
        return {"stored": self.stored, "duplicates": self.duplicates, "conflicts": self.conflicts}


def _body_digest(event: ScanEvent) -> str:
    return hashlib.sha256(event.model_dump_json().encode()).hexdigest()


class ProductionStore:
    """The production tables of one history database."""

    def __init__(self, db: str | Path = history.DEFAULT_DB) -> None:
        self.db = Path(db)
        self._local = threading.local()
        with history.connect(self.db) as connection:  # the monitor's tables, then ours
            connection.executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.db, timeout=30.0, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
            self._local.connection = connection
        return connection

    def _write(self, work):
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = work(connection)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return result

    def add_events(self, events: Iterable[ScanEvent]) -> IngestResult:
        """Store new events in one transaction; identical retries are duplicates, reused ids with new bodies conflicts.

        A batch with any conflict stores nothing (``stored`` 0, every conflicting id listed).
        """
        events = list(events)
        received = time.time()
        digests = [_body_digest(e) for e in events]

        def work(connection: sqlite3.Connection) -> IngestResult:
            result = IngestResult()
            known: dict[str, str] = {}
            ids = [e.request_id for e in events]
            for start in range(0, len(ids), 500):
                batch = ids[start: start + 500]
                rows = connection.execute(
                    f"SELECT request_id, body_sha256 FROM production_events WHERE request_id IN ({','.join('?' * len(batch))})", batch)
                known.update(rows.fetchall())
            fresh = []
            for event, digest in zip(events, digests, strict=True):
                if event.request_id in known:
                    if known[event.request_id] == digest:
                        result.duplicates += 1
                    else:
                        result.conflicts.append(event.request_id)
                    continue
                known[event.request_id] = digest
                fresh.append((event.request_id, event.timestamp.timestamp(), received, event.model_version, event.latency_ms,
                              event.score, event.verdict, event.method, event.image_format, event.image_bytes, event.width,
                              event.height, event.error, digest))
            if result.conflicts:  # a batch is stored whole or not at all
                return result
            connection.executemany(f"INSERT INTO production_events VALUES ({','.join('?' * 14)})", fresh)
            result.stored = len(fresh)
            return result

        return self._write(work)

    def add_feedback(self, feedback: Feedback) -> bool | None:
        """Record a label; True if new, False if it replaced an earlier label, None if the request is unknown."""
        def work(connection: sqlite3.Connection) -> bool | None:
            if connection.execute("SELECT 1 FROM production_events WHERE request_id = ?", (feedback.request_id,)).fetchone() is None:
                return None
            earlier = connection.execute("SELECT 1 FROM production_feedback WHERE request_id = ?", (feedback.request_id,)).fetchone()
            connection.execute("INSERT OR REPLACE INTO production_feedback VALUES (?, ?, ?, ?)",
                               (feedback.request_id, feedback.label, feedback.reviewer, time.time()))
            return earlier is None

        return self._write(work)

    def events_since(self, since: float) -> dict[str, np.ndarray]:
        """Columns of every event with ``ts >= since`` (with its feedback label, if any), as arrays."""
        rows = self._connection().execute(
            "SELECT e.request_id, e.ts, e.model_version, e.latency_ms, e.score, e.verdict, e.method, e.image_format, f.label "
            "FROM production_events e LEFT JOIN production_feedback f USING (request_id) WHERE e.ts >= ?", (since,)).fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
        out = {}
        for name, values in zip(COLUMNS, columns, strict=True):
            if name in ("ts", "latency_ms", "score"):
                out[name] = np.asarray([np.nan if v is None else v for v in values], dtype=float)
            else:
                out[name] = np.asarray(["" if v is None else v for v in values], dtype=object)
        return out

    def counts(self) -> dict[str, int]:
        """How many events and feedback labels are stored."""
        connection = self._connection()
        events = connection.execute("SELECT COUNT(*) FROM production_events").fetchone()[0]
        feedback = connection.execute("SELECT COUNT(*) FROM production_feedback").fetchone()[0]
        return {"events": int(events), "feedback": int(feedback)}

    def change_token(self) -> tuple[int, int]:
        """The newest rowid of each table: with :meth:`counts`, a value that moves with every write by any process.

        A relabel (``INSERT OR REPLACE``) leaves the counts alone but gives its
        row a new rowid. ``MAX(rowid)`` reads one end of each table's B-tree,
        so asking costs nothing next to counting.
        """
        connection = self._connection()
        return tuple(int(v) for v in connection.execute(
            "SELECT (SELECT IFNULL(MAX(rowid), 0) FROM production_events),"
            " (SELECT IFNULL(MAX(rowid), 0) FROM production_feedback)").fetchone())

    def status(self) -> dict:
        """The store's health: reachable, its journal mode and what it holds."""
        connection = self._connection()
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        return {"ok": True, "path": str(self.db), "journal_mode": mode, **self.counts()}

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


__all__ = ["IngestResult", "ProductionStore"]
