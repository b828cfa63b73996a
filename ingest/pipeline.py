"""Build the index from its sources: read, chunk, embed what changed, write a version, publish it.

Unchanged articles (their files only hashed) keep their passages as rows of the previous version;
the others are chunked and their roles attributed (reused passages keep theirs while the roles
configuration's fingerprint is the manifest's). ingest.rows plans where every passage and sentence
row comes from (the previous version, the embedding cache or the encoder) and writes the vectors
straight into the draft's preallocated arrays; FAISS (an IVF reuses the previous version's trained
quantiser and its rows' lists) and BM25 (reused term counts) are written; then the version is
published. A SourceError fails the build before anything is written.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from rolesearch.encoder.base import Encoder
from rolesearch.ingest.cache import DEFAULT_MAX_ENTRIES, EmbeddingCache, cache_path, vector_space
from rolesearch.ingest.changes import Baseline, Changes, baseline, chunk_changed, read_articles
from rolesearch.ingest.chunking import ChunkingParams
from rolesearch.ingest.roles import with_roles
from rolesearch.ingest.rows import PassageRows, RowPlan, fill_missing, gather, plan_rows, sequential
from rolesearch.ingest.sources import source_stats, sources_published
from rolesearch.ingest.sources.base import AccessHook, Source, Unchanged
from rolesearch.ingest.sources.folder import FolderSource
from rolesearch.store.access_change import AccessWidened, audit, widened
from rolesearch.store.ann import AnnParams
from rolesearch.store.lexical import LEXICAL_PARAMS, LexicalIndex, build_lexical_fields, reusable_terms, save_lexical
from rolesearch.store.manifest import Manifest, new_version_id, now_iso
from rolesearch.store.passage import Passage
from rolesearch.store.publish import RowSources, VersionDraft, build_lock, publish, write_version
from rolesearch.store.roles import RoleConfig
from rolesearch.store.sentences import SentenceParams
from rolesearch.store.versions import IndexFiles

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
    sources: list[dict] = field(default_factory=list)  # what each source that counts did: {kind, location, requests, ...}
    published: bool = True  # False: nothing changed, and (BuildOptions.keep_unchanged) nothing was published

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BuildOptions:
    """How a build runs (build_index's keyword arguments, grouped): what it indexes with, and what it reports."""

    chunking: ChunkingParams = field(default_factory=ChunkingParams)
    sentences: SentenceParams = field(default_factory=SentenceParams)  # which units of a passage get sentence rows
    ann: AnnParams = field(default_factory=AnnParams)
    roles: RoleConfig | None = None  # None: RoleConfig.load(), the configured roles file
    access: AccessHook | None = None  # groups for articles whose source knows none
    cache_max_entries: int = DEFAULT_MAX_ENTRIES  # 0: no embedding cache, nothing read or written
    full: bool = False  # reuse nothing: no previous rows, no cached vectors
    wait_for_lock: bool = False  # wait for another build to finish rather than fail with IndexBusy
    allow_wider_access: bool = False  # publish even when an article becomes readable by more readers (audited)
    forced_by: str | None = None  # who allowed it, for the audit log
    chunk_workers: int = 1
    progress: bool = False  # the encoder's progress bar
    on_progress: ProgressFn | None = None
    on_phase: PhaseFn | None = None
    stages: dict | None = None  # receives each step's seconds
    # Page ids a wiki pushed as changed (POST /admin/notify): a source that syncs a live wiki fetches these
    # pages' current state besides its change feed; an id that no longer exists is removed.
    notified_pages: frozenset[int] = frozenset()
    # A build that changes nothing publishes nothing (the background sync: no new version every few seconds).
    keep_unchanged: bool = False


@dataclass(frozen=True)
class _Vectors:
    """A draft's filled vector arrays, where their rows came from, and how many were embedded now."""

    rows: RowPlan
    passages: np.ndarray
    sentences: np.ndarray
    embedded: int  # distinct passages embedded now (neither in the previous version nor in the cache)
    sentences_embedded: int


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
    allow_wider_access: bool = False,
    forced_by: str | None = None,
    sentence_params: SentenceParams = SentenceParams(),
    sentence_embedder: Encoder | None = None,
) -> BuildSummary:
    """Bring index_dir up to date with its sources (default: the folder corpus_dir), embedding only
    passages not embedded before.

    full ignores the previous version and the embedding cache: everything is chunked and embedded anew.
    A source that cannot be read (SourceError) fails the build before anything is written. access gives
    groups to articles whose source knows none (ingest.sources.base.AccessHook). An ingest.access.AccessMap is such a hook.
    cache_max_entries 0 keeps no embedding cache (nothing read or written). stages, when given, receives the
    seconds of each step (bench/scale.py prints them). chunk_workers > 1 chunks a large build's articles in
    that many forked processes (ingest.chunk_pool; off by default: no gain measured on a busy machine).
    sentence_embedder, when given, encodes the sentence rows (e.g. the int8 encoder while passages stay fp32);
    its vector space is recorded in the manifest, so caches and later builds never mix the two.
    """
    if sources is None:
        if corpus_dir is None or not Path(corpus_dir).is_dir():
            raise FileNotFoundError(f"corpus folder {corpus_dir} does not exist")
        sources = [FolderSource(str(corpus_dir))]
    options = BuildOptions(chunking=params, sentences=sentence_params, ann=ann_params, roles=roles, access=access,
                           cache_max_entries=cache_max_entries, full=full, wait_for_lock=wait_for_lock,
                           chunk_workers=chunk_workers, progress=progress, on_progress=on_progress,
                           on_phase=on_phase, stages=stages, allow_wider_access=allow_wider_access,
                           forced_by=forced_by)
    return build(sources, index_dir, embedder, options, sentence_embedder)


def build(sources: list[Source], index_dir: Path, embedder: Encoder, options: BuildOptions = BuildOptions(),
          sentence_embedder: Encoder | None = None) -> BuildSummary:
    """build_index with its options grouped: the stages in order, under the build lock (sentence_embedder:
    the sentence rows' encoder, default embedder).

    The new version is written into a draft folder and published only once complete, so a build
    killed at any point leaves the published version as it was."""
    t0 = time.perf_counter()
    index_dir = Path(index_dir)
    phase = options.on_phase or (lambda name: None)
    clock = _Stages(options.stages)
    config = options.roles or RoleConfig.load()
    encoders = _Encoders(embedder, sentence_embedder or embedder)
    phase("waiting")  # for the build lock, when another build holds it
    with build_lock(index_dir, wait=options.wait_for_lock):
        phase("reading")
        base = baseline(index_dir, embedder, options.chunking, options.full, options.sentences,
                        vector_space(encoders.sentences))
        clock.lap("load_previous")
        read = read_articles(sources, options.access, base, options.notified_pages)
        clock.lap("read_sources")
        changes = chunk_changed(read, base, options.chunking, embedder, options.chunk_workers)
        clock.lap("chunking")
        # Fail closed: a map removed or emptied, a rule gone, groups dropped from front matter all make
        # articles readable by more people; that is refused before anything is embedded, unless allowed.
        wider = widened(base.articles, {i.id: {"access": list(i.access)} for i in changes.items
                                        if i.id in changes.passages})
        if wider and not options.allow_wider_access:
            raise AccessWidened("this build", wider, "--allow-wider-access")
        passages, copied = _passages(changes, base.previous, config)
        clock.lap("roles")
        removed = changes.removed(base.articles)
        renamed = changes.renamed(removed, base.articles)
        if options.keep_unchanged and _nothing_changed(changes, base, config):
            # The published version is what the sources hold now: a wiki source's sync state may move on.
            sources_published(sources)
            return replace(_summary(base.previous.manifest.version, changes, removed, renamed, None, base, t0),
                           sources=source_stats(sources))
        version = new_version_id()
        with VersionDraft(index_dir, version) as draft:
            phase("embedding")
            vectors = _fill_vectors(draft, passages, changes, base.previous, encoders, index_dir, options, clock)
            phase("writing")
            lexical = _lexical(passages, changes.reused, base.previous)
            clock.lap("lexical")
            manifest = _manifest(version, encoders, options, config, changes, base, lexical, vectors)
            describe = getattr(options.access, "describe", None)  # an AccessMap says which file it is
            manifest.access_map = describe() if describe is not None else None
            _write_files(index_dir, draft, manifest, passages, lexical, vectors, copied, base.previous, options.ann)
            clock.lap("write_version")
        phase("publishing")
        publish(index_dir, manifest.version)  # looked up at call time: crash tests wrap it
        if wider:
            audit(index_dir, "ingest", version=manifest.version, forced_by=options.forced_by or "unknown",
                  widened={aid: {"from": a, "to": b} for aid, (a, b) in wider.items()})
        sources_published(sources)  # a wiki source's sync state moves forward only now
        clock.lap("publish")
    return replace(_summary(manifest.version, changes, removed, renamed, vectors, base, t0),
                   sources=source_stats(sources))


def _nothing_changed(changes: Changes, base: Baseline, config: RoleConfig) -> bool:
    """Whether a build would publish what is published: same articles (bytes, titles, groups), same skips, roles."""
    prev = base.previous
    if prev is None or prev.manifest.roles != config.fingerprint:
        return False
    if {s["path"]: s["reason"] for s in changes.skipped} != prev.manifest.skipped:
        return False
    return _manifest_articles(changes.items, base.articles, changes.passages, changes.mapped) == base.articles


def _passages(changes: Changes, previous: IndexFiles | None, config: RoleConfig
              ) -> tuple[Sequence[Passage], tuple | None]:
    """The new version's passages in row order with their roles, and the previous rows whose bytes are
    copied as they are (RowSources.passage_bytes), if any."""
    table = previous.passages if previous else None
    # Roles of reused passages stand when the roles configuration is the one they were attributed with;
    # those rows are then neither decoded nor encoded again (their bytes are copied).
    if previous is not None and previous.manifest.roles == config.fingerprint:
        return PassageRows(table, changes.reused, with_roles(changes.chunked, config)), (table, changes.reused)
    return with_roles(list(PassageRows(table, changes.reused, changes.chunked)), config), None


@dataclass(frozen=True)
class _Encoders:
    """The passages' encoder and the sentence rows' (the same one unless the sentence setting says otherwise)."""

    passages: Encoder
    sentences: Encoder

    def __post_init__(self):
        if self.sentences.dimension != self.passages.dimension:
            raise ValueError(f"the sentence encoder's dimension {self.sentences.dimension} is not the passage "
                             f"encoder's {self.passages.dimension}")

    @property
    def shared(self) -> bool:
        """One vector space for both: their missing rows go through the encoder as one length-sorted stream."""
        return vector_space(self.passages) == vector_space(self.sentences)


def _fill_vectors(draft: VersionDraft, passages: Sequence[Passage], changes: Changes, previous: IndexFiles | None,
                  encoders: _Encoders, index_dir: Path, options: BuildOptions, clock: _Stages) -> _Vectors:
    """The draft's passage and sentence vectors, written in place: rows the previous version has are
    copied (a moved page's too), the others come from the embedding cache or the encoder."""
    rows = plan_rows(passages, changes.reused, previous, changes.moved, options.sentences)
    clock.lap("plan_rows")
    dimension = encoders.passages.dimension
    embeddings = draft.vectors("embeddings", len(passages), dimension)
    sentence_embeddings = draft.vectors("sentences", len(rows.sentence_numbers), dimension)
    gather(embeddings, sequential(previous, "embeddings"), rows.passages)
    gather(sentence_embeddings, sequential(previous, "sentences"), rows.sentences)
    clock.lap("gather_vectors")
    use_cache = options.cache_max_entries > 0
    missing = rows.missing(passages)
    arrays = [embeddings, sentence_embeddings]
    # Each stream: its rows, its encoder, and the cache under that encoder's vector space (the cache key), so
    # vectors of one sentence setting are never read back for another.
    if encoders.shared:
        streams = [(missing, encoders.passages)]
    else:
        streams = [([m for m in missing if m[0] == 0], encoders.passages),
                   ([m for m in missing if m[0] == 1], encoders.sentences)]
    fresh: set[str] = set()
    done = 0
    path = cache_path(index_dir)
    for part, encoder in streams:
        with EmbeddingCache(path, vector_space(encoder), encoder.dimension) as cache:
            fresh |= fill_missing(part, arrays, cache if use_cache else None, encoder, options.progress,
                                  _offset_progress(options.on_progress, done, len(missing)),
                                  read_cache=not options.full and use_cache)
        done += len(part)
    if use_cache:
        with EmbeddingCache(path, vector_space(encoders.passages), dimension) as cache:
            cache.prune(options.cache_max_entries)
    embedded = len({passages[i].hash for i in np.flatnonzero(rows.passages < 0)} & fresh)
    sentences_embedded = len(set(rows.new_sentence_keys) & fresh)
    rows = replace(rows, new_sentence_keys=[], new_sentence_texts=[])  # a million passages: gigabytes of text
    clock.lap("embed_missing")
    return _Vectors(rows, embeddings, sentence_embeddings, embedded, sentences_embedded)


def _offset_progress(on_progress: ProgressFn | None, before: int, total: int) -> ProgressFn | None:
    """on_progress for one stream of several: rows done before it are added, the total is all streams'."""
    if on_progress is None:
        return None
    return lambda done, _total: on_progress(before + done, total)


def _lexical(passages: Sequence[Passage], reused: np.ndarray, previous: IndexFiles | None) -> LexicalIndex | None:
    """The BM25 fields; a previous version's term counts are reused for the passages taken from it."""
    if not passages:
        return None
    fields = {"text": lambda p: p.text, "section": lambda p: " > ".join(p.section), "title": lambda p: p.title}
    reuse = reusable_terms(previous.path, previous.manifest.lexical, len(previous.passages)) if previous else None
    if reuse is None or set(reuse) != set(fields):
        return build_lexical_fields({name: [get(p) for p in passages] for name, get in fields.items()})
    new = [passages[i] for i in np.flatnonzero(reused < 0)]
    return build_lexical_fields({name: [get(p) for p in new] for name, get in fields.items()}, reuse, reused)


def _manifest(version: str, encoders: _Encoders, options: BuildOptions, config: RoleConfig, changes: Changes,
              base: Baseline, lexical: LexicalIndex | None, vectors: _Vectors) -> Manifest:
    """The new version's manifest: how it was built and what it holds."""
    embedder, params = encoders.passages, options.chunking
    return Manifest(
        version=version,
        built_at=now_iso(),
        model=embedder.name,
        vectors=vector_space(embedder),
        dimension=embedder.dimension,
        max_model_tokens=embedder.max_tokens,
        chunking=asdict(params),
        articles=_manifest_articles(changes.items, base.articles, changes.passages, changes.mapped),
        passages=len(vectors.passages),
        skipped={s["path"]: s["reason"] for s in changes.skipped},
        lexical=LEXICAL_PARAMS | {"fields": list(lexical.fields)} if lexical is not None else None,
        sentences=len(vectors.sentences),
        roles=config.fingerprint,
        sentence_vectors="" if encoders.shared else vector_space(encoders.sentences),
        sentence_units=options.sentences.to_dict(),
    )


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
            if a.origin is not None:
                out[aid]["origin"] = a.origin
            continue
        out[aid] = {
            "path": a.path, "hash": a.content_hash, "title": a.title, "url": a.url, "publisher": a.publisher,
            "date": a.date, "tags": list(a.tags), "access": list(a.access), "source": a.source, "passages": n,
            "own_access": [] if aid in mapped else list(a.access),
        } | ({"namespace": a.namespace} if a.namespace is not None else {})
        if a.origin is not None:  # the folder the article page reads the file from (never another one)
            out[aid]["origin"] = a.origin
    return out


def _write_files(index_dir: Path, draft: VersionDraft, manifest: Manifest, passages: Sequence[Passage],
                 lexical: LexicalIndex | None, vectors: _Vectors, copied: tuple | None, previous: IndexFiles | None,
                 ann_params: AnnParams) -> None:
    """The version's files (passage table, BM25, FAISS, manifest last), and the draft renamed into versions/.

    The previous version's IVF and term counts are reused for its rows (RowSources says which)."""
    writers = [lambda folder: save_lexical(lexical, folder)] if lexical is not None else []
    rows = vectors.rows
    sources_of_rows = RowSources(rows.passages, rows.sentences, rows.sentence_starts, rows.sentence_numbers, copied)
    write_version(index_dir, manifest, passages, vectors.passages, writers, vectors.sentences,
                  ann_params, previous.path if previous else None, draft, sources_of_rows)


def _summary(version: str, changes: Changes, removed: list[str], renamed: list[dict], vectors: _Vectors | None,
             base: Baseline, t0: float) -> BuildSummary:
    """What the build did, as `rolesearch ingest --json` prints it; seconds counts from t0.

    No vectors: nothing changed and nothing was published (version is the published one)."""
    if vectors is None:
        total = base.previous.manifest.passages
        return BuildSummary(
            version=version, articles={"added": 0, "changed": 0, "removed": 0,
                                       "unchanged": len(changes.status["unchanged"]), "skipped": len(changes.skipped)},
            passages={"embedded": 0, "reused": total, "total": total},
            sentences={"embedded": 0, "total": base.previous.manifest.sentences},
            seconds=round(time.perf_counter() - t0, 3), full_rebuild=False,
            reason="nothing changed: the published version is kept", skipped=changes.skipped, published=False)
    total, embedded = len(vectors.passages), vectors.embedded
    return BuildSummary(
        version=version,
        articles={"added": len(changes.status["added"]), "changed": len(changes.status["changed"]),
                  "removed": len(removed), "unchanged": len(changes.status["unchanged"]),
                  "skipped": len(changes.skipped)},
        passages={"embedded": embedded, "reused": total - embedded, "total": total},
        sentences={"embedded": vectors.sentences_embedded, "total": len(vectors.sentences)},
        seconds=round(time.perf_counter() - t0, 3),
        full_rebuild=base.previous is None,
        reason=base.reason,
        skipped=changes.skipped,
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
