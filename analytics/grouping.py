"""Near-duplicate wordings grouped by the embedding model: cosine at or above a threshold joins a group."""

from __future__ import annotations

import numpy as np

from rolesearch.encoder.base import Encoder

DEFAULT_THRESHOLD = 0.8  # all-MiniLM-L6-v2: rewordings of one question score ~0.8-0.95, other questions < 0.7


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


def embedding_grouper(encoder: Encoder, threshold: float = DEFAULT_THRESHOLD):
    """A report grouper (texts -> groups of positions) that embeds the texts with encoder."""

    def group(texts: list[str]) -> list[list[int]]:
        return group_vectors(np.asarray(encoder.encode(texts), dtype=np.float32), threshold) if texts else []

    return group
