"""Chunking many articles on several cores: the token counts that decide passage ends are most of a
large build's CPU, and articles are independent.

Workers are forked, so they inherit the token counters (the model's tokenizer among them) instead
of loading them again; they receive articles and send back passages, in the order given. Small
builds chunk in the calling process: a fork costs more than a few hundred articles.
"""

from __future__ import annotations

import gc
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Sequence

from rolesearch.ingest.articles import Article
from rolesearch.ingest.chunking import ChunkingError, ChunkingParams, TokenLimits, chunk_article
from rolesearch.store.passage import Passage

MIN_ARTICLES_PER_WORKER = 256
_JOB: tuple[ChunkingParams, TokenLimits] | None = None  # what forked workers chunk with (set before the fork)


def chunk_articles(articles: Sequence[Article], params: ChunkingParams, limits: TokenLimits,
                   workers: int = 1) -> list[list[Passage] | ChunkingError]:
    """chunk_article of every article, in order; an article that cannot be chunked gives its ChunkingError."""
    workers = min(workers, len(articles) // MIN_ARTICLES_PER_WORKER)
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [_chunk(a, params, limits) for a in articles]
    global _JOB
    _JOB = (params, limits)
    gc.freeze()  # the parent's objects stay out of the workers' collections: their pages are not copied
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_chunk_in_worker, articles, chunksize=32))
    finally:
        gc.unfreeze()
        _JOB = None


def _chunk(article: Article, params: ChunkingParams, limits: TokenLimits) -> list[Passage] | ChunkingError:
    try:
        return chunk_article(article, params, limits)
    except ChunkingError as exc:
        return exc


def _chunk_in_worker(article: Article) -> list[Passage] | ChunkingError:
    params, limits = _JOB
    return _chunk(article, params, limits)
