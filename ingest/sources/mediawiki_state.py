"""What a MediaWiki API source remembers between syncs: where the wiki's change feeds were read up to
(recentchanges and the log), and every page it indexed with its revision and content hash.

Kept in SQLite beside the embedding cache (index/cache/mediawiki.sqlite3), one row set per source
(its api.php URL, namespaces and render mode). A sync works on a copy; `save` replaces the source's
rows in one transaction, and the source calls it only once the version built from them is published.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursors (
    source TEXT PRIMARY KEY,   -- api.php URL, namespaces, render mode
    cursor TEXT NOT NULL       -- JSON: see Cursor
);
CREATE TABLE IF NOT EXISTS pages (
    source TEXT NOT NULL,
    pageid INTEGER NOT NULL,
    ns INTEGER NOT NULL,
    title TEXT NOT NULL,
    revid INTEGER NOT NULL,
    touched TEXT,
    article_id TEXT NOT NULL,
    hash TEXT,                 -- the article's content hash; NULL when the page was skipped
    skip TEXT,                 -- why the page was skipped (hidden text, over the size limit, ...)
    PRIMARY KEY (source, pageid)
);
"""


@dataclass
class Cursor:
    """Where the change feeds were read up to: recentchanges (timestamp, rcid) and the log (timestamp, logid)."""

    rc_timestamp: str
    rcid: int = 0
    log_timestamp: str = ""
    logid: int = 0
    last_full: float = 0.0  # time.time() of the last full sync or reconciliation
    syncs: int = 0
    namespaces: dict = field(default_factory=dict)  # namespace number (as text) -> name, from siteinfo


@dataclass(frozen=True)
class PageRecord:
    """A page as last synced."""

    pageid: int
    ns: int
    title: str
    revid: int
    touched: str | None
    article_id: str
    hash: str | None
    skip: str | None = None


class SyncState:
    """The stored cursors and pages of every API source of one index; in memory when path is None."""

    def __init__(self, path: Path | None):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path) if path is not None else ":memory:")
        self.db.executescript(_SCHEMA)

    def load(self, source: str) -> tuple[Cursor, dict[int, PageRecord]] | None:
        """The source's cursor and pages, or None when it was never synced."""
        row = self.db.execute("SELECT cursor FROM cursors WHERE source = ?", (source,)).fetchone()
        if row is None:
            return None
        pages = {r[0]: PageRecord(*r) for r in self.db.execute(
            "SELECT pageid, ns, title, revid, touched, article_id, hash, skip FROM pages WHERE source = ?", (source,))}
        return Cursor(**json.loads(row[0])), pages

    def save(self, source: str, cursor: Cursor, pages: dict[int, PageRecord]) -> None:
        """Replace the source's cursor and pages, all at once."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?)", (source, json.dumps(asdict(cursor))))
            self.db.execute("DELETE FROM pages WHERE source = ?", (source,))
            self.db.executemany("INSERT INTO pages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                [(source, p.pageid, p.ns, p.title, p.revid, p.touched, p.article_id, p.hash, p.skip)
                                 for p in pages.values()])

    def close(self) -> None:
        self.db.close()
