"""A BEIR benchmark end to end: its documents built into a version by ingest, its queries scored by search."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rolesearch.encoder.base import Encoder
from rolesearch.ingest.beir import BeirData, build_beir_version, load_beir
from rolesearch.search.beir import evaluate_index
from rolesearch.search.index import SearchIndex
from rolesearch.search.searcher import MODES, SearchConfig
from rolesearch.store.sentences import SentenceParams


def beir_index(data: BeirData, index_dir: Path, embedder: Encoder, cache_dir: Path | None, progress: bool = False,
               sentences: bool = True, sentence_params: SentenceParams = SentenceParams(),
               sentence_embedder: Encoder | None = None) -> SearchIndex:
    """The BEIR documents built into a version in index_dir (ingest.beir), loaded for search."""
    build_beir_version(data.docs, index_dir, embedder, cache_dir, progress, sentences, sentence_params,
                       sentence_embedder)
    return SearchIndex.load(index_dir, embedder.name)


def evaluate_beir(folder: Path, embedder: Encoder, split: str = "test", config: SearchConfig = SearchConfig(),
                  cache_dir: Path | None = None, modes: tuple[str, ...] = MODES,
                  progress: bool = False, rankers: tuple[str, ...] = ("ours",),
                  sentence_params: SentenceParams = SentenceParams(),
                  sentence_embedder: Encoder | None = None) -> dict[str, dict[str, float]]:
    """nDCG@10, Recall@100 and MRR@10 per mode (search.beir.evaluate_index), over an index built in a temporary folder."""
    data = load_beir(folder, split)
    with tempfile.TemporaryDirectory(prefix="rolesearch-beir-") as tmp:
        index = beir_index(data, Path(tmp) / "index", embedder, cache_dir, progress, config.sentence_vectors,
                           sentence_params, sentence_embedder)
        return evaluate_index(index, embedder, data.queries, data.qrels, config, modes, rankers)
