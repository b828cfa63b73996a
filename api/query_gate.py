"""At most N query encodings at a time: the rest wait their turn instead of time-sharing the cores."""

from __future__ import annotations

import threading

import numpy as np

from ingest.embedding import Embedder


class GatedEmbedder:
    """An Embedder whose encode_query runs at most `limit` at once; everything else is the embedder's own.

    Under load, many requests encoding at once each run slower (cores and caches shared, the GIL
    passed around), so all of them finish late; queued, each finishes at its own speed in turn.
    """

    def __init__(self, embedder: Embedder, limit: int) -> None:
        self.inner = embedder
        self._gate = threading.BoundedSemaphore(limit)

    def encode_query(self, query: str) -> np.ndarray:
        """One normalised query vector, once a slot is free."""
        with self._gate:
            return self.inner.encode_query(query)

    def __getattr__(self, name: str):
        # name, dimension, encode, count_tokens...: ingest and search see the embedder unchanged.
        return getattr(self.inner, name)
