"""Sentences of a passage: their boundaries (shared by role attribution and highlights) and the sentence rows
a version stores for them.

Each passage is also embedded sentence by sentence (multi-vector passages; search.blend scores
them). A sentence is embedded alone (no title or heading: the passage vector already carries
those), and its vector is keyed by a hash of its text, so incremental builds and the embedding
cache reuse it. A version stores the sentence rows passage by passage (sentence_starts.npy).
SentenceParams say which units become rows (a passage of one unit gets none; short sentences
may be merged with a neighbour); a version records them in its manifest ("sentence_units").
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
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


@dataclass(frozen=True)
class SentenceParams:
    """Which units of a passage get a sentence row (chosen under the quality rule: notes/ranking.md, issue 23).

    skip_single: a passage of one unit gets no sentence row (its own vector already is that sentence,
    with its title and heading). min_words > 0: a sentence shorter than that is merged with the next
    (the last with the one before) into units of at least min_words words.
    """

    skip_single: bool = False  # True cost held-out MRR@10 (0.741 -> 0.735): off by default
    min_words: int = 0  # 8 (best on the tuning half) cost one held-out question at hit@3: off by default

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_manifest(cls, recorded: dict | None) -> "SentenceParams":
        """The params a version was built with; a version that records none predates them (every sentence a row)."""
        return cls(**recorded) if recorded else LEGACY


LEGACY = SentenceParams(skip_single=False, min_words=0)  # versions and caches made before SentenceParams


def passage_units(text: str, params: SentenceParams = LEGACY) -> list[str]:
    """The texts of a passage's sentence rows, in order: its sentences merged and skipped as params say."""
    sentences = passage_sentences(text)
    if params.min_words > 0 and len(sentences) > 1:
        units: list[str] = []
        current: list[str] = []
        for s in sentences:
            current.append(s)
            if sum(len(c.split()) for c in current) >= params.min_words:
                units.append(" ".join(current))
                current = []
        if current:  # a short tail joins the unit before it
            units[-1:] = [" ".join(units[-1:] + current)]
        sentences = units
    if params.skip_single and len(sentences) == 1:
        return []
    return sentences


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


def split_sentences(passages: Iterable[Passage], params: SentenceParams = LEGACY) -> SentenceSplit:
    """The sentence rows of every passage, passage by passage (sentence_units, with the counts)."""
    counts, keys, texts = [], [], []
    for p in passages:
        sentences = passage_units(p.text, params)
        counts.append(len(sentences))
        texts += sentences
    keys = [sentence_key(s) for s in texts]
    return SentenceSplit(np.asarray(counts, dtype=np.int64), keys, texts)


def sentence_units(passages: Iterable[Passage], params: SentenceParams = LEGACY) -> list[tuple[str, str]]:
    """(key, text) of every sentence row of every passage, passage by passage: row i of the sentence vectors."""
    return [(sentence_key(s), s) for p in passages for s in passage_units(p.text, params)]


def sentence_owners(passages: Iterable[Passage], params: SentenceParams = LEGACY) -> np.ndarray:
    """For each sentence row, the index of its passage."""
    owners = [i for i, p in enumerate(passages) for _ in passage_units(p.text, params)]
    return np.asarray(owners, dtype=np.int64)
