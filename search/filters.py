"""Search filters: restrict a search to some articles, tags or sources (pure functions over the manifest)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def _values(values: Iterable[str] | None) -> tuple[str, ...]:
    return tuple(sorted({v.strip() for v in values or () if v and v.strip()}))


@dataclass(frozen=True)
class Filters:
    """Values per facet: an article matches when, for every facet given, it has one of that facet's values.

    An unknown value is not an error: it matches no article.
    """

    article: tuple[str, ...] = ()
    tag: tuple[str, ...] = ()
    source: tuple[str, ...] = ()

    @classmethod
    def of(cls, article: Iterable[str] | None = None, tag: Iterable[str] | None = None,
           source: Iterable[str] | None = None) -> "Filters":
        """Filters from repeated values (blank ones dropped, order and repeats ignored, so equal filters hash alike)."""
        return cls(_values(article), _values(tag), _values(source))

    def __bool__(self) -> bool:
        return bool(self.article or self.tag or self.source)


NO_FILTERS = Filters()


def matches(article_id: str, meta: dict, filters: Filters) -> bool:
    """Whether one manifest article passes the filters (tags and sources compare without case)."""
    if filters.article and article_id not in filters.article:
        return False
    if filters.tag:
        wanted = {t.casefold() for t in filters.tag}
        if wanted.isdisjoint(str(t).casefold() for t in meta.get("tags") or ()):
            return False
    if filters.source and str(meta.get("source", "folder")).casefold() not in {s.casefold() for s in filters.source}:
        return False
    return True


def matching_articles(articles: dict, filters: Filters) -> set[str]:
    """Ids of the manifest's articles that pass the filters."""
    return {aid for aid, meta in articles.items() if matches(aid, meta, filters)}
