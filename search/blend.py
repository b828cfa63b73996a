"""Multi-vector dense scores: a passage scored by its own cosine blended with its best sentence's.

A long passage's vector averages all it says, so a question about one of its sentences (one
duty in a list of five) can rank it below a passage that is vaguely about everything. Searching
scores a passage by a blend of its own cosine and the best of its own and its sentences'
cosines (blend); the sentence rows are store.sentences'.
"""

from __future__ import annotations

import numpy as np


def best_of(passage_scores: np.ndarray, sentence_scores: np.ndarray, owners: np.ndarray) -> np.ndarray:
    """Each passage's score: the larger of its own and its best sentence's."""
    best = np.array(passage_scores, dtype=np.float32, copy=True)
    if len(owners):
        np.maximum.at(best, owners, sentence_scores.astype(np.float32))
    return best


def blend(passage_scores: np.ndarray, sentence_scores: np.ndarray, owners: np.ndarray, weight: float) -> np.ndarray:
    """(1 - weight) * own score + weight * best_of: weight 1 is best_of, 0 ignores the sentences.

    A sentence alone can match a query that the passage as a whole does not answer; keeping part
    of the passage's own score lets the whole passage temper its best sentence.
    """
    own = np.asarray(passage_scores, dtype=np.float32)
    return (1.0 - weight) * own + weight * best_of(own, sentence_scores, owners)


def blend_candidates(own: np.ndarray, sentence_scores: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                     weight: float) -> np.ndarray:
    """blend for a few passages: own[j] and the sentence scores of rows starts[j]:ends[j] (concatenated).

    sentence_scores holds the candidates' sentence rows one candidate after another, the layout
    of the sentence vectors; it gives the same scores as blend over the whole index.
    """
    own = np.asarray(own, dtype=np.float32)
    best = own.copy()
    lengths = ends - starts
    has = lengths > 0
    if has.any():
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        best[has] = np.maximum(own[has], np.maximum.reduceat(sentence_scores.astype(np.float32), offsets[has]))
    return (1.0 - weight) * own + weight * best
