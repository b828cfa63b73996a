"""BEIR-format benchmarks: read corpus, queries and qrels, index them the project's way, score the rankings.

A BEIR document becomes one passage (title and text, embedded as "title\\ntext", which the
model tokenises exactly as the "title text" of the published figures), with its text's
sentences embedded as a role-corpus passage's are; the dense, lexical and fused rankings then
come from the same index files and `Searcher` as the service's. "dense-passage" ranks by the
documents' own vectors only: the figure the model's published results measure.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ingest.chunking import Passage, embed_text
from ingest.embedding import Embedder
from ingest.lexical import LEXICAL_PARAMS, build_lexical_fields, save_lexical
from ingest.sentence_vectors import sentence_units
from ingest.store import Manifest, new_version_id, now_iso, publish, write_version
from search.baseline import BaselineSearcher
from search.index import SearchIndex
from search.metrics import evaluate_rankings
from search.searcher import MODES, SearchConfig, Searcher

DEPTH = 100  # Recall@100 needs the top 100


class BeirError(ValueError):
    """A folder that is not BEIR data (a file missing or a line that does not parse)."""


@dataclass(frozen=True)
class BeirData:
    """One split of a BEIR dataset: every document, the judged queries and their judgements."""

    docs: list[tuple[str, str, str]]  # (id, title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise BeirError(f"{path} does not exist")
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise BeirError(f"{path}:{n}: not JSON ({exc.msg})") from exc
    return out


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query-id, corpus-id, score per tab-separated line, after a header line."""
    if not path.is_file():
        raise BeirError(f"{path} does not exist")
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            parts = line.rstrip("\n").split("\t")
            if (n == 1 and parts[0] == "query-id") or not line.strip():
                continue
            if len(parts) != 3:
                raise BeirError(f"{path}:{n}: expected query-id, corpus-id, score")
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return qrels


def load_beir(folder: Path, split: str = "test") -> BeirData:
    """Read corpus.jsonl, queries.jsonl and qrels/SPLIT.tsv; keep only the queries the split judges."""
    folder = Path(folder)
    try:
        docs = [(str(d["_id"]), d.get("title") or "", d.get("text") or "") for d in _read_jsonl(folder / "corpus.jsonl")]
        all_queries = {str(q["_id"]): q["text"] for q in _read_jsonl(folder / "queries.jsonl")}
    except KeyError as exc:
        raise BeirError(f"{folder}: a line lacks {exc}") from exc
    qrels = read_qrels(folder / "qrels" / f"{split}.tsv")
    missing = [q for q in qrels if q not in all_queries]
    if missing:
        raise BeirError(f"{len(missing)} judged queries are not in queries.jsonl (first: {missing[0]})")
    return BeirData(docs, {q: all_queries[q] for q in qrels}, qrels)


def default_cache_dir() -> Path:
    """Where corpus embeddings are kept between runs."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rolesearch" / "embeddings"


def cached_encode(embedder: Embedder, texts: list[str], cache_dir: Path | None, progress: bool = False) -> np.ndarray:
    """Embeddings of texts, from a file keyed by the model and the exact texts when one was written before."""
    if cache_dir is None:
        return embedder.encode(texts, progress=progress)
    key = hashlib.sha256()
    key.update(getattr(embedder, "vectors", embedder.name).encode() + b"\0" + str(embedder.max_tokens).encode())
    for t in texts:
        key.update(b"\0" + t.encode())
    path = Path(cache_dir) / f"{key.hexdigest()[:32]}.npy"
    if path.is_file():
        vectors = np.load(path)
        if vectors.shape == (len(texts), embedder.dimension):
            return vectors
    vectors = embedder.encode(texts, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
    np.save(tmp, vectors)
    os.replace(tmp, path)  # a crash mid-write leaves no half file under the real name
    return vectors


def build_beir_index(data: BeirData, index_dir: Path, embedder: Embedder, cache_dir: Path | None,
                     progress: bool = False, sentences: bool = True) -> SearchIndex:
    """Write and publish an index version over the documents (with sentence vectors unless told not), and load it."""
    passages = [
        Passage(id=doc_id, article_id=doc_id, title=title, section=(), start=0, end=len(text), text=text,
                tokens=0, hash=hashlib.sha256(embed_text(title, (), text).encode()).hexdigest()[:16])
        for doc_id, title, text in data.docs
    ]
    texts = [embed_text(p.title, p.section, p.text) for p in passages]
    embeddings = cached_encode(embedder, texts, cache_dir, progress)
    sentence_embeddings = None
    if sentences:
        sentence_embeddings = cached_encode(embedder, [s for _, s in sentence_units(passages)], cache_dir, progress)
    lexical = build_lexical_fields({"text": texts})  # one field, "title\ntext", as in the published runs
    manifest = Manifest(
        version=new_version_id(), built_at=now_iso(), model=embedder.name, dimension=embedder.dimension,
        max_model_tokens=embedder.max_tokens, chunking={"beir": "one passage per document"},
        articles={}, passages=len(passages), lexical=LEXICAL_PARAMS | {"fields": ["text"]},
        sentences=0 if sentence_embeddings is None else len(sentence_embeddings),
    )
    write_version(index_dir, manifest, passages, embeddings, [lambda folder: save_lexical(lexical, folder)],
                  sentence_embeddings)
    publish(index_dir, manifest.version)
    return SearchIndex.load(index_dir, embedder.name)


def rank_queries(searcher: Searcher, queries: dict[str, str], mode: str, k: int = DEPTH) -> dict[str, list[str]]:
    """The top k document ids for every query, in one mode (no section diversity: a document is its own section)."""
    return {
        qid: [h.passage.id for h in searcher.search(text, k=k, mode=mode, max_per_section=0, highlights=False).hits]
        for qid, text in queries.items()
    }


def evaluate_beir(folder: Path, embedder: Embedder, split: str = "test", config: SearchConfig = SearchConfig(),
                  cache_dir: Path | None = None, modes: tuple[str, ...] = MODES,
                  progress: bool = False, rankers: tuple[str, ...] = ("ours",)) -> dict[str, dict[str, float]]:
    """nDCG@10, Recall@100 and MRR@10 per mode, over an index built in a temporary folder.

    With sentence vectors on (config.sentence_vectors) and dense among the modes, "dense-passage"
    comes first: dense ranking by the documents' own vectors, comparable with published figures.
    With "baseline" among the rankers, "baseline" comes last: search.baseline's hybrid over the same index.
    """
    data = load_beir(folder, split)
    with tempfile.TemporaryDirectory(prefix="rolesearch-beir-") as tmp:
        index = build_beir_index(data, Path(tmp) / "index", embedder, cache_dir, progress, config.sentence_vectors)
        results = {}
        if "ours" in rankers:
            if config.sentence_vectors and "dense" in modes:
                plain = Searcher(index, embedder, replace(config, sentence_vectors=False))
                results["dense-passage"] = evaluate_rankings(rank_queries(plain, data.queries, "dense"), data.qrels)
            searcher = Searcher(index, embedder, config)
            for mode in modes:
                results[mode] = evaluate_rankings(rank_queries(searcher, data.queries, mode), data.qrels)
        if "baseline" in rankers:
            baseline = BaselineSearcher(index, embedder, config.candidates)
            results["baseline"] = evaluate_rankings(rank_queries(baseline, data.queries, "hybrid"), data.qrels)
        return results

