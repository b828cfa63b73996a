"""Pure functions that fuse rankings: reciprocal rank fusion and a normalised score combination."""

from __future__ import annotations

from typing import Mapping, Sequence


def rrf(rankings: Sequence[Sequence[int]], k: float = 60.0, weights: Sequence[float] | None = None) -> dict[int, float]:
    """Reciprocal rank fusion: sum over rankings of weight / (k + rank), ranks from 1."""
    weights = weights or [1.0] * len(rankings)
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, doc in enumerate(ranking, start=1):
            fused[doc] = fused.get(doc, 0.0) + weight / (k + rank)
    return fused


def minmax(scores: Mapping[int, float]) -> dict[int, float]:
    """Scale scores to [0, 1] over the candidates; all-equal scores become 1 (or 0 when all zero)."""
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if hi == lo:
        return {d: (1.0 if hi > 0 else 0.0) for d in scores}
    return {d: (s - lo) / (hi - lo) for d, s in scores.items()}


def convex(dense: Mapping[int, float], lexical: Mapping[int, float], alpha: float = 0.5) -> dict[int, float]:
    """alpha * normalised dense + (1 - alpha) * normalised lexical; a doc missing from one side scores 0 there."""
    nd, nl = minmax(dense), minmax(lexical)
    return {d: alpha * nd.get(d, 0.0) + (1 - alpha) * nl.get(d, 0.0) for d in set(nd) | set(nl)}


def ranked(scores: Mapping[int, float]) -> list[int]:
    """Docs by descending score, ties broken by doc id so results are deterministic."""
    return sorted(scores, key=lambda d: (-scores[d], d))
