"""Rank passages for a query: dense, lexical, or their fusion, with section diversity.

Dense scores blend each passage's own cosine with its best sentence's (search.blend). They are
exact over all rows when the version's indexes are flat; with approximate ones, candidates come
from the passage and the sentence index and are rescored exactly against the stored vectors, read
by pread (store.vector_rows). Lexical scores are store.lexical's field-weighted BM25 top-k. Fusion
(search.fusion) is convex min-max by default; ownership questions get a small prior for passages
that name a role (read from the passage table's roles column). Passage rows are decoded only for
diversity's candidates and the hits, which also get highlights (search.highlight).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from rolesearch.encoder.base import Encoder
from rolesearch.search.blend import blend, blend_candidates
from rolesearch.search.fusion import convex, guard_top1, ranked, rrf
from rolesearch.search.highlight import Highlight, best_sentences, query_terms
from rolesearch.search.index import SearchIndex
from rolesearch.search.query import is_ownership
from rolesearch.store import ann
from rolesearch.store.lexical import term_idf
from rolesearch.store.passage import Passage
from rolesearch.store.roles import RoleConfig

Mode = Literal["dense", "lexical", "hybrid"]
EXACT_ALLOWED = 5_000  # at most this many allowed passages: score them all exactly rather than filter an ANN search
SENTENCE_DEPTH = 3  # sentence candidates per passage candidate (a passage has ~5 sentences; its best few count)
MODES: tuple[str, ...] = ("dense", "lexical", "hybrid")
AGREE_DEPTH = 5  # the two rankers agree when the dense top hit is in the lexical top this many


@dataclass(frozen=True)
class SearchConfig:
    """Ranking knobs (alpha and sentence_weight tuned on SciFact's train split; see README)."""

    candidates: int = 100  # per ranker, before fusion
    fusion: Literal["rrf", "convex"] = "convex"
    rrf_k: float = 60.0
    rrf_dense_weight: float = 1.0  # weight of the dense ranking in RRF (lexical weighs 1)
    alpha: float = 0.6  # weight of dense in the convex combination
    normalization: str = "minmax"  # convex: how each ranker's scores are scaled (search.fusion.NORMALIZATIONS)
    top1_guard: bool = False  # hybrid: keep each ranker's top-1 in the top 3 when the other ranks it below 10
    max_per_section: int = 2  # 0 turns diversity off
    sentence_vectors: bool = True  # also score a passage by its best sentence's vector (when indexed)
    sentence_weight: float = 0.6  # dense = (1 - w) * own cosine + w * max(own, best sentence cosine)
    section_weight: float = 0.25  # lexical: weight of the heading-path field (the passage text weighs 1)
    title_weight: float = 0.25  # lexical: weight of the article-title field
    role_prior: float = 0.1  # hybrid: added to the fused score of passages attributing a duty to a role,
    #                          for ownership questions ("who owns X?"); see notes/ranking.md


@dataclass(frozen=True)
class Hit:
    """A ranked passage with the scores that put it there."""

    rank: int
    score: float
    passage: Passage
    dense: float | None = None
    lexical: float | None = None
    fused: float | None = None
    highlight: Highlight | None = None
    row: int | None = None  # the passage's row in the index (its vectors' row)


@dataclass
class SearchResult:
    """Hits for one query against one index version."""

    query: str
    mode: str
    hits: list[Hit]
    index_version: str
    took_ms: float
    extra: dict = field(default_factory=dict)


class Searcher:
    """Holds one loaded index and the model; safe to share between threads."""

    def __init__(self, index: SearchIndex, embedder: Encoder, config: SearchConfig = SearchConfig(),
                 roles: RoleConfig | None = None):
        self.index = index
        self.embedder = embedder
        self.config = config
        self.roles = roles or RoleConfig.load()  # recognises ownership questions (the prior)

    def search(self, query: str, k: int = 5, mode: Mode = "hybrid", max_per_section: int | None = None,
               highlights: bool = True, allow: np.ndarray | None = None, scope: np.ndarray | None = None
               ) -> SearchResult:
        """The top k passages for query in the given mode, each with its best sentence unless highlights is off.

        allow, a boolean mask over the index's passages, keeps the others out before ranking (permissions,
        filters), so the k hits all come from allowed passages; None allows every passage. scope, the
        passages the reader may read (None: all), is what BM25's statistics and highlight weights are taken
        over, so nothing outside it changes a lexical score, a rank or the work a query does.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        t0 = time.perf_counter()
        n = len(self.index.passages)
        depth = min(n, max(self.config.candidates, k * 4))
        dense: dict[int, float] = {}
        lexical: dict[int, float] = {}
        best_passage = corpus = None
        if allow is not None and len(allow) != n:
            raise ValueError(f"allow has {len(allow)} entries for {n} passages")
        if allow is not None and not allow.any():
            n = 0
        if n and mode in ("dense", "hybrid"):
            dense, best_passage, corpus = self._dense(query, depth, allow, scope)
        lexical_index = self.index.lexical_for(scope)
        if n and mode in ("lexical", "hybrid") and lexical_index is not None:
            lexical = self._lexical_top(lexical_index, query, depth, allow)
        fused = fuse(dense, lexical, mode, self.config)
        if mode == "hybrid" and self.config.role_prior and is_ownership(query, self.roles):
            fused = role_prior(fused, self.index.passages.has_roles, self.config.role_prior)
        order = ranked(fused)
        if mode == "hybrid" and self.config.top1_guard:
            order = guard_top1(order, dense, lexical)
        # Rows are decoded from the passage table only here: the candidates diversity looks at, and the hits.
        order, rows = _diversify(order, self.index.passages, k,
                                 self.config.max_per_section if max_per_section is None else max_per_section)
        idf = (lambda tokens: term_idf(lexical_index.text, tokens)) if lexical_index is not None else (lambda t: {})
        marks = best_sentences(query_terms(query, idf), [rows[i].text for i in order]) if highlights else \
            [None] * len(order)
        hits = [
            Hit(
                rank=r,
                score=float(fused[i]),
                passage=rows[i],
                dense=_opt(dense.get(i)) if mode != "lexical" else None,
                lexical=_opt(lexical.get(i)) if mode != "dense" else None,
                fused=float(fused[i]) if mode == "hybrid" else None,
                highlight=mark,
                row=i,
            )
            for r, (i, mark) in enumerate(zip(order, marks), start=1)
        ]
        # Whole milliseconds: finer timings would tell apart paths that differ by what the reader may not see.
        took = float(round((time.perf_counter() - t0) * 1000))
        # Signals of whether the corpus speaks to the query at all (search.answers.abstain weighs them): the best
        # cosine of a passage's own vector (a sentence alone matches off-topic queries more easily than a whole
        # passage), the mean cosine over the passages, and whether the two rankers agree on the top hit.
        extra = {"best_dense": best_passage, "corpus_dense": corpus} if best_passage is not None else {}
        if mode == "hybrid" and dense:
            top_dense = ranked(dense)[0]
            extra["agree"] = top_dense in ranked(lexical)[:AGREE_DEPTH]
        return SearchResult(query, mode, hits, self.index.version, took, extra)

    def _idf(self, tokens: list[str]) -> dict[str, float]:
        """Whole-index idf of analysed tokens (highlights of a search with no reader scope)."""
        return term_idf(self.index.lexical.text, tokens) if self.index.lexical is not None else {}

    def dense_scores(self, query: str, depth: int, allow: np.ndarray | None = None) -> dict[int, float]:
        """Cosine similarity of the top depth passages by the dense index.

        With sentence vectors, a passage's score blends its own cosine with the best of its own and
        its sentences' cosines (multi-vector passages, see search.blend).
        """
        return self._dense(query, depth, allow)[0]

    def _dense(self, query: str, depth: int, allow: np.ndarray | None = None, scope: np.ndarray | None = None
               ) -> tuple[dict[int, float], float, float]:
        """dense_scores, the best cosine of a passage's own vector over the (allowed) index, and the mean one.

        The mean is exact when every allowed passage is scored, else the query's product with the centroid of
        the passages in scope (the reader's readable ones), so a restricted passage never moves it.
        """
        vector = self.embedder.encode_query(query)
        index = self.index
        if not index.exact:
            return self._dense_candidates(vector[0], depth, allow, scope)
        if allow is None and not (self.config.sentence_vectors and index.sentences is not None
                                  and index.embeddings is not None):
            scores, ids = index.dense.search(vector, depth)
            out = {int(i): float(s) for i, s in zip(ids[0], scores[0]) if i >= 0}
            return out, max(out.values()), float(vector[0] @ index.centroid_for(scope))
        own = index.embeddings @ vector[0]
        if self.config.sentence_vectors and index.sentences is not None:
            sentence_scores = index.sentences @ vector[0]
            if index.sentence_start is not None:  # rows passage by passage: a reduceat, not a maximum.at per row
                starts = index.sentence_start
                scores = blend_candidates(own, sentence_scores, starts[:-1], starts[1:], self.config.sentence_weight)
            else:
                scores = blend(own, sentence_scores, index.sentence_owner, self.config.sentence_weight)
        else:
            scores = own.copy()
        if allow is not None:
            scores[~allow] = -np.inf
            own = np.where(allow, own, -np.inf)
        depth = min(depth, int(np.isfinite(scores).sum()))
        top = np.argpartition(-scores, depth - 1)[:depth]
        mean = float(own[np.isfinite(own)].mean())
        return {int(i): float(scores[i]) for i in top}, float(own.max()), mean

    def _dense_candidates(self, vector: np.ndarray, depth: int, allow: np.ndarray | None,
                          scope: np.ndarray | None = None) -> tuple[dict[int, float], float, float]:
        """_dense through the approximate indexes: candidates from passages and sentences, rescored exactly.

        Few allowed passages are scored exactly (a filtered approximate search would miss them);
        otherwise the mask goes into FAISS as an ID selector, so only allowed rows are candidates.
        """
        index = self.index
        use_sentences = self.config.sentence_vectors and index.sentences is not None
        every = allow is not None and allow.sum() <= EXACT_ALLOWED  # every allowed passage is scored
        if every:
            candidates = np.flatnonzero(allow)
        else:
            found = [ann.search(index.dense, index.kinds[0], index.ann_params, vector, depth, allow)]
            if use_sentences and index.sentence_index is not None:
                sentence_allow = allow[index.sentence_owner] if allow is not None else None
                rows = ann.search(index.sentence_index, index.kinds[1], index.ann_params, vector,
                                  depth * SENTENCE_DEPTH, sentence_allow)
                found.append(index.sentence_owner[rows])
            candidates = np.unique(np.concatenate(found))
        if not len(candidates):
            return {}, float("-inf"), float("-inf")
        # Candidates' rows by pread (store.vector_rows): scattered reads through the mapping would map
        # whole page-cache folios into the process, query after query.
        own = index.passage_rows.take(candidates) @ vector
        if use_sentences:
            starts, ends = index.sentence_start[candidates], index.sentence_start[candidates + 1]
            sentence_scores = index.sentence_rows.ranges(starts, ends) @ vector
            scores = blend_candidates(own, sentence_scores, starts, ends, self.config.sentence_weight)
        else:
            scores = own
        top = np.argsort(-scores, kind="stable")[:depth]
        mean = float(own.mean()) if every else float(vector @ index.centroid_for(scope))
        return {int(candidates[j]): float(scores[j]) for j in top}, float(own.max()), mean

    def lexical_scores(self, query: str, depth: int, allow: np.ndarray | None = None) -> dict[int, float]:
        """BM25 score of the top depth (allowed) passages with a query term (none when no term matches)."""
        return self._lexical_top(self.index.lexical, query, depth, allow)

    def _lexical_top(self, lexical, query: str, depth: int, allow: np.ndarray | None) -> dict[int, float]:
        weights = {"section": self.config.section_weight, "title": self.config.title_weight}
        return lexical.top(query, depth, weights, allow)


def fuse(dense: dict[int, float], lexical: dict[int, float], mode: str, config: SearchConfig) -> dict[int, float]:
    """The score that orders passages in a mode: one ranker's own, or the configured fusion of both."""
    if mode == "dense":
        return dense
    if mode == "lexical":
        return lexical
    if config.fusion == "convex":
        return convex(dense, lexical, config.alpha, config.normalization)
    return rrf([ranked(dense), ranked(lexical)], k=config.rrf_k, weights=[config.rrf_dense_weight, 1.0])


def role_prior(scores: dict[int, float], has_roles: np.ndarray, weight: float) -> dict[int, float]:
    """Scores with weight added to every passage that attributes its duties to a role (has_roles[i]: Passage.roles).

    An ownership question is answered by a passage that says who does the thing; one that only
    describes the thing (a product page, a definition) should not outrank it on wording alone.
    """
    return {i: s + weight if has_roles[i] else s for i, s in scores.items()}


def _opt(x: float | None) -> float | None:
    return None if x is None else float(x)


def _diversify(order: list[int], passages: Sequence[Passage], k: int, max_per_section: int
               ) -> tuple[list[int], dict[int, Passage]]:
    """The first k of order, with at most max_per_section from one section of one article; and the rows read."""
    if max_per_section <= 0:
        return order[:k], {i: passages[i] for i in order[:k]}
    taken: list[int] = []
    rows: dict[int, Passage] = {}
    counts: dict[tuple, int] = {}
    for i in order:
        rows[i] = p = passages[i]
        key = (p.article_id, p.section)
        if counts.get(key, 0) >= max_per_section:
            continue
        counts[key] = counts.get(key, 0) + 1
        taken.append(i)
        if len(taken) == k:
            break
    return taken, rows
