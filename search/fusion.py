"""Pure functions that fuse rankings: reciprocal rank fusion and a normalised score combination."""

from __future__ import annotations

import math
from typing import Literal, Mapping, Sequence

Normalization = Literal["minmax", "max", "zscore", "rank"]
NORMALIZATIONS: tuple[str, ...] = ("minmax", "max", "zscore", "rank")


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


def maxnorm(scores: Mapping[int, float]) -> dict[int, float]:
    """Scores divided by the best one: a weak list stays close to its top instead of being stretched to [0, 1]."""
    if not scores:
        return {}
    hi = max(scores.values())
    return {d: (s / hi if hi > 0 else 0.0) for d, s in scores.items()}


def zscore(scores: Mapping[int, float]) -> dict[int, float]:
    """(score - mean) / standard deviation over the candidates (all equal: 0)."""
    if not scores:
        return {}
    values = list(scores.values())
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return {d: ((s - mean) / sd if sd > 0 else 0.0) for d, s in scores.items()}


def rank_scores(scores: Mapping[int, float]) -> dict[int, float]:
    """1 for the best candidate down to 1/n for the last: only the order counts, not the score gaps."""
    n = len(scores)
    return {d: 1.0 - r / n for r, d in enumerate(ranked(scores))}


def normalize(scores: Mapping[int, float], how: str = "minmax") -> dict[int, float]:
    """Scores on a common scale by one of NORMALIZATIONS."""
    funcs = {"minmax": minmax, "max": maxnorm, "zscore": zscore, "rank": rank_scores}
    if how not in funcs:
        raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, not {how!r}")
    return funcs[how](scores)


def convex(dense: Mapping[int, float], lexical: Mapping[int, float], alpha: float = 0.5,
           how: str = "minmax") -> dict[int, float]:
    """alpha * normalised dense + (1 - alpha) * normalised lexical; a doc missing from one side scores 0 there."""
    nd, nl = normalize(dense, how), normalize(lexical, how)
    low_d = min(nd.values(), default=0.0) if how == "zscore" else 0.0  # z-scores go below 0: missing = the worst
    low_l = min(nl.values(), default=0.0) if how == "zscore" else 0.0
    return {d: alpha * nd.get(d, low_d) + (1 - alpha) * nl.get(d, low_l) for d in set(nd) | set(nl)}


def guard_top1(order: Sequence[int], dense: Mapping[int, float], lexical: Mapping[int, float],
               within: int = 3, disagree: int = 10) -> list[int]:
    """order with each ranker's top-1 moved up to position `within` when the other ranker has it below `disagree`.

    When the two rankers disagree that strongly, a fused score puts both tops in the middle; one of
    them is usually right, so neither is let fall out of the first `within`.
    """
    out = list(order)
    for mine, other in ((lexical, dense), (dense, lexical)):
        if not mine:
            continue
        top = ranked(mine)[0]
        if top in ranked(other)[:disagree] or top not in out or out.index(top) < within:
            continue
        out.remove(top)
        out.insert(within - 1, top)
    return out


def ranked(scores: Mapping[int, float]) -> list[int]:
    """Docs by descending score, ties broken by doc id so results are deterministic."""
    return sorted(scores, key=lambda d: (-scores[d], d))
