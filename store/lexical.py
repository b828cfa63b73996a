"""The lexical index: bm25s over the same passages, one BM25 index per field, English stems.

Fields: "text" (the passage), "section" (its heading path), "title" (its article's title). A
query's lexical score is a weighted sum of its BM25 score in each field (search.searcher's
field_weights): a heading word counts, but less than the same word in the passage, and the
title, shared by every passage of an article, counts least. A BEIR index has only "text".

One analyser serves passages and queries (`analyze`: bm25s.tokenize's tokens without its per-call
set-up). `LexicalIndex.scores` sums the fields with weights over every passage; `LexicalIndex.top`
gives the same sums for the passages in the query terms' postings only (what a query costs at a
million passages): postings are added into reused per-field float32 buffers, a common term's
passages are pruned MaxScore-style when their bound cannot reach the top `depth`, and the top is
partitioned above a sampled bar. A build reuses the previous version's term counts for unchanged
passages (store.lexical_terms).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import bm25s
import numpy as np
import scipy.sparse as sp
import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS

from rolesearch.store.lexical_terms import DocTerms, analyze_corpus, bm25_index, combine, load_terms, save_terms

LEXICAL_PARAMS = {"library": "bm25s", "method": "lucene", "k1": 1.2, "b": 0.75, "stemmer": "english", "stopwords": "en_plus"}
logging.getLogger("bm25s").setLevel(logging.WARNING)
COMMON_SHARE = 1 / 32  # LexicalIndex.top: a term in more of the passages than this is pruned MaxScore-style
_POOL_MAX = 4  # LexicalIndex.top: accumulator sets kept for reuse (13 MB a set at 1M passages, 3 fields)


_local = threading.local()


def _stemmer() -> Stemmer.Stemmer:
    """This thread's stemmer: a PyStemmer object is not thread-safe (it keeps a word cache and a work
    buffer), and requests analyse queries and highlights in several threads at once."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


# bm25s.tokenize's own analysis (its defaults: lower-case, scikit-learn's token pattern), done here without
# the per-call set-up it pays (two progress bars, a fresh stop-word set per text, id tables): a query is
# analysed on every search and each hit's sentences for its highlight (tests/test_lexical.py: same tokens).
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset(STOPWORDS_EN_PLUS)  # LEXICAL_PARAMS["stopwords"]: "en_plus"


def analyze(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, stop-worded, stemmed tokens: the same analysis for passages and queries."""
    stem = _stemmer().stemWords
    return [stem(_words(text)) for text in texts]


def _words(text: str) -> list[str]:
    """The lower-cased, stop-worded words of text, before stemming (what analyze and builds share)."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS]


def build_lexical(texts: Sequence[str]) -> bm25s.BM25:
    """A BM25 index over texts, in the order given (row i <-> passage i)."""
    return bm25_index(analyze_terms(texts), LEXICAL_PARAMS["k1"], LEXICAL_PARAMS["b"], LEXICAL_PARAMS["method"])


def analyze_terms(texts: Sequence[str]) -> DocTerms:
    """Term counts of texts under the analysis queries get (analyze)."""
    return analyze_corpus(texts, _words, _stemmer())


@dataclass(frozen=True)
class LexicalIndex:
    """One BM25 index per field over the same passages (row i <-> passage i in each)."""

    fields: dict[str, bm25s.BM25]
    terms: dict[str, DocTerms] | None = None  # the counts each field was built from (saved for the next build)
    _buffers: "_BufferPool" = field(default_factory=lambda: _BufferPool(), compare=False, repr=False)

    @property
    def text(self) -> bm25s.BM25:
        """The passage-text field (idf for highlights comes from it)."""
        return self.fields["text"]

    def scores(self, query: str, weights: Mapping[str, float] | None = None) -> np.ndarray:
        """Sum over fields of weight * BM25 score of every passage (a field without a weight weighs 1)."""
        weights = weights or {}
        tokens = analyze([query])[0]  # once for all fields: they share the analyser
        total = None
        for name, retriever in self.fields.items():
            w = weights.get(name, 1.0)
            if w:
                part = w * lexical_scores(retriever, tokens)
                total = part if total is None else total + part
        return total if total is not None else np.zeros(int(self.text.scores["num_docs"]), dtype=np.float32)

    def top(self, query: str, depth: int, weights: Mapping[str, float] | None = None,
            allow: np.ndarray | None = None) -> dict[int, float]:
        """The depth best (allowed) passages with a query term and their `scores`, from the terms' postings alone.

        At a million passages a dense score array per field, or sorting a query's postings (a common
        term has 100k), costs more than adding the postings into reused per-field buffers; the sums
        are the same float32 sums as `scores` (term after term per field, then weighted).
        """
        weights = weights or {}
        tokens = analyze([query])[0]
        if any(r.nonoccurrence_array is not None for r in self.fields.values()):  # BM25L/BM25+: every passage scores
            return _top_of(self.scores(query, weights), None, depth, allow)
        fields = [(w, r) for w, r in ((weights.get(name, 1.0), r) for name, r in self.fields.items()) if w]
        n = int(self.text.scores["num_docs"])
        buffers = self._buffers.take(n, len(fields))
        seen = buffers.seen
        common: list[np.ndarray] = []  # long posting lists: added, but their passages not marked as candidates
        bound = 0.0  # the most a passage found only in those lists can score
        for (w, retriever), acc in zip(fields, buffers.fields):
            sc = retriever.scores
            indptr, indices, data = sc["indptr"], sc["indices"], sc["data"]
            for t in retriever.get_tokens_ids(tokens):
                a, b = int(indptr[t]), int(indptr[t + 1])
                ix = indices[a:b]
                acc[ix] += data[a:b]  # a term's postings name each passage once: no lost updates
                if b - a > n * COMMON_SHARE:
                    common.append(ix)
                    bound += w * float(data[a:b].max())
                else:
                    seen[ix] = True
        docs = np.flatnonzero(seen)
        values = _weighted(fields, buffers.fields, docs)
        # MaxScore: when the depth-th best passage with a rarer term beats every passage that has
        # only common terms, those cannot enter the top depth; otherwise count them in too.
        if common and not _beats(values, docs, depth, allow, bound):
            for ix in common:
                seen[ix] = True
            docs = np.flatnonzero(seen)
            values = _weighted(fields, buffers.fields, docs)
        for acc in buffers.fields:
            if common:
                acc.fill(0.0)
            else:
                acc[docs] = 0.0
        seen[docs] = False
        self._buffers.give(buffers)  # zeroed again (an exception above drops the set instead)
        return _top_of(values, docs, depth, allow) if len(docs) else {}


@dataclass(frozen=True)
class ScopedLexical:
    """A LexicalIndex built over some rows only (one reader's scope), answering in the full index's row numbers.

    Its BM25 statistics (passage count, document frequencies, average length) are those of the rows in scope,
    so scores, and the work a query does, are what an index of only those passages would give: a term found
    only in passages outside the scope is a term the index has never seen.
    """

    index: LexicalIndex
    rows: np.ndarray  # full-index row of each scoped row
    mask: np.ndarray | None = None  # the scope as a mask over the full index, when built from one

    @property
    def text(self) -> bm25s.BM25:
        return self.index.text

    def top(self, query: str, depth: int, weights: Mapping[str, float] | None = None,
            allow: np.ndarray | None = None) -> dict[int, float]:
        """LexicalIndex.top over the scope; allow is a mask over the full index."""
        # The scope's own mask (no filters) allows every scoped row: no gather over them per query.
        narrowed = None if allow is None or allow is self.mask else allow[self.rows]
        found = self.index.top(query, depth, weights, narrowed)
        return {int(self.rows[i]): v for i, v in found.items()}


def scoped_lexical(terms: Mapping[str, DocTerms], rows: np.ndarray, mask: np.ndarray | None = None) -> ScopedLexical:
    """The BM25 fields over only `rows` of the counts (a full index's saved terms), as a build of those passages
    alone would write them: the vocabulary is the terms those rows use."""
    params = (LEXICAL_PARAMS["k1"], LEXICAL_PARAMS["b"], LEXICAL_PARAMS["method"])
    fields = {}
    for name, t in terms.items():
        m = t.matrix[rows]
        used = np.flatnonzero(np.bincount(m.indices, minlength=len(t.vocab)))
        remap = np.full(len(t.vocab), -1, dtype=np.int32)
        remap[used] = np.arange(len(used), dtype=np.int32)
        m = sp.csr_matrix((m.data, remap[m.indices], m.indptr), shape=(m.shape[0], len(used)))
        fields[name] = bm25_index(DocTerms([t.vocab[i] for i in used], m), *params)
    return ScopedLexical(LexicalIndex(fields), np.asarray(rows, dtype=np.int64), mask)


def _weighted(fields: list[tuple[float, bm25s.BM25]], accs: list[np.ndarray], docs: np.ndarray) -> np.ndarray:
    """Sum over fields of weight * the field's accumulated score, for docs (as `scores` sums it, in float32)."""
    values = None
    for (w, _), acc in zip(fields, accs):
        part = w * acc[docs]
        values = part if values is None else values + part
    return values


def _beats(values: np.ndarray, docs: np.ndarray, depth: int, allow: np.ndarray | None, bound: float) -> bool:
    """True when the depth-th best (allowed) value is above bound, with room for float32 rounding."""
    if allow is not None:
        values = values[allow[docs]]
    if len(values) < depth:
        return False
    return bound * (1 + 1e-5) < float(np.partition(values, len(values) - depth)[len(values) - depth])


@dataclass
class _Buffers:
    """One query's accumulators: a float32 score per passage per field, and which passages were touched."""

    fields: list[np.ndarray]
    seen: np.ndarray


class _BufferPool:
    """Zeroed accumulators reused across queries (returned zeroed), one set per concurrent query."""

    def __init__(self):
        self._free: list[_Buffers] = []
        self._lock = threading.Lock()

    def take(self, n: int, fields: int) -> _Buffers:
        with self._lock:
            for i, b in enumerate(self._free):
                if len(b.seen) == n and len(b.fields) >= fields:
                    return self._free.pop(i)
        return _Buffers([np.zeros(n, dtype=np.float32) for _ in range(fields)], np.zeros(n, dtype=bool))

    def give(self, buffers: _Buffers) -> None:
        with self._lock:
            if len(self._free) < _POOL_MAX:
                self._free.append(buffers)


def _top_of(values: np.ndarray, docs: np.ndarray | None, depth: int, allow: np.ndarray | None) -> dict[int, float]:
    """The depth largest positive (allowed) values, by passage: docs[j] scores values[j] (docs None: j itself)."""
    if docs is None:
        docs = np.flatnonzero(values if allow is None else np.where(allow, values, 0.0))
        values = values[docs]
    elif allow is not None:
        keep = allow[docs]
        docs, values = docs[keep], values[keep]
    if len(values) > 8 * depth:
        # The depth-th largest of a sample is at most the depth-th largest of all, so the values at or
        # above it hold the exact top depth: the partition below then sorts ~sqrt(depth * n) values, not n.
        step = max(1, len(values) // (2 * int(np.sqrt(depth * len(values)))))
        sample = values[::step]
        if len(sample) > depth:
            keep = np.flatnonzero(values >= np.partition(sample, len(sample) - depth)[len(sample) - depth])
            docs, values = docs[keep], values[keep]
    top = np.argpartition(-values, depth - 1)[:depth] if len(values) > depth else np.arange(len(values))
    return {int(docs[j]): float(values[j]) for j in top if values[j] > 0}


def build_lexical_fields(fields: Mapping[str, Sequence[str]], reuse: Mapping[str, DocTerms] | None = None,
                         rows: np.ndarray | None = None) -> LexicalIndex:
    """A BM25 index per field; every field lists one text per passage, in the same order; "text" is required.

    With reuse (a previous version's counts per field) and rows (each passage's row there, -1 for a new
    one), fields list only the new passages' texts and only those are analysed; the result is the
    index a full build of all the passages gives.
    """
    if "text" not in fields:
        raise ValueError("a lexical index needs a text field")
    terms = {}
    for name, texts in fields.items():
        fresh = analyze_terms(texts)
        terms[name] = combine(reuse[name], rows, fresh) if reuse is not None and name in reuse else fresh
    params = (LEXICAL_PARAMS["k1"], LEXICAL_PARAMS["b"], LEXICAL_PARAMS["method"])
    return LexicalIndex({name: bm25_index(t, *params) for name, t in terms.items()}, terms)


def save_lexical(index: LexicalIndex, folder: Path) -> None:
    """Write each field's index into folder/lexical/<field>, with the counts it was built from."""
    for name, retriever in index.fields.items():
        retriever.save(str(Path(folder) / "lexical" / name), show_progress=False)
        if index.terms is not None and name in index.terms:
            save_terms(index.terms[name], Path(folder) / "lexical" / name)


def reusable_terms(folder: Path, params: Mapping | None, rows: int) -> dict[str, DocTerms] | None:
    """The per-field counts of a version (folder) built with today's analysis, or None when it has none."""
    if not params or {k: params.get(k) for k in LEXICAL_PARAMS} != LEXICAL_PARAMS:
        return None
    terms = {name: load_terms(Path(folder) / "lexical" / name, rows) for name in params.get("fields", [])}
    return terms if terms and all(t is not None for t in terms.values()) else None


def load_lexical(folder: Path, names: Sequence[str] = ("text",)) -> LexicalIndex:
    """Read the fields written by save_lexical."""
    return LexicalIndex({name: bm25s.BM25.load(str(Path(folder) / "lexical" / name), mmap=True) for name in names})


def lexical_scores(retriever: bm25s.BM25, tokens: Sequence[str]) -> np.ndarray:
    """BM25 score of every passage for analysed query tokens (zeros when none is in the index)."""
    n = int(retriever.scores["num_docs"])
    ids = retriever.get_tokens_ids(tokens)
    if not ids:
        return np.zeros(n, dtype=np.float32)
    return np.asarray(retriever.get_scores_from_ids(ids), dtype=np.float32)


def term_idf(retriever: bm25s.BM25, tokens: Sequence[str]) -> dict[str, float]:
    """BM25 (Lucene) idf of each analysed token; a token the index has never seen weighs as the rarest."""
    n = int(retriever.scores["num_docs"])
    indptr = retriever.scores["indptr"]
    out: dict[str, float] = {}
    for t in tokens:
        tid = retriever.vocab_dict.get(t)
        df = int(indptr[tid + 1] - indptr[tid]) if tid is not None else 0
        out[t] = float(np.log(1 + (n - df + 0.5) / (df + 0.5)))
    return out
