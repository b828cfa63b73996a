"""The embedding cache: vectors already computed, keyed by model and passage-text hash.

It outlives index versions, so an article removed and later restored, a renamed one, or a
build killed half-way through embedding costs no new embedding next time. SQLite gives the
crash safety for free: a write is a transaction, and a process killed mid-write leaves the
last committed state.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

log = logging.getLogger(__name__)

CACHE_FILE = "embeddings.sqlite3"
DEFAULT_MAX_ENTRIES = 100_000  # about 150 MB of 384-dimension vectors
_CHUNK = 500  # keys per SQL statement, well under SQLite's variable limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    model TEXT NOT NULL,
    hash TEXT NOT NULL,
    dimension INTEGER NOT NULL,
    vector BLOB NOT NULL,
    last_used REAL NOT NULL,
    PRIMARY KEY (model, hash)
) WITHOUT ROWID
"""


def cache_path(index_dir: Path) -> Path:
    """Where the cache of an index folder lives."""
    return Path(index_dir) / "cache" / CACHE_FILE


def vector_space(embedder) -> str:
    """The embedder's vector space (model, plus "#int8-f<export format>" for a quantised encoder): what cached
    vectors, and a previous version's, must match to be reused."""
    return getattr(embedder, "vectors", embedder.name)


class EmbeddingCache:
    """Vectors of one model by passage hash, read and written only by the build holding the lock."""

    def __init__(self, path: Path, model: str, dimension: int):
        self.path = Path(path)
        self.model = model
        self.dimension = dimension
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            # A cache is only an accelerator: a damaged one is set aside, never a reason to fail a build.
            log.warning("embedding cache %s is unreadable (%s); starting a new one", self.path, exc)
            self.path.replace(self.path.with_suffix(f".corrupt-{int(time.time())}"))
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False)
        try:
            # WAL with synchronous=NORMAL survives a killed process; only power loss may drop the last batch.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
            db.execute("SELECT count(*) FROM vectors").fetchone()
            db.commit()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def get_many(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """The cached vectors among hashes (for this model and dimension)."""
        keys = list(dict.fromkeys(hashes))
        found: dict[str, np.ndarray] = {}
        for lo in range(0, len(keys), _CHUNK):
            part = keys[lo:lo + _CHUNK]
            rows = self._db.execute(
                f"SELECT hash, vector FROM vectors WHERE model = ? AND dimension = ? "
                f"AND hash IN ({','.join('?' * len(part))})",
                [self.model, self.dimension, *part],
            )
            for h, blob in rows:
                vector = np.frombuffer(blob, dtype=np.float32)
                if vector.shape == (self.dimension,):
                    found[h] = vector
        return found

    def put_many(self, vectors: Mapping[str, np.ndarray]) -> None:
        """Store vectors by hash and commit, so they survive whatever happens to the build next."""
        now = time.time()
        self._db.executemany(
            "INSERT OR REPLACE INTO vectors (model, hash, dimension, vector, last_used) VALUES (?, ?, ?, ?, ?)",
            [(self.model, h, self.dimension, np.asarray(v, dtype=np.float32).tobytes(), now)
             for h, v in vectors.items()],
        )
        self._db.commit()

    def touch(self, hashes: Iterable[str]) -> None:
        """Mark hashes as used now, so pruning keeps what the current index needs."""
        now = time.time()
        self._db.executemany("UPDATE vectors SET last_used = ? WHERE model = ? AND hash = ?",
                             [(now, self.model, h) for h in set(hashes)])
        self._db.commit()

    def prune(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> int:
        """Drop the least recently used vectors (all models) beyond max_entries; returns how many."""
        (count,) = self._db.execute("SELECT count(*) FROM vectors").fetchone()
        excess = count - max_entries
        if excess <= 0:
            return 0
        self._db.execute(
            "DELETE FROM vectors WHERE (model, hash) IN "
            "(SELECT model, hash FROM vectors ORDER BY last_used ASC LIMIT ?)", (excess,))
        self._db.commit()
        return excess

    def __len__(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM vectors WHERE model = ?", (self.model,)).fetchone()
        return count

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "EmbeddingCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
