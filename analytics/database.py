"""The analytics database: one SQLite file in WAL mode, its own, never inside an index version.

    searches  one row per /search or /ask: time, query (or only its keyed hash), mode, filters, ranked passage
              ids, whether it was answered, the answer's evidence, latency, index version, reader hash
    clicks    a hit opened: search id, rank, time, reader hash
    feedback  a thumbs up (+1) or down (-1) on the answer (rank NULL) or on a hit, with an optional comment
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS searches (
    id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    endpoint TEXT NOT NULL,
    query TEXT,
    query_hash TEXT NOT NULL,
    mode TEXT,
    filters TEXT,
    hits TEXT NOT NULL,
    answered INTEGER NOT NULL,
    abstained INTEGER,
    answer TEXT,
    evidence TEXT,
    latency_ms REAL,
    index_version TEXT,
    reader TEXT
);
CREATE INDEX IF NOT EXISTS searches_ts ON searches(ts);
CREATE TABLE IF NOT EXISTS clicks (
    search_id TEXT NOT NULL,
    ts REAL NOT NULL,
    rank INTEGER NOT NULL,
    reader TEXT
);
CREATE INDEX IF NOT EXISTS clicks_search ON clicks(search_id);
CREATE INDEX IF NOT EXISTS clicks_ts ON clicks(ts);
CREATE TABLE IF NOT EXISTS feedback (
    search_id TEXT NOT NULL,
    ts REAL NOT NULL,
    rank INTEGER,
    judgement INTEGER NOT NULL,
    comment TEXT,
    reader TEXT
);
CREATE INDEX IF NOT EXISTS feedback_search ON feedback(search_id);
CREATE INDEX IF NOT EXISTS feedback_ts ON feedback(ts);
"""
TABLES = ("searches", "clicks", "feedback")


class AnalyticsUnavailable(Exception):
    """The analytics database does not exist or cannot be read."""


def open_database(path: Path, busy_ms: int = 500) -> sqlite3.Connection:
    """Open (and create) the database for writing: WAL, the schema in place; sqlite3.Error if it cannot be."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=busy_ms / 1000, check_same_thread=False, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL: a power cut may lose the last batch, never corrupt
        conn.executescript(SCHEMA)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def open_for_reading(path: Path) -> sqlite3.Connection:
    """A read-only connection for reports; AnalyticsUnavailable when there is no database yet."""
    path = Path(path)
    if not path.is_file():
        raise AnalyticsUnavailable(f"no analytics database at {path} "
                                   "(nothing recorded yet, or ROLESEARCH_ANALYTICS=off)")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2.0, check_same_thread=False)
        conn.execute("SELECT 1 FROM searches LIMIT 1")
    except sqlite3.Error as exc:
        raise AnalyticsUnavailable(f"analytics database {path} cannot be read: {exc}") from exc
    conn.row_factory = sqlite3.Row
    return conn


def prune(conn: sqlite3.Connection, before_ts: float) -> int:
    """Delete every row older than before_ts (Unix time); the number deleted."""
    deleted = 0
    with conn:
        conn.execute("BEGIN")
        for table in TABLES:
            deleted += conn.execute(f"DELETE FROM {table} WHERE ts < ?", (before_ts,)).rowcount
    return deleted
