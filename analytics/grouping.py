"""Near-duplicate wordings grouped by the embedding model: cosine at or above a threshold joins a group."""

from __future__ import annotations

import numpy as np

from rolesearch.encoder.base import Encoder

DEFAULT_THRESHOLD = 0.75  # all-MiniLM-L6-v2 here: rewordings of one question 0.74-0.97, other role questions < 0.25


def group_vectors(vectors: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> list[list[int]]:
    """Greedy, in row order: a row joins the first group whose first row it matches at >= threshold."""
    leaders: list[int] = []
    groups: list[list[int]] = []
    for i in range(len(vectors)):
        if leaders:
            sims = vectors[leaders] @ vectors[i]
            best = int(np.argmax(sims))
            if sims[best] >= threshold:
                groups[best].append(i)
                continue
        leaders.append(i)
        groups.append([i])
    return groups


def embedding_grouper(encoder: Encoder, threshold: float = DEFAULT_THRESHOLD, most: int = 200):
    """A report grouper (texts -> groups of positions) that embeds the texts as queries; past `most`, one each."""

    def group(texts: list[str]) -> list[list[int]]:
        head = texts[:most]  # the most asked first: a long tail is not worth a page's wait
        vectors = np.vstack([encoder.encode_query(t) for t in head]).astype(np.float32) if head else np.zeros((0, 1))
        return group_vectors(vectors, threshold) + [[i] for i in range(len(head), len(texts))]

    return group
