"""The lexical index: bm25s over the same passages, one BM25 index per field, English stems.

Fields: "text" (the passage), "section" (its heading path), "title" (its article's title). A
query's lexical score is a weighted sum of its BM25 score in each field (search.searcher's
field_weights): a heading word counts, but less than the same word in the passage, and the
title, shared by every passage of an article, counts least. A BEIR index has only "text".
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS

LEXICAL_PARAMS = {"library": "bm25s", "method": "lucene", "k1": 1.2, "b": 0.75, "stemmer": "english", "stopwords": "en_plus"}
logging.getLogger("bm25s").setLevel(logging.WARNING)
DENSE_ABOVE = 0.125  # LexicalIndex.top: postings per passage above which dense score arrays are cheaper


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


# bm25s.tokenize's own analysis (its defaults: lower-case, scikit-learn's token pattern), done here without
# the per-call set-up it pays (two progress bars, a fresh stop-word set per text, id tables): a query is
# analysed on every search and each hit's sentences for its highlight (tests/test_lexical.py: same tokens).
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset(STOPWORDS_EN_PLUS)  # LEXICAL_PARAMS["stopwords"]: "en_plus"


def analyze(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, stop-worded, stemmed tokens: the same analysis for passages and queries."""
    stem = _stemmer().stemWords
    return [stem([t for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS]) for text in texts]


def build_lexical(texts: Sequence[str]) -> bm25s.BM25:
    """A BM25 index over texts, in the order given (row i <-> passage i)."""
    retriever = bm25s.BM25(method=LEXICAL_PARAMS["method"], k1=LEXICAL_PARAMS["k1"], b=LEXICAL_PARAMS["b"])
    tokens = analyze(texts)
    # bm25s cannot index a corpus with no terms at all; one placeholder keeps row numbers aligned.
    if not any(tokens):
        tokens = [["\x00empty"]] + tokens[1:]
    retriever.index(tokens, show_progress=False)
    return retriever


@dataclass(frozen=True)
class LexicalIndex:
    """One BM25 index per field over the same passages (row i <-> passage i in each)."""

    fields: dict[str, bm25s.BM25]

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


def build_lexical_fields(fields: Mapping[str, Sequence[str]]) -> LexicalIndex:
    """A BM25 index per field; every field lists one text per passage, in the same order; "text" is required."""
    if "text" not in fields:
        raise ValueError("a lexical index needs a text field")
    return LexicalIndex({name: build_lexical(texts) for name, texts in fields.items()})


def save_lexical(index: LexicalIndex, folder: Path) -> None:
    """Write each field's index into folder/lexical/<field>."""
    for name, retriever in index.fields.items():
        retriever.save(str(Path(folder) / "lexical" / name))


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
