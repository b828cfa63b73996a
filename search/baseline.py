"""The peer baseline every evaluation reports beside the served ranker: a plain hybrid, no tuning.

It is what a reader would build first with the same index (as txtai's `hybrid=True` does):
- lexical: BM25 over the passage text field only (no heading or title fields);
- dense: the cosine of the passage's own vector (no sentence vectors);
- fusion: min-max normalised over the top `candidates` of each, equal weights (0.5 / 0.5);
- no role prior, no per-section cap, no highlights.

It reads the same index files as `Searcher` (the FAISS passage index and the "text" BM25
field), so the two differ only in ranking.
"""

from __future__ import annotations

import time

from rolesearch.encoder.base import Encoder
from rolesearch.search.fusion import convex, ranked
from rolesearch.search.index import SearchIndex
from rolesearch.search.searcher import MODES, Hit, SearchResult
from rolesearch.store.lexical import analyze, lexical_scores


class BaselineSearcher:
    """The baseline ranker over a loaded index; same search() signature as Searcher."""

    def __init__(self, index: SearchIndex, embedder: Encoder, candidates: int = 100):
        self.index = index
        self.embedder = embedder
        self.candidates = candidates

    def search(self, query: str, k: int = 5, mode: str = "hybrid", **_ignored) -> SearchResult:
        """The top k passages by the baseline's dense, lexical or fused score (extra Searcher options are ignored)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        t0 = time.perf_counter()
        n = len(self.index.passages)
        depth = min(n, max(self.candidates, k))
        dense: dict[int, float] = {}
        lexical: dict[int, float] = {}
        if n and mode in ("dense", "hybrid"):
            scores, ids = self.index.dense.search(self.embedder.encode_query(query), depth)
            dense = {int(i): float(s) for i, s in zip(ids[0], scores[0]) if i >= 0}
        if n and mode in ("lexical", "hybrid") and self.index.lexical is not None:
            bm25 = lexical_scores(self.index.lexical.text, analyze([query])[0])
            top = ranked({i: float(s) for i, s in enumerate(bm25) if s > 0})[:depth]
            lexical = {i: float(bm25[i]) for i in top}
        fused = convex(dense, lexical, 0.5) if mode == "hybrid" else dense if mode == "dense" else lexical
        hits = [Hit(rank=r, score=float(fused[i]), passage=self.index.passages[i], dense=dense.get(i),
                    lexical=lexical.get(i), fused=float(fused[i]) if mode == "hybrid" else None)
                for r, i in enumerate(ranked(fused)[:k], start=1)]
        took = (time.perf_counter() - t0) * 1000
        return SearchResult(query, mode, hits, self.index.version, round(took, 2))
