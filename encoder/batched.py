"""At most N query encodings at a time; queries that arrive while they run are encoded together in one pass."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from rolesearch.encoder.base import Encoder


@dataclass(eq=False)
class _Pending:
    """One query waiting for its vector (filled in by whichever thread ran its pass)."""

    query: str
    vector: np.ndarray | None = None
    error: BaseException | None = None
    taken: bool = False  # in a pass already (another thread's)
    done: bool = False


class BatchedQueryEncoder:
    """An Encoder whose encode_query runs at most `limit` passes at once; everything else is the embedder's own.

    Under load, many requests encoding at once each run slower (cores and caches shared, the GIL
    passed around), so all of them finish late; queued, each finishes at its own speed in turn.
    A query that finds a pass free runs at once (nothing waits for a batch to fill); one that finds
    every pass busy queues, and the next free pass takes it with up to `batch - 1` others queued
    behind it: one forward pass for several queries costs less CPU per query than one each.
    Batching needs the embedder's `encode_queries` and `batch_invariant` (a query's vector does not
    depend on its batch-mates: fp32 yes, dynamic int8 no, its activation scale is the whole batch's).
    """

    def __init__(self, embedder: Encoder, limit: int, batch: int = 1) -> None:
        self.inner = embedder
        self._limit = limit
        batched = batch > 1 and hasattr(embedder, "encode_queries") and getattr(embedder, "batch_invariant", False)
        self._batch = batch if batched else 1
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._running = 0

    def encode_query(self, query: str) -> np.ndarray:
        """One normalised query vector, from the first pass that is free (shared with other waiting queries)."""
        mine = _Pending(query)
        with self._cond:
            self._queue.append(mine)
            while not mine.done and (mine.taken or self._running >= self._limit):
                self._cond.wait()
            lead = not mine.done
            if lead:
                self._queue.remove(mine)
                batch = [mine] + self._queue[:self._batch - 1]
                del self._queue[:len(batch) - 1]
                for p in batch:
                    p.taken = True
                self._running += 1
        if lead:
            self._encode(batch)
        if mine.error is not None:
            raise mine.error
        return mine.vector

    def _encode(self, batch: list[_Pending]) -> None:
        """Run one pass for batch and hand every waiting query its row (or the pass's error)."""
        vectors = error = None
        try:
            if len(batch) == 1:
                vectors = self.inner.encode_query(batch[0].query)
            else:
                vectors = self.inner.encode_queries([p.query for p in batch])
        except BaseException as exc:  # every query of the pass gets it, not only the one that ran it
            error = exc
        finally:
            with self._cond:
                for i, p in enumerate(batch):
                    p.vector = vectors[i:i + 1] if vectors is not None else None
                    p.error, p.done = error, True
                self._running -= 1
                self._cond.notify_all()

    def __getattr__(self, name: str):
        # name, dimension, encode, count_tokens...: ingest and search see the embedder unchanged.
        return getattr(self.inner, name)
