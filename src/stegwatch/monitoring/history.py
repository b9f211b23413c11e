"""The run history: one row per monitor run, in an embedded SQLite database.

SQLite in WAL mode with a busy timeout and one short write transaction per
run, so concurrent monitor runs (separate processes) all land and none
corrupts the file. ``export_jsonl`` gives the same rows as JSON Lines.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path

from stegwatch.errors import BaselineNotFound

#: The run history every verb reads and writes unless told otherwise.
DEFAULT_DB = Path(".stegwatch") / "history.db"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    timestamp TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    corpus_manifest_sha256 TEXT NOT NULL,
    status TEXT NOT NULL,
    metrics TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_model ON runs (model_name, timestamp);
CREATE TABLE IF NOT EXISTS baselines (
    model_name TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    accepted_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts_sent (
    fingerprint TEXT PRIMARY KEY,
    first_run_id TEXT NOT NULL,
    last_run_id TEXT NOT NULL
);
"""


class HistoryError(ValueError):
    """A history database that cannot be used: missing where a command only reads, or not a SQLite database."""


def _missing(path: Path) -> HistoryError:
    folder = "" if path.parent.is_dir() else f" (no folder {path.parent})"
    return HistoryError(f"no history database at {path}{folder}: run `stegwatch monitor` first, or give --db")


@contextmanager
def connect(db: str | Path = DEFAULT_DB, *, create: bool = True):
    """A connection with WAL, a 30 s busy timeout and foreign keys; the schema is created if missing.

    ``create=False`` refuses a database (or folder) that does not exist
    instead of creating it. A file that is not a SQLite database raises
    :class:`HistoryError`, naming the file.
    """
    path = Path(db)
    if not create and not path.is_file():
        raise _missing(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        connection = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    except sqlite3.Error as exc:
        raise HistoryError(f"cannot open the history database {path}: {exc}") from None
    with closing(connection):
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.executescript(_SCHEMA)
        except sqlite3.OperationalError:  # locked, read-only, out of space: the file itself is fine
            raise
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{path} is not a stegwatch history database: {exc}") from None
        yield connection


_SQLITE_HEADER = b"SQLite format 3\x00"


def check_database(db: str | Path = DEFAULT_DB) -> None:
    """Raise :class:`HistoryError` when ``db`` exists and is not a SQLite file (a missing one is created when written).

    Reads 16 bytes and takes no lock, so a run can refuse a bad ``--db`` before its long work starts.
    """
    path = Path(db)
    if not path.exists():
        return
    if not path.is_file():
        raise HistoryError(f"{path} is not a stegwatch history database: not a file")
    with path.open("rb") as handle:
        head = handle.read(len(_SQLITE_HEADER))
    if head and head != _SQLITE_HEADER:
        raise HistoryError(f"{path} is not a stegwatch history database: not a SQLite file")


def append_run(metrics: dict, status: str, db: str | Path = DEFAULT_DB) -> str:
    """Store one run (its whole metrics JSON) in one transaction; returns its run id."""
    run = metrics["run"]
    with connect(db) as connection:
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run["run_id"], run["timestamp"], run["model"]["name"], run["model"]["version"], run["model"]["sha256"],
                 run["corpus"]["manifest_sha256"], status, json.dumps(metrics, sort_keys=True)),
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    return run["run_id"]


_RUN_COLUMNS = "SELECT run_id, timestamp, model_name, model_version, status, metrics FROM runs"


def _select_runs(db: str | Path, where: str = "", args: tuple = ()) -> list[dict]:
    if not Path(db).exists():  # nothing stored yet; reading never creates the file or its folder
        return []
    with connect(db, create=False) as connection:
        rows = connection.execute(f"{_RUN_COLUMNS} {where} ORDER BY timestamp, run_id", args).fetchall()
    return [{"run_id": r[0], "timestamp": r[1], "model_name": r[2], "model_version": r[3], "status": r[4],
             "metrics": json.loads(r[5])} for r in rows]


def runs(db: str | Path = DEFAULT_DB, model_name: str | None = None) -> list[dict]:
    """Every stored run (oldest first) with its metrics, optionally for one model."""
    return _select_runs(db, "WHERE model_name = ?", (model_name,)) if model_name else _select_runs(db)


def get_run(run_id: str, db: str | Path = DEFAULT_DB) -> dict | None:
    found = _select_runs(db, "WHERE run_id = ?", (run_id,))
    return found[0] if found else None


def latest_runs(db: str | Path = DEFAULT_DB) -> list[dict]:
    """The newest run of each model (oldest first), read without loading the rest of the history."""
    return _select_runs(db, "WHERE run_id IN (SELECT run_id FROM runs AS newer WHERE newer.timestamp = "
                            "(SELECT MAX(timestamp) FROM runs AS same WHERE same.model_name = newer.model_name))")


def accept_baseline(run_id: str, db: str | Path = DEFAULT_DB) -> None:
    """Make ``run_id`` the baseline of its model (``stegwatch baseline accept RUN``)."""
    from datetime import UTC, datetime

    if not Path(db).exists():
        raise KeyError(str(_missing(Path(db))))
    run = get_run(run_id, db)
    if run is None:
        raise BaselineNotFound(f"no run {run_id!r} in {db}")
    with connect(db) as connection:
        connection.execute("INSERT OR REPLACE INTO baselines VALUES (?, ?, ?)",
                           (run["model_name"], run_id, datetime.now(UTC).isoformat(timespec="seconds")))


def baseline_for(model_name: str, db: str | Path = DEFAULT_DB) -> dict | None:
    """The accepted baseline run of ``model_name``, or None."""
    if not Path(db).exists():
        return None
    with connect(db, create=False) as connection:
        row = connection.execute("SELECT run_id FROM baselines WHERE model_name = ?", (model_name,)).fetchone()
    return get_run(row[0], db) if row else None


def mark_alert_sent(fingerprint: str, run_id: str, db: str | Path = DEFAULT_DB) -> bool:
    """Record that an alert was sent; False when the same alert was already sent (condition persists)."""
    with connect(db) as connection:
        connection.execute("BEGIN IMMEDIATE")
        known = connection.execute("SELECT 1 FROM alerts_sent WHERE fingerprint = ?", (fingerprint,)).fetchone()
        if known:
            connection.execute("UPDATE alerts_sent SET last_run_id = ? WHERE fingerprint = ?", (run_id, fingerprint))
        else:
            connection.execute("INSERT INTO alerts_sent VALUES (?, ?, ?)", (fingerprint, run_id, run_id))
        connection.execute("COMMIT")
    return not known


def forget_alerts_sent(fingerprints: list[str], run_id: str, db: str | Path = DEFAULT_DB) -> None:
    """Undo :func:`mark_alert_sent` for alerts first marked by ``run_id`` (none of them was delivered)."""
    with connect(db) as connection:
        connection.executemany("DELETE FROM alerts_sent WHERE fingerprint = ? AND first_run_id = ?",
                               [(fingerprint, run_id) for fingerprint in fingerprints])


def clear_resolved_alerts(model: str, active: set[str], db: str | Path = DEFAULT_DB) -> None:
    """Forget ``model``'s alerts whose condition no longer holds, so they are sent again if it returns.

    Other models' alerts are left alone: their conditions were not checked in this run.
    """
    with connect(db) as connection:
        for (fingerprint,) in connection.execute("SELECT fingerprint FROM alerts_sent").fetchall():
            if fingerprint.startswith(f"{model}|") and fingerprint not in active:
                connection.execute("DELETE FROM alerts_sent WHERE fingerprint = ?", (fingerprint,))


def export_jsonl(db: str | Path = DEFAULT_DB) -> str:
    """The history as JSON Lines: one run per line, oldest first. Raises :class:`HistoryError` when there is no database."""
    if not Path(db).is_file():
        raise _missing(Path(db))
    return "".join(json.dumps(run, sort_keys=True) + "\n" for run in runs(db))
