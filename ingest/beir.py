"""BEIR-format data as an index version: read corpus, queries and qrels, and index the documents the project's way.

A BEIR document becomes one passage (title and text, embedded as "title\\ntext", which the
model tokenises exactly as the "title text" of the published figures), with its text's
sentences embedded as a role-corpus passage's are, so search.beir ranks them with the same
index files and `Searcher` as the service's.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rolesearch.encoder.base import Encoder
from rolesearch.ingest.chunking import embed_text
from rolesearch.store.lexical import LEXICAL_PARAMS, build_lexical_fields, save_lexical
from rolesearch.store.manifest import Manifest, new_version_id, now_iso
from rolesearch.store.passage import Passage
from rolesearch.store.publish import publish, write_version
from rolesearch.store.sentences import SentenceParams, sentence_units


def default_cache_dir() -> Path:
    """Where corpus embeddings are kept between runs."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rolesearch" / "embeddings"


def cached_encode(embedder: Encoder, texts: list[str], cache_dir: Path | None, progress: bool = False) -> np.ndarray:
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


def build_beir_version(docs: list[tuple[str, str, str]], index_dir: Path, embedder: Encoder, cache_dir: Path | None,
                       progress: bool = False, sentences: bool = True,
                       sentence_params: SentenceParams = SentenceParams(),
                       sentence_embedder: Encoder | None = None) -> str:
    """Write and publish an index version over the (id, title, text) documents (with sentence vectors unless told
    not, their rows as sentence_params say, encoded by sentence_embedder, default embedder); returns its id."""
    sentence_embedder = sentence_embedder or embedder
    passages = [
        Passage(id=doc_id, article_id=doc_id, title=title, section=(), start=0, end=len(text), text=text,
                tokens=0, hash=hashlib.sha256(embed_text(title, (), text).encode()).hexdigest()[:16])
        for doc_id, title, text in docs
    ]
    texts = [embed_text(p.title, p.section, p.text) for p in passages]
    embeddings = cached_encode(embedder, texts, cache_dir, progress)
    sentence_embeddings = None
    if sentences:
        units = [s for _, s in sentence_units(passages, sentence_params)]
        sentence_embeddings = cached_encode(sentence_embedder, units, cache_dir, progress)
    lexical = build_lexical_fields({"text": texts})  # one field, "title\ntext", as in the published runs
    manifest = Manifest(
        version=new_version_id(), built_at=now_iso(), model=embedder.name, dimension=embedder.dimension,
        max_model_tokens=embedder.max_tokens, chunking={"beir": "one passage per document"},
        articles={}, passages=len(passages), lexical=LEXICAL_PARAMS | {"fields": ["text"]},
        sentences=0 if sentence_embeddings is None else len(sentence_embeddings),
        vectors=getattr(embedder, "vectors", embedder.name), sentence_units=sentence_params.to_dict(),
        sentence_vectors="" if getattr(sentence_embedder, "vectors", "") == getattr(embedder, "vectors", "") else
        sentence_embedder.vectors,
    )
    write_version(index_dir, manifest, passages, embeddings, [lambda folder: save_lexical(lexical, folder)],
                  sentence_embeddings)
    publish(index_dir, manifest.version)
    return manifest.version


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
