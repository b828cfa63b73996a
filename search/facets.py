"""Facets: how many of the top hits come from each article, tag and source (for the search page)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from rolesearch.search.searcher import Hit

FACETS = ("article", "tag", "source")


@dataclass(frozen=True)
class FacetValue:
    """One value of a facet, what to show for it, and the number of hits that have it."""

    value: str
    label: str
    count: int


def facet_counts(hits: list[Hit], articles: dict) -> dict[str, list[FacetValue]]:
    """Counts of hits per article, tag and source, most frequent first (ties by label)."""
    counts: dict[str, Counter] = {f: Counter() for f in FACETS}
    labels: dict[tuple[str, str], str] = {}
    for h in hits:
        aid = h.passage.article_id
        meta = articles.get(aid, {})
        counts["article"][aid] += 1
        labels[("article", aid)] = meta.get("title") or h.passage.title
        for tag in dict.fromkeys(str(t) for t in meta.get("tags") or ()):
            counts["tag"][tag] += 1
        counts["source"][str(meta.get("source", "folder"))] += 1
    return {
        f: sorted((FacetValue(v, labels.get((f, v), v), n) for v, n in c.items()),
                  key=lambda fv: (-fv.count, fv.label.casefold()))
        for f, c in counts.items()
    }
