"""The passages one request may rank over: readable by the caller and passing its filters, as a mask."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from rolesearch.search.access import Reader, readable_articles
from rolesearch.search.filters import Filters, matching_articles
from rolesearch.search.index import SearchIndex

_CACHE_BYTES = 64 * 2**20  # masks kept (one byte per passage): 256 at 256k passages and fewer, 64 at 1M
_CACHE_MAX = 256
_cache: OrderedDict[tuple, np.ndarray | None] = OrderedDict()
_counts: dict[tuple, tuple[dict, tuple[int, int]]] = {}  # (id(articles), reader) -> (articles, counts)
_restricted: list = [None, 0]  # [articles dict, its restricted count]: the newest version's, held with its dict
_lock = threading.Lock()


def articles_in_scope(articles: dict, reader: Reader, filters: Filters) -> set[str]:
    """Ids of the articles the reader may see that also pass the filters."""
    ids = readable_articles(articles, reader)
    return ids & matching_articles(articles, filters) if filters else ids


def passage_mask(index: SearchIndex, reader: Reader, filters: Filters) -> np.ndarray | None:
    """The `allow` mask for Searcher.search: passages of articles in scope; None when that is every passage.

    Cached per (index version, reader, filters): the same few group sets and filters come back request after request.
    """
    key = (str(index.path), index.version, reader, filters)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    ids = articles_in_scope(index.articles, reader, filters)
    mask = index.passages.article_mask(ids)  # through the article column: no passage is decoded
    result = None if mask.all() else mask
    keep = max(1, min(_CACHE_MAX, _CACHE_BYTES // max(len(mask), 1)))
    with _lock:
        _cache[key] = result
        while len(_cache) > keep:
            _cache.popitem(last=False)
    return result


def counts_in_scope(articles: dict, reader: Reader) -> tuple[int, int]:
    """(articles, passages) the reader may see: what /healthz, /articles and the page report.

    Cached per (articles of a loaded version, reader): the walk over every article (87k at a million
    passages) then runs once per version and group set, not once per request.
    """
    key = (id(articles), reader)
    with _lock:
        hit = _counts.get(key)
        if hit is not None and hit[0] is articles:  # the same dict, not a new one at a reused id
            return hit[1]
    ids = readable_articles(articles, reader)
    counts = len(ids), sum(int(articles[a].get("passages", 0)) for a in ids)
    with _lock:
        if any(held is not articles for held, _ in _counts.values()):
            _counts.clear()  # another version's: keep only the newest version's counts (and its dict) alive
        if len(_counts) >= _CACHE_MAX:
            _counts.pop(next(iter(_counts)))
        _counts[key] = (articles, counts)
    return counts


def restricted_count(articles: dict) -> int:
    """How many of the manifest's articles have access groups (cached for the last articles dict seen)."""
    with _lock:
        if _restricted[0] is articles:
            return _restricted[1]
    n = sum(1 for meta in articles.values() if meta.get("access"))
    with _lock:
        _restricted[:] = [articles, n]
    return n
