"""Ingest throughput against plain SentenceTransformer.encode, and in-process query latency.

    .venv/bin/python bench/ingest_and_query.py [--corpus corpus] [--queries 200]

Both embeddings are timed in the same run on the same passage texts, so the ratio shows what
the pipeline (reading, chunking, token counting, writing FAISS + BM25, publishing) costs on top
of the model itself.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from ingest.chunking import embed_text
from api.settings import Settings
from ingest.pipeline import build_index
from ingest.sentence_vectors import sentence_units
from search.index import SearchIndex
from search.searcher import Searcher

QUERIES = [
    "who owns model rollback?", "who sets up drift monitoring?", "who builds CI/CD for ML models?",
    "what does an ML platform engineer do?", "how much does an MLOps engineer earn?",
    "who does feature engineering?", "who is responsible for model validation?",
    "what tools should an MLOps engineer know?", "who reports to the director of infrastructure?",
    "how do roles differ in small teams?", "who automates retraining pipelines?",
    "what is MLOps?", "who tunes hyperparameters?", "career path for ML engineers",
]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--queries", type=int, default=200, help="timed searches per mode")
    args = parser.parse_args()

    embedder = Settings().embedder()  # the configured backend (ROLESEARCH_BACKEND)
    embedder.encode(["warm up"])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = build_index(args.corpus, Path(tmp), embedder)
        ingest_s = time.perf_counter() - t0
        index = SearchIndex.load(Path(tmp), embedder.name)
        # Everything the build embedded: each passage (with its title and section) and each distinct sentence.
        texts = [embed_text(p.title, p.section, p.text) for p in index.passages]
        texts += list(dict(sentence_units(index.passages)).values())

        t0 = time.perf_counter()
        embedder.encode(texts)  # the same backend's encode of the same texts, nothing else
        plain_s = time.perf_counter() - t0

        n = summary.passages["total"]
        articles = len(index.articles)
        print(f"passages: {n} from {articles} articles; texts embedded (passages + sentences): {len(texts)}")
        print(f"full ingest:                 {ingest_s:7.2f} s  {n / ingest_s:7.1f} passages/s  {len(texts) / ingest_s:7.1f} texts/s")
        print(f"plain encode ({embedder.spec.backend:9s}):  {plain_s:7.2f} s  {n / plain_s:7.1f} passages/s  {len(texts) / plain_s:7.1f} texts/s  (encode only, same texts)")
        print(f"ingest / plain encode time:  {ingest_s / plain_s:7.2f}x")

        searcher = Searcher(index, embedder)
        for mode in ("dense", "lexical", "hybrid"):
            latencies = []
            for i in range(args.queries):
                q = QUERIES[i % len(QUERIES)] + ("" if i < len(QUERIES) else f" #{i}")
                t0 = time.perf_counter()
                searcher.search(q, k=5, mode=mode)
                latencies.append((time.perf_counter() - t0) * 1000)
            print(f"query latency {mode:7s}: p50 {statistics.median(latencies):6.2f} ms  "
                  f"p99 {percentile(latencies, 99):6.2f} ms  ({args.queries} queries, k=5)")


if __name__ == "__main__":
    main()
