"""The lexical index: bm25s over the same passages (and their title and section), English stems."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import bm25s
import numpy as np
import Stemmer

LEXICAL_PARAMS = {"library": "bm25s", "method": "lucene", "k1": 1.2, "b": 0.75, "stemmer": "english", "stopwords": "en"}
logging.getLogger("bm25s").setLevel(logging.WARNING)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def analyze(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, stop-worded, stemmed tokens: the same analysis for passages and queries."""
    return bm25s.tokenize(
        list(texts), stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False
    )


def build_lexical(texts: Sequence[str]) -> bm25s.BM25:
    """A BM25 index over texts, in the order given (row i <-> passage i)."""
    retriever = bm25s.BM25(method=LEXICAL_PARAMS["method"], k1=LEXICAL_PARAMS["k1"], b=LEXICAL_PARAMS["b"])
    tokens = analyze(texts)
    # bm25s cannot index a corpus with no terms at all; one placeholder keeps row numbers aligned.
    if not any(tokens):
        tokens = [["\x00empty"]] + tokens[1:]
    retriever.index(tokens, show_progress=False)
    return retriever


def save_lexical(retriever: bm25s.BM25, folder: Path) -> None:
    """Write the index into folder/lexical."""
    retriever.save(str(Path(folder) / "lexical"))


def load_lexical(folder: Path) -> bm25s.BM25:
    """Read folder/lexical, written by save_lexical."""
    return bm25s.BM25.load(str(Path(folder) / "lexical"), mmap=False)


def lexical_scores(retriever: bm25s.BM25, query: str) -> np.ndarray:
    """BM25 score of every passage for the query (zeros when no query term is in the index)."""
    tokens = analyze([query])[0]
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
