"""Build the index from its sources: read, chunk, embed what changed, write a version, publish it."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ingest.ann import AnnParams
from ingest.articles import Article
from ingest.cache import DEFAULT_MAX_ENTRIES, EmbeddingCache, cache_path
from ingest.chunking import ChunkingError, ChunkingParams, Passage, TokenLimits, chunk_article, embed_text
from ingest.embedding import Embedder
from ingest.lexical import LEXICAL_PARAMS, build_lexical_fields, save_lexical
from ingest.roles import RoleConfig, with_roles
from ingest.sentence_vectors import sentence_units
from ingest.sources import read_sources
from ingest.sources.base import AccessHook, Source
from ingest.sources.folder import FolderSource
from ingest.store import (
    IndexFiles, IndexNotFound, Manifest, StoreError, build_lock, load_version, new_version_id, now_iso, publish,
    read_manifest, write_version,
)
from ingest.tokens import tiktoken_counter

ProgressFn = Callable[[int, int], None]
PhaseFn = Callable[[str], None]  # "waiting", "reading", "embedding", "writing", "publishing"


@dataclass
class BuildSummary:
    """What a build did, as printed by `rolesearch ingest --json`.

    articles: {added, changed, removed, unchanged, skipped}; passages: {embedded, reused, total};
    sentences: {embedded, total} (the passages' sentence vectors, see ingest.sentence_vectors);
    skipped lists each file not indexed with its reason; renamed pairs a removed id with an added
    one whose file bytes are identical (its vectors are all reused).
    """

    version: str
    articles: dict
    passages: dict
    seconds: float
    full_rebuild: bool
    reason: str
    skipped: list[dict] = field(default_factory=list)
    renamed: list[dict] = field(default_factory=list)
    sentences: dict = field(default_factory=dict)  # sentence vectors: {embedded, total}

    def to_dict(self) -> dict:
        return asdict(self)


def build_index(
    corpus_dir: Path | None,
    index_dir: Path,
    embedder: Embedder,
    params: ChunkingParams = ChunkingParams(),
    progress: bool = False,
    on_progress: ProgressFn | None = None,
    wait_for_lock: bool = False,
    full: bool = False,
    on_phase: PhaseFn | None = None,
    cache_max_entries: int = DEFAULT_MAX_ENTRIES,
    roles: RoleConfig | None = None,
    sources: list[Source] | None = None,
    access: AccessHook | None = None,
    ann_params: AnnParams = AnnParams(),
) -> BuildSummary:
    """Bring index_dir up to date with its sources (default: the folder corpus_dir), embedding only
    passages not embedded before.

    full ignores the previous version and the embedding cache: everything is chunked and embedded anew.
    A source that cannot be read (SourceError) fails the build before anything is written. access gives
    groups to articles whose source knows none (ingest.sources.base.AccessHook). An ingest.access.AccessMap is such a hook.
    """
    t0 = time.perf_counter()
    index_dir = Path(index_dir)
    phase = on_phase or (lambda name: None)
    if sources is None:
        if corpus_dir is None or not Path(corpus_dir).is_dir():
            raise FileNotFoundError(f"corpus folder {corpus_dir} does not exist")
        sources = [FolderSource(str(corpus_dir))]
    phase("waiting")  # for the build lock, when another build holds it
    with build_lock(index_dir, wait=wait_for_lock):
        phase("reading")
        previous, reason = (None, "full rebuild because it was asked for (--full)") if full else \
            _previous(index_dir, embedder, params)
        articles, skipped = read_sources(sources, access)
        limits = TokenLimits(tiktoken_counter(params.encoding), params.max_tokens, embedder.count_tokens, embedder.max_tokens)
        # What the published index holds decides added/changed/unchanged, even when nothing of it is reused.
        old_articles = previous.manifest.articles if previous else _published_articles(index_dir)
        old_passages: dict[str, list[Passage]] = {}
        if previous:
            for p in previous.passages:
                old_passages.setdefault(p.article_id, []).append(p)

        passages: list[Passage] = []
        status = {"added": [], "changed": [], "unchanged": [], "removed": []}
        per_article: dict[str, int] = {}
        for article in articles:
            old = old_articles.get(article.id)
            same = old is not None and old["hash"] == article.content_hash
            if same and article.id in old_passages:
                chunks = old_passages[article.id]
            else:
                try:
                    chunks = chunk_article(article, params, limits)
                except ChunkingError as exc:
                    skipped.append({"path": article.path, "reason": str(exc)})
                    continue
                if not chunks:
                    skipped.append({"path": article.path, "reason": "article has no text to index"})
                    continue
            status["unchanged" if same else "changed" if old else "added"].append(article.id)
            per_article[article.id] = len(chunks)
            passages.extend(chunks)
        kept = set(per_article)
        passages = with_roles(passages, roles or RoleConfig.load())
        status["removed"] = sorted(a for a in old_articles if a not in kept)
        renamed = _renames(status["added"], status["removed"], articles, old_articles)

        phase("embedding")
        with EmbeddingCache(cache_path(index_dir), _vectors(embedder), embedder.dimension) as cache:
            units = [(p.hash, embed_text(p.title, p.section, p.text)) for p in passages]
            sentences = sentence_units(passages)
            vectors, fresh = _embed(units + sentences, _reusable(previous), cache, embedder, progress,
                                    on_progress, read_cache=not full)
            embeddings = _stack([vectors[k] for k, _ in units], embedder.dimension)
            sentence_embeddings = _stack([vectors[k] for k, _ in sentences], embedder.dimension)
            cache.touch(k for k, _ in units + sentences)
            embedded = len({p.hash for p in passages} & fresh)
            sentences_embedded = len({k for k, _ in sentences} & fresh)
            cache.prune(cache_max_entries)
        phase("writing")
        lexical = build_lexical_fields({
            "text": [p.text for p in passages],
            "section": [" > ".join(p.section) for p in passages],
            "title": [p.title for p in passages],
        }) if passages else None
        by_id = {a.id: a for a in articles}
        manifest = Manifest(
            version=new_version_id(),
            built_at=now_iso(),
            model=embedder.name,
            vectors=_vectors(embedder),
            dimension=embedder.dimension,
            max_model_tokens=embedder.max_tokens,
            chunking=asdict(params),
            articles={
                aid: {
                    "path": by_id[aid].path, "hash": by_id[aid].content_hash, "title": by_id[aid].title,
                    "url": by_id[aid].url, "publisher": by_id[aid].publisher, "date": by_id[aid].date,
                    "tags": list(by_id[aid].tags), "access": list(by_id[aid].access),
                    "source": by_id[aid].source, "passages": n,
                }
                for aid, n in per_article.items()
            },
            passages=len(passages),
            skipped={s["path"]: s["reason"] for s in skipped},
            lexical=LEXICAL_PARAMS | {"fields": list(lexical.fields)} if lexical is not None else None,
            sentences=len(sentence_embeddings),
        )
        writers = [lambda folder: save_lexical(lexical, folder)] if lexical is not None else []
        write_version(index_dir, manifest, passages, embeddings, writers, sentence_embeddings, ann_params,
                      previous.path if previous else None)
        phase("publishing")
        publish(index_dir, manifest.version)
    return BuildSummary(
        version=manifest.version,
        articles={k: len(status[k]) for k in ("added", "changed", "removed", "unchanged")} | {"skipped": len(skipped)},
        passages={"embedded": embedded, "reused": len(passages) - embedded, "total": len(passages)},
        sentences={"embedded": sentences_embedded, "total": len(sentence_embeddings)},
        seconds=round(time.perf_counter() - t0, 3),
        full_rebuild=previous is None,
        reason=reason,
        skipped=skipped,
        renamed=renamed,
    )


def _previous(index_dir: Path, embedder: Embedder, params: ChunkingParams) -> tuple[IndexFiles | None, str]:
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
    if (m.vectors or m.model) != _vectors(embedder):
        return None, f"full rebuild because the encoder's vectors changed ({m.vectors or m.model} -> {_vectors(embedder)})"
    if m.chunking != asdict(params) or m.max_model_tokens != embedder.max_tokens:
        old = m.chunking | {"model_max_tokens": m.max_model_tokens}
        new = asdict(params) | {"model_max_tokens": embedder.max_tokens}
        diff = ", ".join(f"{k} {old.get(k)} -> {new.get(k)}" for k in new if old.get(k) != new.get(k))
        return None, f"full rebuild because the chunking parameters changed ({diff})"
    return previous, "incremental build: only new or changed passages are embedded"


def _vectors(embedder: Embedder) -> str:
    """The embedder's vector space (model, plus "#int8-f<export format>" for a quantised encoder): what cached vectors must match."""
    return getattr(embedder, "vectors", embedder.name)


def _published_articles(index_dir: Path) -> dict:
    """The articles of the published manifest, or none when it cannot be read."""
    try:
        return read_manifest(index_dir).articles
    except StoreError:
        return {}


def _renames(added: list[str], removed: list[str], articles: list[Article], old_articles: dict) -> list[dict]:
    """Added articles whose bytes equal a removed one's: a rename (their passages' vectors are all reused)."""
    removed_by_hash = {old_articles[a]["hash"]: a for a in removed}
    by_id = {a.id: a for a in articles}
    return [{"from": removed_by_hash[by_id[a].content_hash], "to": a}
            for a in added if by_id[a].content_hash in removed_by_hash]


def _reusable(previous: IndexFiles | None) -> dict[str, np.ndarray]:
    """Vectors of the previous version by key: passages by hash, sentences by sentence key."""
    if previous is None:
        return {}
    reuse = {p.hash: previous.embeddings[i] for i, p in enumerate(previous.passages)}
    if previous.sentence_embeddings is not None:
        keys = [k for k, _ in sentence_units(previous.passages)]
        if len(keys) == len(previous.sentence_embeddings):
            reuse |= dict(zip(keys, previous.sentence_embeddings))
    return reuse


def _stack(vectors: list[np.ndarray], dimension: int) -> np.ndarray:
    return np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dimension), dtype=np.float32)


def _embed(units: list[tuple[str, str]], reuse: dict[str, np.ndarray], cache: EmbeddingCache | None,
           embedder: Embedder, progress: bool, on_progress: ProgressFn | None,
           read_cache: bool = True) -> tuple[dict[str, np.ndarray], set[str]]:
    """A vector for every (key, text) unit: reused by key from the previous version or the cache, the rest embedded.

    Returns vectors by key and the keys that were embedded now. New vectors go into the cache group
    by group as they are made, so a build killed while embedding loses none of the work done.
    """
    reuse = dict(reuse)
    if cache is not None and read_cache:
        reuse |= cache.get_many(k for k, _ in units if k not in reuse)
    missing: dict[str, str] = {}
    for key, text in units:
        if key not in reuse and key not in missing:
            missing[key] = text
    keys = list(missing)

    def store(idx: list[int], vectors: np.ndarray) -> None:
        if cache is not None:
            cache.put_many({keys[i]: v for i, v in zip(idx, vectors)})

    fresh = embedder.encode(list(missing.values()), progress=progress, on_progress=on_progress, on_vectors=store)
    reuse.update(zip(keys, fresh))
    return reuse, set(keys)
