"""A least-recently-used cache of query vectors in front of an encoder, bounded in entries and in bytes.

A wiki's search log is dominated by a few hundred frequent queries, and each costs a full forward
pass; a vector is a pure function of the query text and the vector space, so a repeated query can
take the vector from memory. The key is the normalised query (whitespace collapsed; case folded only
when the model itself ignores case, checked on a probe) and the encoder's vector space, and the cache
empties itself when the space it wraps changes, so vectors of two models never meet.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from rolesearch.encoder.base import Encoder

_PROBE = "Who Owns MLOps Model Rollback"  # mixed case: the model folds case when its lower-case twin is identical
_KEY_OVERHEAD = 120  # bytes an entry costs beyond its vector and its key's characters (dict slot, tuple, array header)


def normalize_query(query: str, fold_case: bool) -> str:
    """The cache key's text: whitespace runs collapsed and trimmed, lower-cased when the model ignores case."""
    text = " ".join(query.split())
    return text.lower() if fold_case else text


class CachedQueryEncoder:
    """An Encoder whose encode_query answers repeated queries from an LRU of vectors; everything else is the inner one's.

    Shared by every route that encodes a query (/search, /ask, the page), since the app hands the same
    encoder to all of them. Thread-safe: concurrent misses of one query may both encode it (equal vectors).
    """

    def __init__(self, embedder: Encoder, max_entries: int, max_bytes: int) -> None:
        self.inner = embedder
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        self._space: str | None = None
        self._fold_case = False

    def _check_space(self) -> str:
        """The inner encoder's vector space; a new one empties the cache and re-checks case folding."""
        space = self.inner.vectors
        if space != self._space:
            fold = bool(np.array_equal(self.inner.encode_query(_PROBE), self.inner.encode_query(_PROBE.lower())))
            with self._lock:
                self._clear_locked()
                self._space, self._fold_case = space, fold
        return space

    def encode_query(self, query: str) -> np.ndarray:
        """The query's normalised vector, shape (1, dimension): from the cache, else from the encoder (then kept)."""
        space = self._check_space()
        key = (space, normalize_query(query, self._fold_case))
        with self._lock:
            vector = self._entries.get(key)
            if vector is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return vector
            self.misses += 1
        vector = np.array(self.inner.encode_query(query), dtype=np.float32, copy=True)
        vector.flags.writeable = False  # one array handed to every request that repeats the query
        self._put(key, vector)
        return vector

    def _put(self, key: tuple[str, str], vector: np.ndarray) -> None:
        size = _entry_bytes(key, vector)
        if self.max_entries <= 0 or size > self.max_bytes:
            return
        with self._lock:
            if key[0] != self._space or key in self._entries:  # the space moved on meanwhile, or another thread won
                return
            self._entries[key] = vector
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                old_key, old = self._entries.popitem(last=False)
                self._bytes -= _entry_bytes(old_key, old)

    def clear(self) -> None:
        """Forget every vector (the counters stay)."""
        with self._lock:
            self._clear_locked()

    def _clear_locked(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def stats(self) -> dict:
        """Entries, bytes held, the bounds, and hits and misses since start."""
        with self._lock:
            return {
                "entries": len(self._entries),
                "bytes": self._bytes,
                "max_entries": self.max_entries,
                "max_bytes": self.max_bytes,
                "hits": self.hits,
                "misses": self.misses,
            }

    def __getattr__(self, name: str):
        # name, vectors, dimension, encode, encode_queries...: ingest and search see the embedder unchanged.
        return getattr(self.inner, name)


def _entry_bytes(key: tuple[str, str], vector: np.ndarray) -> int:
    return int(vector.nbytes) + len(key[1]) + _KEY_OVERHEAD
