"""Build the index from the corpus: read, chunk, embed what changed, write a version, publish it."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ingest.articles import Article, ArticleError, list_article_files, read_article
from ingest.chunking import ChunkingError, ChunkingParams, Passage, TokenLimits, chunk_article, embed_text
from ingest.embedding import Embedder
from ingest.lexical import LEXICAL_PARAMS, build_lexical, save_lexical
from ingest.roles import RoleConfig, with_roles
from ingest.store import (
    IndexFiles, Manifest, StoreError, build_lock, load_version, new_version_id, now_iso, publish, write_version,
)
from ingest.tokens import tiktoken_counter

ProgressFn = Callable[[int, int], None]


@dataclass
class BuildSummary:
    """What a build did, as printed by `rolesearch ingest --json`."""

    version: str
    articles: dict
    passages: dict
    seconds: float
    full_rebuild: bool
    reason: str
    skipped: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def build_index(
    corpus_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    params: ChunkingParams = ChunkingParams(),
    progress: bool = False,
    on_progress: ProgressFn | None = None,
    wait_for_lock: bool = False,
    roles: RoleConfig | None = None,
) -> BuildSummary:
    """Bring index_dir up to date with corpus_dir, embedding only passages not embedded before."""
    t0 = time.perf_counter()
    corpus_dir, index_dir = Path(corpus_dir), Path(index_dir)
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"corpus folder {corpus_dir} does not exist")
    with build_lock(index_dir, wait=wait_for_lock):
        previous, reason = _previous(index_dir, embedder, params)
        articles, skipped = _read_corpus(corpus_dir)
        limits = TokenLimits(tiktoken_counter(params.encoding), params.max_tokens, embedder.count_tokens, embedder.max_tokens)
        old_articles = previous.manifest.articles if previous else {}
        old_passages: dict[str, list[Passage]] = {}
        if previous:
            for p in previous.passages:
                old_passages.setdefault(p.article_id, []).append(p)

        passages: list[Passage] = []
        status = {"added": [], "changed": [], "unchanged": [], "removed": []}
        per_article: dict[str, int] = {}
        for article in articles:
            old = old_articles.get(article.id)
            if old and old["hash"] == article.content_hash and article.id in old_passages:
                chunks = old_passages[article.id]
                status["unchanged"].append(article.id)
            else:
                try:
                    chunks = chunk_article(article, params, limits)
                except ChunkingError as exc:
                    skipped.append({"path": article.path, "reason": str(exc)})
                    continue
                if not chunks:
                    skipped.append({"path": article.path, "reason": "article has no text to index"})
                    continue
                status["changed" if old else "added"].append(article.id)
            per_article[article.id] = len(chunks)
            passages.extend(chunks)
        kept = set(per_article)
        passages = with_roles(passages, roles or RoleConfig.load())
        status["removed"] = sorted(a for a in old_articles if a not in kept)

        embeddings, embedded = _embed(passages, previous, embedder, progress, on_progress)
        lexical = build_lexical([embed_text(p.title, p.section, p.text) for p in passages]) if passages else None
        by_id = {a.id: a for a in articles}
        manifest = Manifest(
            version=new_version_id(),
            built_at=now_iso(),
            model=embedder.name,
            dimension=embedder.dimension,
            max_model_tokens=embedder.max_tokens,
            chunking=asdict(params),
            articles={
                aid: {
                    "path": by_id[aid].path, "hash": by_id[aid].content_hash, "title": by_id[aid].title,
                    "url": by_id[aid].url, "publisher": by_id[aid].publisher, "date": by_id[aid].date,
                    "tags": list(by_id[aid].tags), "passages": n,
                }
                for aid, n in per_article.items()
            },
            passages=len(passages),
            skipped={s["path"]: s["reason"] for s in skipped},
            lexical=LEXICAL_PARAMS if lexical is not None else None,
        )
        writers = [lambda folder: save_lexical(lexical, folder)] if lexical is not None else []
        write_version(index_dir, manifest, passages, embeddings, writers)
        publish(index_dir, manifest.version)
    return BuildSummary(
        version=manifest.version,
        articles={k: len(v) for k, v in status.items()} | {"skipped": len(skipped), "total": len(per_article)},
        passages={"embedded": embedded, "reused": len(passages) - embedded, "total": len(passages)},
        seconds=round(time.perf_counter() - t0, 3),
        full_rebuild=previous is None,
        reason=reason,
        skipped=skipped,
    )


def _previous(index_dir: Path, embedder: Embedder, params: ChunkingParams) -> tuple[IndexFiles | None, str]:
    """The published version when its vectors and passages can be reused, with why or why not."""
    try:
        previous = load_version(index_dir)
    except StoreError as exc:
        if "no index" in str(exc):
            return None, "no index yet: full build"
        return None, f"previous index unusable ({exc}): full rebuild"
    m = previous.manifest
    if m.model != embedder.name or m.dimension != embedder.dimension:
        return None, f"model changed ({m.model} -> {embedder.name}): full rebuild"
    if m.chunking != asdict(params) or m.max_model_tokens != embedder.max_tokens:
        return None, "chunking parameters changed: full rebuild"
    return previous, "incremental: only new or changed passages are embedded"


def _read_corpus(corpus_dir: Path) -> tuple[list[Article], list[dict]]:
    articles: list[Article] = []
    skipped: list[dict] = []
    seen: dict[str, str] = {}
    for path in list_article_files(corpus_dir):
        rel = path.relative_to(corpus_dir).as_posix()
        try:
            article = read_article(path, corpus_dir)
        except ArticleError as exc:
            skipped.append({"path": rel, "reason": str(exc)})
            continue
        if article.id in seen:
            skipped.append({"path": rel, "reason": f"same article id {article.id!r} as {seen[article.id]}"})
            continue
        seen[article.id] = rel
        articles.append(article)
    return articles, skipped


def _embed(passages: list[Passage], previous: IndexFiles | None, embedder: Embedder,
           progress: bool, on_progress: ProgressFn | None) -> tuple[np.ndarray, int]:
    """Vectors for all passages: reused by hash from the previous version, the rest embedded once each."""
    reuse: dict[str, np.ndarray] = {}
    if previous is not None:
        reuse = {p.hash: previous.embeddings[i] for i, p in enumerate(previous.passages)}
    missing: dict[str, str] = {}
    for p in passages:
        if p.hash not in reuse and p.hash not in missing:
            missing[p.hash] = embed_text(p.title, p.section, p.text)
    fresh = embedder.encode(list(missing.values()), progress=progress, on_progress=on_progress)
    reuse.update(zip(missing.keys(), fresh))
    if not passages:
        return np.zeros((0, embedder.dimension), dtype=np.float32), 0
    return np.stack([reuse[p.hash] for p in passages]).astype(np.float32), len(missing)
