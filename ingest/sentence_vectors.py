"""Sentence vectors: each passage is also embedded sentence by sentence (multi-vector passages).

A long passage's vector averages all it says, so a question about one of its sentences (one
duty in a list of five) can rank it below a passage that is vaguely about everything. Searching
scores a passage by a blend of its own cosine and the best of its own and its sentences'
cosines (blend). A sentence is embedded alone (no title or heading: the passage vector
already carries those), and its vector is keyed by a hash of its text, so incremental builds
and the embedding cache reuse it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ingest.chunking import Passage
from ingest.sentences import sentence_spans


def passage_sentences(text: str) -> list[str]:
    """The sentences (or lines) of a passage's text, in order."""
    return [text[s:e] for s, e in sentence_spans(text)]


def sentence_key(sentence: str) -> str:
    """Cache key of a sentence's vector; its own namespace, so it never equals a passage hash."""
    return "s:" + hashlib.sha256(sentence.encode()).hexdigest()[:16]


def key_number(key: str) -> int:
    """A sentence key as the 64-bit number a version stores per sentence row (sentence_keys.npy)."""
    return int(key[2:], 16)


@dataclass(frozen=True)
class SentenceSplit:
    """Passages split into sentences once: how many each has, and every sentence's key and text, in row order."""

    counts: np.ndarray
    keys: list[str]
    texts: list[str]


def split_sentences(passages: Iterable[Passage]) -> SentenceSplit:
    """The sentences of every passage, passage by passage (sentence_units, with the counts)."""
    counts, keys, texts = [], [], []
    for p in passages:
        sentences = passage_sentences(p.text)
        counts.append(len(sentences))
        texts += sentences
    keys = [sentence_key(s) for s in texts]
    return SentenceSplit(np.asarray(counts, dtype=np.int64), keys, texts)


def sentence_units(passages: Iterable[Passage]) -> list[tuple[str, str]]:
    """(key, sentence) for every sentence of every passage, passage by passage: row i of the sentence vectors."""
    return [(sentence_key(s), s) for p in passages for s in passage_sentences(p.text)]


def sentence_owners(passages: Iterable[Passage]) -> np.ndarray:
    """For each sentence row, the index of its passage."""
    owners = [i for i, p in enumerate(passages) for _ in passage_sentences(p.text)]
    return np.asarray(owners, dtype=np.int64)


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
