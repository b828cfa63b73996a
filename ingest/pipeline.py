"""Build the index from its sources: read, chunk, embed what changed, write a version, publish it."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from rolesearch.encoder.base import Encoder
from rolesearch.ingest.articles import Article
from rolesearch.ingest.cache import DEFAULT_MAX_ENTRIES, EmbeddingCache, cache_path
from rolesearch.ingest.chunk_pool import chunk_articles
from rolesearch.ingest.chunking import ChunkingError, ChunkingParams, TokenLimits
from rolesearch.ingest.roles import with_roles
from rolesearch.ingest.rows import PassageRows, article_rows, fill_missing, gather, plan_rows, sequential
from rolesearch.ingest.sources import read_sources
from rolesearch.ingest.sources.base import AccessHook, Source, Unchanged
from rolesearch.ingest.sources.folder import FolderSource
from rolesearch.ingest.tokens import tiktoken_counter
from rolesearch.store.ann import AnnParams
from rolesearch.store.lexical import LEXICAL_PARAMS, LexicalIndex, build_lexical_fields, reusable_terms, save_lexical
from rolesearch.store.manifest import IndexNotFound, Manifest, StoreError, new_version_id, now_iso, read_manifest
from rolesearch.store.passage import Passage
from rolesearch.store.publish import RowSources, VersionDraft, build_lock, publish, write_version
from rolesearch.store.roles import RoleConfig
from rolesearch.store.versions import IndexFiles, load_version

ProgressFn = Callable[[int, int], None]
PhaseFn = Callable[[str], None]  # "waiting", "reading", "embedding", "writing", "publishing"


@dataclass
class BuildSummary:
    """What a build did, as printed by `rolesearch ingest --json`.

    articles: {added, changed, removed, unchanged, skipped}; passages: {embedded, reused, total};
    sentences: {embedded, total} (the passages' sentence vectors, see store.sentences);
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
    embedder: Encoder,
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
    stages: dict | None = None,
    chunk_workers: int = 1,
) -> BuildSummary:
    """Bring index_dir up to date with its sources (default: the folder corpus_dir), embedding only
    passages not embedded before.

    full ignores the previous version and the embedding cache: everything is chunked and embedded anew.
    A source that cannot be read (SourceError) fails the build before anything is written. access gives
    groups to articles whose source knows none (ingest.sources.base.AccessHook). An ingest.access.AccessMap is such a hook.
    cache_max_entries 0 keeps no embedding cache (nothing read or written). stages, when given, receives the
    seconds of each step (bench/scale.py prints them). chunk_workers > 1 chunks a large build's articles in
    that many forked processes (ingest.chunk_pool; off by default: no gain measured on a busy machine).
    """
    t0 = time.perf_counter()
    index_dir = Path(index_dir)
    phase = on_phase or (lambda name: None)
    clock = _Stages(stages)
    if sources is None:
        if corpus_dir is None or not Path(corpus_dir).is_dir():
            raise FileNotFoundError(f"corpus folder {corpus_dir} does not exist")
        sources = [FolderSource(str(corpus_dir))]
    config = roles or RoleConfig.load()
    phase("waiting")  # for the build lock, when another build holds it
    with build_lock(index_dir, wait=wait_for_lock):
        phase("reading")
        previous, reason = (None, "full rebuild because it was asked for (--full)") if full else \
            _previous(index_dir, embedder, params)
        # What the published index holds decides added/changed/unchanged, even when nothing of it is reused.
        old_articles = previous.manifest.articles if previous else _published_articles(index_dir)
        ranges = article_rows(previous) if previous else {}
        clock.lap("load_previous")
        # Files whose bytes did not change are only hashed, not parsed (their passages are reused whole).
        known = {a: e for a, e in old_articles.items() if a in ranges and "own_access" in e} if previous else None
        items, skipped, mapped = read_sources(sources, access, known)
        clock.lap("read_sources")
        def reusable(item) -> bool:
            old = old_articles.get(item.id)
            return old is not None and old["hash"] == item.content_hash and item.id in ranges

        to_chunk = [item for item in items if not reusable(item)]
        # tiktoken's ranks take 0.5 s to load: only when there is something to chunk
        limits = TokenLimits(tiktoken_counter(params.encoding), params.max_tokens, embedder.count_tokens,
                             embedder.max_tokens) if to_chunk else None
        results = iter(chunk_articles(to_chunk, params, limits, chunk_workers))

        chunked: list[Passage] = []
        reused_rows: list[np.ndarray] = []  # per item: its rows in the previous version, -1 for chunked passages
        status = {"added": [], "changed": [], "unchanged": [], "removed": []}
        per_article: dict[str, int] = {}
        for item in items:
            old = old_articles.get(item.id)
            same = old is not None and old["hash"] == item.content_hash
            if reusable(item):
                first, count = ranges[item.id]
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
            status["unchanged" if same else "changed" if old else "added"].append(item.id)
            per_article[item.id] = len(rows)
            reused_rows.append(rows)
        reused = np.concatenate(reused_rows) if reused_rows else np.zeros(0, dtype=np.int64)
        clock.lap("chunking")
        # Roles of reused passages stand when the roles configuration is the one they were attributed with;
        # those rows are then neither decoded nor encoded again (their bytes are copied).
        keep_roles = previous is not None and previous.manifest.roles == config.fingerprint
        table = previous.passages if previous else None
        if keep_roles:
            passages = PassageRows(table, reused, with_roles(chunked, config))
            copied = (table, reused)
        else:
            passages = with_roles(list(PassageRows(table, reused, chunked)), config)
            copied = None
        clock.lap("roles")
        kept = set(per_article)
        status["removed"] = sorted(a for a in old_articles if a not in kept)
        renamed = _renames(status["added"], status["removed"], items, old_articles)

        version = new_version_id()
        with VersionDraft(index_dir, version) as draft:
            phase("embedding")
            rows = plan_rows(passages, reused, previous)
            clock.lap("plan_rows")
            embeddings = draft.vectors("embeddings", len(passages), embedder.dimension)
            sentence_embeddings = draft.vectors("sentences", len(rows.sentence_numbers), embedder.dimension)
            gather(embeddings, sequential(previous, "embeddings"), rows.passages)
            gather(sentence_embeddings, sequential(previous, "sentences"), rows.sentences)
            clock.lap("gather_vectors")
            use_cache = cache_max_entries > 0
            with EmbeddingCache(cache_path(index_dir), _vectors(embedder), embedder.dimension) as cache:
                fresh = fill_missing(rows.missing(passages), [embeddings, sentence_embeddings],
                                     cache if use_cache else None, embedder, progress, on_progress,
                                     read_cache=not full and use_cache)
                cache.prune(cache_max_entries)
            embedded = len({passages[i].hash for i in np.flatnonzero(rows.passages < 0)} & fresh)
            sentences_embedded = len(set(rows.new_sentence_keys) & fresh)
            rows = replace(rows, new_sentence_keys=[], new_sentence_texts=[])  # a million passages: gigabytes of text
            clock.lap("embed_missing")
            phase("writing")
            lexical = _lexical(passages, reused, previous)
            clock.lap("lexical")
            manifest = Manifest(
                version=version,
                built_at=now_iso(),
                model=embedder.name,
                vectors=_vectors(embedder),
                dimension=embedder.dimension,
                max_model_tokens=embedder.max_tokens,
                chunking=asdict(params),
                articles=_manifest_articles(items, old_articles, per_article, mapped),
                passages=len(passages),
                skipped={s["path"]: s["reason"] for s in skipped},
                lexical=LEXICAL_PARAMS | {"fields": list(lexical.fields)} if lexical is not None else None,
                sentences=len(sentence_embeddings),
                roles=config.fingerprint,
            )
            writers = [lambda folder: save_lexical(lexical, folder)] if lexical is not None else []
            sources_of_rows = RowSources(rows.passages, rows.sentences, rows.sentence_starts, rows.sentence_numbers,
                                         copied)
            write_version(index_dir, manifest, passages, embeddings, writers, sentence_embeddings, ann_params,
                          previous.path if previous else None, draft, sources_of_rows)
            clock.lap("write_version")
        phase("publishing")
        publish(index_dir, manifest.version)
        clock.lap("publish")
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


class _Stages:
    """Seconds per step of a build, into the caller's dict (bench/scale.py prints them), when given one."""

    def __init__(self, into: dict | None):
        self.into, self.t = into, time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        if self.into is not None:
            self.into[name] = self.into.get(name, 0.0) + now - self.t
        self.t = now


def _lexical(passages: list[Passage], reused: np.ndarray, previous: IndexFiles | None) -> LexicalIndex | None:
    """The BM25 fields; a previous version's term counts are reused for the passages taken from it."""
    if not passages:
        return None
    fields = {"text": lambda p: p.text, "section": lambda p: " > ".join(p.section), "title": lambda p: p.title}
    reuse = reusable_terms(previous.path, previous.manifest.lexical, len(previous.passages)) if previous else None
    if reuse is None or set(reuse) != set(fields):
        return build_lexical_fields({name: [get(p) for p in passages] for name, get in fields.items()})
    new = [passages[i] for i in np.flatnonzero(reused < 0)]
    return build_lexical_fields({name: [get(p) for p in new] for name, get in fields.items()}, reuse, reused)


def _manifest_articles(items: list, old_articles: dict, per_article: dict[str, int], mapped: set[str]) -> dict:
    """The manifest's article entries: parsed articles described afresh, unchanged ones carried over.

    own_access, the groups an article has itself (not from the access map), lets the next build
    give an unchanged article its groups without parsing it."""
    by_id = {a.id: a for a in items}
    out = {}
    for aid, n in per_article.items():
        a = by_id[aid]
        if isinstance(a, Unchanged):
            out[aid] = old_articles[aid] | {"path": a.path, "access": list(a.access), "passages": n}
            continue
        out[aid] = {
            "path": a.path, "hash": a.content_hash, "title": a.title, "url": a.url, "publisher": a.publisher,
            "date": a.date, "tags": list(a.tags), "access": list(a.access), "source": a.source, "passages": n,
            "own_access": [] if aid in mapped else list(a.access),
        }
    return out


def _previous(index_dir: Path, embedder: Encoder, params: ChunkingParams) -> tuple[IndexFiles | None, str]:
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


def _vectors(embedder: Encoder) -> str:
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
