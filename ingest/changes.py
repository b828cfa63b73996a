"""What a build changes: the articles its sources hold now against those of the published version.

The published manifest decides whether an article is added, changed, unchanged or removed. The
previous version, when its vectors can be reused (same encoder, same chunking), lends an unchanged
article its passages as rows, so only the other articles are parsed and chunked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rolesearch.encoder.base import Encoder
from rolesearch.ingest.articles import Article
from rolesearch.ingest.cache import vector_space
from rolesearch.ingest.chunk_pool import chunk_articles
from rolesearch.ingest.chunking import ChunkingError, ChunkingParams, TokenLimits
from rolesearch.ingest.rows import article_rows
from rolesearch.ingest.sources import read_sources
from rolesearch.ingest.sources.base import AccessHook, Source, Unchanged
from rolesearch.ingest.tokens import tiktoken_counter
from rolesearch.store.manifest import IndexNotFound, StoreError, read_manifest
from rolesearch.store.passage import Passage
from rolesearch.store.sentences import LEGACY, SentenceParams
from rolesearch.store.versions import IndexFiles, load_version

Read = tuple[list[Article | Unchanged], list[dict], set[str]]  # what read_sources returns


@dataclass(frozen=True)
class Baseline:
    """What a build compares against: the version whose rows it may reuse (None: everything is chunked and
    embedded anew), why, and the published articles."""

    previous: IndexFiles | None
    reason: str
    articles: dict  # the published manifest's, even when none of its rows is reused
    rows: dict[str, tuple[int, int]]  # (first row, passages) of each article in previous

    def status(self, item: Article | Unchanged) -> str:
        """"unchanged", "changed" or "added": item against the published manifest."""
        old = self.articles.get(item.id)
        return "unchanged" if old is not None and old["hash"] == item.content_hash else "changed" if old else "added"

    def reusable(self, item: Article | Unchanged) -> bool:
        """Whether item's passages are the previous version's rows: same bytes, and rows that line up."""
        return self.status(item) == "unchanged" and item.id in self.rows


@dataclass(frozen=True)
class Changes:
    """The articles read, and where each indexed one's passages come from."""

    items: list[Article | Unchanged]
    skipped: list[dict]  # {path, reason}: unreadable, or not chunkable
    mapped: set[str]  # ids whose groups come from the access hook (they have none of their own)
    chunked: list[Passage]  # the passages of the articles chunked now, in row order
    reused: np.ndarray  # each passage's row in the previous version, -1 for a chunked one
    passages: dict[str, int]  # passages of each indexed article, in row order
    status: dict[str, list[str]]  # ids "added", "changed", "unchanged"
    # For each chunked passage, the previous row whose vectors it takes because its page was moved (same
    # section and text under a new title: Article.meta["moved_from"]), else -1.
    moved: np.ndarray | None = None

    def removed(self, old_articles: dict) -> list[str]:
        """Published articles no longer indexed: gone from the sources, or now skipped."""
        return sorted(a for a in old_articles if a not in self.passages)

    def renamed(self, removed: list[str], old_articles: dict) -> list[dict]:
        """Added articles whose bytes equal a removed one's: a rename (their passages' vectors are all reused)."""
        removed_by_hash = {old_articles[a]["hash"]: a for a in removed}
        by_id = {a.id: a for a in self.items}
        pairs = [{"from": removed_by_hash[by_id[a].content_hash], "to": a}
                 for a in self.status["added"] if by_id[a].content_hash in removed_by_hash]
        moved = [{"from": _moved_from(by_id[a]), "to": a} for a in self.status["added"]
                 if _moved_from(by_id[a]) in removed and by_id[a].content_hash not in removed_by_hash]
        return pairs + moved


def baseline(index_dir: Path, embedder: Encoder, params: ChunkingParams, full: bool,
             sentences: SentenceParams = LEGACY, sentence_space: str | None = None) -> Baseline:
    """The build's baseline; full reuses nothing but still compares against the published articles.

    sentences and sentence_space (default: the embedder's) are the sentence rows' params and vector space:
    a previous version built with others lends no rows (its passages' vectors still come from the cache)."""
    previous, reason = (None, "full rebuild because it was asked for (--full)") if full else \
        _previous(index_dir, embedder, params, sentences, sentence_space or vector_space(embedder))
    articles = previous.manifest.articles if previous else _published_articles(index_dir)
    return Baseline(previous, reason, articles, article_rows(previous) if previous else {})


def read_articles(sources: list[Source], access: AccessHook | None, base: Baseline,
                  notified: frozenset[int] = frozenset()) -> Read:
    """Every article of the sources, the pages skipped, and the ids whose groups come from access (notified:
    page ids a wiki pushed, see BuildOptions.notified_pages)."""
    # Files whose bytes did not change are only hashed, not parsed (their passages are reused whole).
    known = {a: e for a, e in base.articles.items() if a in base.rows and "own_access" in e} if base.previous else None
    return read_sources(sources, access, known, notified)


def chunk_changed(read: Read, base: Baseline, params: ChunkingParams, embedder: Encoder, workers: int) -> Changes:
    """Each article's passages: its rows in the previous version when reusable, else chunked now; an
    article that cannot be chunked or has no text is skipped."""
    items, skipped, mapped = read
    skipped = list(skipped)
    to_chunk = [item for item in items if not base.reusable(item)]
    # tiktoken's ranks take 0.5 s to load: only when there is something to chunk
    limits = TokenLimits(tiktoken_counter(params.encoding), params.max_tokens, embedder.count_tokens,
                         embedder.max_tokens) if to_chunk else None
    results = iter(chunk_articles(to_chunk, params, limits, workers))
    chunked: list[Passage] = []
    moved: list[int] = []
    reused_rows: list[np.ndarray] = []
    per_article: dict[str, int] = {}
    status: dict[str, list[str]] = {"added": [], "changed": [], "unchanged": []}
    for item in items:
        if base.reusable(item):
            first, count = base.rows[item.id]
            rows = np.arange(first, first + count, dtype=np.int64)
        else:
            chunks = next(results)
            if isinstance(chunks, ChunkingError):
                skipped.append({"path": item.path, "reason": str(chunks)})
                continue
            if not chunks:
                skipped.append({"path": item.path, "reason": "article has no text to index"})
                continue
            rows = np.full(len(chunks), -1, dtype=np.int64)
            chunked += chunks
            moved += _moved_rows(item, chunks, base)
        status[base.status(item)].append(item.id)
        per_article[item.id] = len(rows)
        reused_rows.append(rows)
    reused = np.concatenate(reused_rows) if reused_rows else np.zeros(0, dtype=np.int64)
    return Changes(items, skipped, mapped, chunked, reused, per_article, status, np.array(moved, dtype=np.int64))


def _moved_from(item: Article | Unchanged) -> str | None:
    return getattr(item, "meta", {}).get("moved_from")


def _moved_rows(item: Article | Unchanged, chunks: list[Passage], base: Baseline) -> list[int]:
    """The previous rows of a moved page's passages, matched by section and text (-1 where none matches):
    the page is the same, only its title changed, so its vectors are kept rather than embedded again."""
    old = _moved_from(item)
    if old is None or old not in base.rows or base.previous is None:
        return [-1] * len(chunks)
    first, count = base.rows[old]
    rows = {(p.section, p.text): first + i for i, p in enumerate(base.previous.passages[first:first + count])}
    return [rows.get((p.section, p.text), -1) for p in chunks]


def _previous(index_dir: Path, embedder: Encoder, params: ChunkingParams, sentences: SentenceParams,
              sentence_space: str) -> tuple[IndexFiles | None, str]:
    """The published version when its vectors and passages can be reused, with why or why not."""
    try:
        previous = load_version(index_dir)
    except IndexNotFound:
        return None, "full build because there is no index yet"
    except StoreError as exc:
        return None, f"full rebuild because the published index cannot be used ({exc})"
    m = previous.manifest
    if m.model != embedder.name or m.dimension != embedder.dimension:
        return None, f"full rebuild because the model changed ({m.model} -> {embedder.name})"
    if (m.vectors or m.model) != vector_space(embedder):
        return None, ("full rebuild because the encoder's vectors changed "
                      f"({m.vectors or m.model} -> {vector_space(embedder)})")
    if m.chunking != asdict(params) or m.max_model_tokens != embedder.max_tokens:
        old = m.chunking | {"model_max_tokens": m.max_model_tokens}
        new = asdict(params) | {"model_max_tokens": embedder.max_tokens}
        diff = ", ".join(f"{k} {old.get(k)} -> {new.get(k)}" for k in new if old.get(k) != new.get(k))
        return None, f"full rebuild because the chunking parameters changed ({diff})"
    # A reused passage brings its sentence rows as they are: they must be the same units in the same vector space.
    if m.sentence_space() != sentence_space:
        return None, f"full rebuild because the sentence vectors changed ({m.sentence_space()} -> {sentence_space})"
    if SentenceParams.from_manifest(m.sentence_units) != sentences:
        return None, (f"full rebuild because the sentence units changed ({SentenceParams.from_manifest(m.sentence_units)}"
                      f" -> {sentences})")
    return previous, "incremental build: only new or changed passages are embedded"


def _published_articles(index_dir: Path) -> dict:
    """The articles of the published manifest, or none when it cannot be read."""
    try:
        return read_manifest(index_dir).articles
    except StoreError:
        return {}
