"""The lexical index: bm25s over the same passages, one BM25 index per field, English stems.

Fields: "text" (the passage), "section" (its heading path), "title" (its article's title). A
query's lexical score is a weighted sum of its BM25 score in each field (search.searcher's
field_weights): a heading word counts, but less than the same word in the passage, and the
title, shared by every passage of an article, counts least. A BEIR index has only "text".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import bm25s
import numpy as np
import Stemmer

from ingest.lexical_terms import DocTerms, analyze_corpus, bm25_index, combine, load_terms, save_terms

LEXICAL_PARAMS = {"library": "bm25s", "method": "lucene", "k1": 1.2, "b": 0.75, "stemmer": "english", "stopwords": "en_plus"}
logging.getLogger("bm25s").setLevel(logging.WARNING)
DENSE_ABOVE = 0.125  # LexicalIndex.top: postings per passage above which dense score arrays are cheaper


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def analyze(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, stop-worded, stemmed tokens: the same analysis for passages and queries."""
    return bm25s.tokenize(
        list(texts), stopwords=LEXICAL_PARAMS["stopwords"], stemmer=_stemmer(), return_ids=False, show_progress=False
    )


def build_lexical(texts: Sequence[str]) -> bm25s.BM25:
    """A BM25 index over texts, in the order given (row i <-> passage i)."""
    return bm25_index(analyze_terms(texts), LEXICAL_PARAMS["k1"], LEXICAL_PARAMS["b"], LEXICAL_PARAMS["method"])


def analyze_terms(texts: Sequence[str]) -> DocTerms:
    """Term counts of texts under the analysis queries get (analyze)."""
    return analyze_corpus(texts, LEXICAL_PARAMS["stopwords"], _stemmer())


@dataclass(frozen=True)
class LexicalIndex:
    """One BM25 index per field over the same passages (row i <-> passage i in each)."""

    fields: dict[str, bm25s.BM25]
    terms: dict[str, DocTerms] | None = None  # the counts each field was built from (saved for the next build)

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

        At a million passages a dense score array per field costs more than the query's postings
        (a few thousand rows for most terms), so only the passages some term occurs in are scored,
        with the same float32 sums as `scores`; very common terms fall back to the dense arrays.
        """
        weights = weights or {}
        tokens = analyze([query])[0]
        n = int(self.text.scores["num_docs"])
        postings = []  # (weight, [(indices, data) per query term]) per field
        for name, retriever in self.fields.items():
            w = weights.get(name, 1.0)
            if w:
                sc = retriever.scores
                spans = [(int(sc["indptr"][t]), int(sc["indptr"][t + 1])) for t in retriever.get_tokens_ids(tokens)]
                postings.append((w, [(sc["indices"][a:b], sc["data"][a:b]) for a, b in spans]))
        total = sum(len(ix) for _, terms in postings for ix, _ in terms)
        if total > n * DENSE_ABOVE or any(r.nonoccurrence_array is not None for r in self.fields.values()):
            scores = self.scores(query, weights)
            docs = np.flatnonzero(scores if allow is None else np.where(allow, scores, 0.0))
            values = scores[docs]
        else:
            docs = np.unique(np.concatenate([ix for _, terms in postings for ix, _ in terms] or [np.zeros(0, int)]))
            values = None
            for w, terms in postings:  # per field as bm25s sums it: term after term in float32, then weighted
                field = np.zeros(len(docs), dtype=np.float32)
                for ix, data in terms:
                    field[np.searchsorted(docs, ix)] += data
                values = w * field if values is None else values + w * field
            if allow is not None and len(docs):
                keep = allow[docs]
                docs, values = docs[keep], values[keep]
        if not len(docs):
            return {}
        keep = values > 0
        docs, values = docs[keep], values[keep]
        top = np.argpartition(-values, min(depth, len(values)) - 1)[:depth] if len(values) > depth else \
            np.arange(len(values))
        return {int(docs[j]): float(values[j]) for j in top}


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
