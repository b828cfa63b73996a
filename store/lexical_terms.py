"""Per-passage term counts of a lexical field, and the BM25 index built from them in whole-array operations.

A field's passages analysed once (lexical.analyze's analysis, stems of the unique words) give a
sparse passages x terms matrix of counts, its vocabulary sorted. It is saved beside the field's
bm25s index, so the next build gathers the rows of unchanged passages instead of analysing
their text again, and only the changed passages are analysed. BM25 statistics (document
frequencies, average length) are global, so the score matrix is always rebuilt whole, from
the counts, with the Lucene formulas bm25s uses (tests compare the two). Equal counts give
equal files: an incremental build writes the same index as a full build of the same corpus.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import bm25s
import numpy as np
import scipy.sparse as sp

_FILES = ("indptr", "indices", "counts")
_SCORE_BLOCK = 4_000_000  # (passage, term) entries scored per step
EMPTY_PLACEHOLDER = "\x00empty"  # bm25s cannot index a corpus without terms: one placeholder in row 0


@dataclass(frozen=True)
class DocTerms:
    """Term counts per passage: matrix[i, j] = how often vocab[j] occurs in passage i (vocab sorted)."""

    vocab: list[str]
    matrix: sp.csr_matrix  # int32 counts, canonical (column ids sorted within each row)

    @property
    def rows(self) -> int:
        return int(self.matrix.shape[0])


def analyze_corpus(texts: Sequence[str], split: Callable[[str], list[str]], stemmer) -> DocTerms:
    """The term counts of texts: split(text) gives a text's words (lexical._words, the split analyze uses),
    stemmer stems them; each distinct text is analysed once, each distinct word stemmed once."""
    distinct: dict[str, int] = {}
    inverse = np.fromiter((distinct.setdefault(t, len(distinct)) for t in texts), dtype=np.int64, count=len(texts))
    words: dict[str, int] = {}
    flat: list[int] = []
    lengths = np.zeros(len(distinct), dtype=np.int64)
    for row, text in enumerate(distinct):
        ids = [words.setdefault(w, len(words)) for w in split(text)]
        lengths[row] = len(ids)
        flat.extend(ids)
    stems = stemmer.stemWords(list(words)) if words else []
    vocab = sorted(set(stems))
    position = {t: i for i, t in enumerate(vocab)}
    word_term = np.array([position[s] for s in stems], dtype=np.int32)
    indices = word_term[np.asarray(flat, dtype=np.int64)] if flat else np.zeros(0, dtype=np.int32)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    matrix = sp.csr_matrix((np.ones(len(indices), dtype=np.int32), indices, indptr), shape=(len(distinct), len(vocab)))
    matrix.sum_duplicates()  # one entry per (passage, term), its count; sorts the term ids of each row
    return DocTerms(vocab, matrix[inverse] if len(distinct) != len(texts) else matrix)


def combine(previous: DocTerms, rows: np.ndarray, fresh: DocTerms) -> DocTerms:
    """Rows of a new version: previous's row rows[i] where rows[i] >= 0, else fresh's next row, in order.

    The vocabulary becomes the sorted terms the rows use, exactly what analysing them all would give.
    """
    rows = np.asarray(rows, dtype=np.int64)
    reused = rows >= 0
    if int((~reused).sum()) != fresh.rows:
        raise ValueError(f"{int((~reused).sum())} new rows but {fresh.rows} analysed passages")
    kept = previous.matrix[rows[reused]]
    used_old = np.flatnonzero(np.bincount(kept.indices, minlength=len(previous.vocab)))
    vocab = sorted({previous.vocab[i] for i in used_old} | set(fresh.vocab))
    position = {t: i for i, t in enumerate(vocab)}
    # Both vocabularies are sorted, so the maps are increasing: rows stay canonical after remapping.
    old_map = np.full(len(previous.vocab), -1, dtype=np.int32)
    old_map[used_old] = [position[previous.vocab[i]] for i in used_old]
    new_map = np.array([position[t] for t in fresh.vocab], dtype=np.int32)
    kept = sp.csr_matrix((kept.data, old_map[kept.indices], kept.indptr), shape=(kept.shape[0], len(vocab)))
    new = sp.csr_matrix((fresh.matrix.data, new_map[fresh.matrix.indices] if fresh.matrix.nnz else fresh.matrix.indices,
                         fresh.matrix.indptr), shape=(fresh.rows, len(vocab)))
    stacked = sp.vstack([kept, new], format="csr")
    # Row i of the result: its place among the kept rows, or after all of them among the new ones.
    order = np.empty(len(rows), dtype=np.int64)
    order[reused] = np.arange(int(reused.sum()))
    order[~reused] = int(reused.sum()) + np.arange(fresh.rows)
    matrix = stacked[order]
    matrix.indices = matrix.indices.astype(np.int32, copy=False)
    matrix.data = matrix.data.astype(np.int32, copy=False)
    return DocTerms(vocab, matrix)


def bm25_index(terms: DocTerms, k1: float, b: float, method: str = "lucene") -> bm25s.BM25:
    """A bm25s index over the counts, the Lucene variant computed as bm25s computes it (scores in float32)."""
    if method != "lucene":
        raise ValueError(f"only the lucene BM25 variant is built here, not {method!r}")
    matrix, vocab = terms.matrix, list(terms.vocab)
    if matrix.nnz == 0:  # bm25s cannot index a corpus with no terms at all; one placeholder keeps rows aligned
        vocab = [EMPTY_PLACEHOLDER]
        matrix = sp.csr_matrix(([1], [0], [0] + [1] * max(terms.rows, 1)), shape=(max(terms.rows, 1), 1))
    n_docs = matrix.shape[0]
    counts = matrix.data.astype(np.float32)
    doc_len = np.asarray(matrix.sum(axis=1), dtype=np.int64).ravel()  # tokens per passage, repeats counted
    avg = np.float64(doc_len.mean())
    df = np.bincount(matrix.indices, minlength=len(vocab))
    idf = np.array([math.log(1 + (n_docs - d + 0.5) / (d + 0.5)) if d else 0.0 for d in df], dtype=np.float32)
    denominator = k1 * ((1 - b) + (b * doc_len.astype(np.float64)) / avg)  # per passage, as bm25s's float64 scalar
    per_entry = np.repeat(denominator, np.diff(matrix.indptr))
    scores = np.empty(matrix.nnz, dtype=np.float32)
    for lo in range(0, matrix.nnz, _SCORE_BLOCK):  # float64 temporaries a block at a time
        hi = lo + _SCORE_BLOCK
        tf = counts[lo:hi]
        scores[lo:hi] = idf[matrix.indices[lo:hi]].astype(np.float64) * (tf / (per_entry[lo:hi] + tf))
    del per_entry, counts
    csc = sp.csr_matrix((scores, matrix.indices, matrix.indptr), shape=matrix.shape).tocsc()
    retriever = bm25s.BM25(method=method, k1=k1, b=b)
    retriever.scores = {"data": csc.data.astype(np.float32), "indices": csc.indices.astype(np.int32),
                        "indptr": csc.indptr.astype(np.int64), "num_docs": n_docs}
    retriever.vocab_dict = {t: i for i, t in enumerate(vocab)} | {"": len(vocab)}  # bm25s's empty token, last
    retriever.unique_token_ids_set = set(retriever.vocab_dict.values())
    retriever.nonoccurrence_array = None
    return retriever


def save_terms(terms: DocTerms, folder: Path) -> None:
    """Write the counts into folder (a field's lexical folder) as doc_terms.*."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in zip(_FILES, (terms.matrix.indptr.astype(np.int64), terms.matrix.indices.astype(np.int32),
                                    terms.matrix.data.astype(np.int32))):
        np.save(folder / f"doc_terms.{name}.npy", array)
    (folder / "doc_terms.vocab.json").write_text(json.dumps(terms.vocab, ensure_ascii=False), encoding="utf-8")


def load_terms(folder: Path, rows: int) -> DocTerms | None:
    """The counts saved in folder, or None when there are none or they do not cover rows passages."""
    try:
        vocab = json.loads((folder / "doc_terms.vocab.json").read_text(encoding="utf-8"))
        indptr, indices, counts = (np.load(folder / f"doc_terms.{name}.npy") for name in _FILES)
    except (OSError, ValueError):
        return None
    if len(indptr) != rows + 1 or indptr[-1] != len(indices) or (len(indices) and indices.max() >= len(vocab)):
        return None
    return DocTerms(vocab, sp.csr_matrix((counts, indices, indptr), shape=(rows, len(vocab))))
