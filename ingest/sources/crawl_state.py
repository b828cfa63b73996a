"""What a crawl remembers between runs, per URL: its validators (ETag, Last-Modified), the page as
extracted, and its links, so an unchanged page answers 304 and costs neither a download nor a parse.

Kept in SQLite next to the embedding cache (index/cache/crawl.sqlite3).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pages (
    source TEXT NOT NULL,          -- the crawl's start URL
    url TEXT NOT NULL,             -- the URL requested
    etag TEXT,
    last_modified TEXT,
    page TEXT NOT NULL,            -- JSON: the extracted page (see CrawledPage)
    PRIMARY KEY (source, url)
)
"""


@dataclass(frozen=True)
class CrawledPage:
    """A fetched page as extracted: enough to rebuild its article and follow its links without fetching it."""

    url: str  # canonical
    title: str
    text: str
    headings: list
    links: list
    content_hash: str
    etag: str | None = None
    last_modified: str | None = None
    noindex: bool = False  # robots meta tag or X-Robots-Tag: read for its links, never indexed
    nofollow: bool = False  # its links are not followed (unless it is the start page)

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in self.__dict__.items() if k not in ("etag", "last_modified")})


class CrawlState:
    """Validators and extracted pages by (source, URL); an in-memory database when path is None."""

    def __init__(self, path: Path | None, source: str):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.source = source
        self.db = sqlite3.connect(str(path) if path is not None else ":memory:")
        self.db.execute(_SCHEMA)

    def get(self, url: str) -> CrawledPage | None:
        """The page as last fetched from url, with its validators."""
        row = self.db.execute("SELECT etag, last_modified, page FROM pages WHERE source = ? AND url = ?",
                              (self.source, url)).fetchone()
        if row is None:
            return None
        return CrawledPage(**json.loads(row[2]), etag=row[0], last_modified=row[1])

    def put(self, url: str, page: CrawledPage) -> None:
        """Remember what url gave."""
        self.db.execute("INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?, ?)",
                        (self.source, url, page.etag, page.last_modified, page.to_json()))

    def forget_all_but(self, urls: set[str]) -> None:
        """Drop every URL of this source the last crawl did not reach (gone, or no longer linked)."""
        known = [u for (u,) in self.db.execute("SELECT url FROM pages WHERE source = ?", (self.source,))]
        self.db.executemany("DELETE FROM pages WHERE source = ? AND url = ?",
                            [(self.source, u) for u in known if u not in urls])

    def close(self) -> None:
        self.db.commit()
        self.db.close()
