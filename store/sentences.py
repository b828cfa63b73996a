"""Sentences of a passage: their boundaries (shared by role attribution and highlights) and the sentence rows
a version stores for them.

Each passage is also embedded sentence by sentence (multi-vector passages; search.blend scores
them). A sentence is embedded alone (no title or heading: the passage vector already carries
those), and its vector is keyed by a hash of its text, so incremental builds and the embedding
cache reuse it. A version stores the sentence rows passage by passage (sentence_starts.npy).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from rolesearch.store.passage import Passage

# A sentence ends at . ! ? before a capital or digit, or at a line break (list items, table rows).
_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[\"“‘(\[]?[A-Z0-9])|\n+")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-blank sentence or line of text, surrounding whitespace trimmed."""
    spans = []
    pos = 0
    for m in list(_BOUNDARY.finditer(text)) + [None]:
        end = m.start() if m else len(text)
        piece = text[pos:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((pos + lead, pos + len(piece.rstrip())))
        if m:
            pos = m.end()
    return spans


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
