"""Ingest throughput against a bare encode of the same texts, where a build's time goes, and query latency.

    .venv/bin/python bench/ingest_and_query.py [--corpus corpus] [--queries 200]
    .venv/bin/python bench/ingest_and_query.py --scifact ../shared/benchmarks/scifact [--docs 1000]

Both embeddings are timed in the same run on the same texts (every passage, with its title and
section, and every distinct sentence the build embedded) with the same backend, so the ratio shows
what the pipeline (reading, chunking, token counting, roles, the embedding cache, BM25, FAISS,
writing, publishing) costs on top of the model. Wall-clock and CPU seconds (all of the process's
threads) are both printed: on a shared machine the CPU ratio is the steadier one. --scifact ingests
SciFact's abstracts as articles through the same `build_index` (one article per abstract).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from rolesearch.ingest.articles import ArticleError
from rolesearch.ingest.beir import load_beir
from rolesearch.ingest.chunking import embed_text
from rolesearch.ingest.pipeline import build_index
from rolesearch.ingest.sources.base import Skipped, page_article
from rolesearch.search.index import SearchIndex
from rolesearch.search.searcher import Searcher
from rolesearch.settings import Settings
from rolesearch.store.sentences import sentence_units

QUERIES = [
    "who owns model rollback?", "who sets up drift monitoring?", "who builds CI/CD for ML models?",
    "what does an ML platform engineer do?", "how much does an MLOps engineer earn?",
    "who does feature engineering?", "who is responsible for model validation?",
    "what tools should an MLOps engineer know?", "who reports to the director of infrastructure?",
    "how do roles differ in small teams?", "who automates retraining pipelines?",
    "what is MLOps?", "who tunes hyperparameters?", "career path for ML engineers",
]


class AbstractsSource:
    """BEIR documents (SciFact's abstracts) as articles, one per document, for build_index."""

    kind = "beir"

    def __init__(self, folder: Path, limit: int | None = None) -> None:
        self.location = str(folder)
        self.docs = load_beir(folder).docs[:limit]

    def read(self):
        for doc_id, title, text in self.docs:
            try:
                yield page_article(id=doc_id, path=f"{self.location}#{doc_id}", title=title or doc_id, text=text,
                                   headings=None, raw=f"{title}\n{text}".encode(), source="beir")
            except ArticleError as exc:
                yield Skipped(f"{self.location}#{doc_id}", str(exc))


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class Clock:
    """Wall and CPU (all threads of this process) seconds since start, and per named phase."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, float, float]] = []
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    def mark(self, name: str) -> None:
        self.phases.append((name, time.perf_counter(), time.process_time()))

    def elapsed(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall0, time.process_time() - self.cpu0

    def table(self) -> list[tuple[str, float, float]]:
        """(phase, wall s, CPU s) for each phase marked, each up to the next mark."""
        return [(n, e[1] - w, e[2] - c) for (n, w, c), e in zip(self.phases, self.phases[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--scifact", type=Path, help="a BEIR folder (../shared/benchmarks/scifact): ingest its abstracts")
    parser.add_argument("--docs", type=int, help="with --scifact: only the first N abstracts")
    parser.add_argument("--queries", type=int, default=200, help="timed searches per mode (0: none)")
    args = parser.parse_args()

    embedder = Settings().embedder()  # the configured backend (ROLESEARCH_BACKEND)
    embedder.encode(["warm up"])
    sources = [AbstractsSource(args.scifact, args.docs)] if args.scifact else None
    print(f"backend {embedder.spec.backend}, batch {embedder.batch_size}, {os.cpu_count()} CPUs, "
          f"load average before {os.getloadavg()[0]:.2f}; source: {args.scifact or args.corpus}")
    with tempfile.TemporaryDirectory() as tmp:
        clock = Clock()
        summary = build_index(args.corpus, Path(tmp), embedder, sources=sources, on_phase=clock.mark)
        ingest_s, ingest_cpu = clock.elapsed()
        clock.mark("end")
        index = SearchIndex.load(Path(tmp), embedder.name)
        # Everything the build embedded: each passage (with its title and section) and each distinct sentence.
        texts = [embed_text(p.title, p.section, p.text) for p in index.passages]
        texts += list(dict(sentence_units(index.passages)).values())

        t0, c0 = time.perf_counter(), time.process_time()
        embedder.encode(texts)  # the same backend's encode of the same texts, nothing else
        plain_s, plain_cpu = time.perf_counter() - t0, time.process_time() - c0

        n = summary.passages["total"]
        print(f"passages: {n} from {len(index.articles)} articles; texts embedded (passages + sentences): {len(texts)}")
        print(f"full ingest:                 {ingest_s:7.2f} s  {n / ingest_s:7.1f} passages/s  "
              f"{len(texts) / ingest_s:7.1f} texts/s   CPU {ingest_cpu:7.2f} s")
        print(f"bare encode ({embedder.spec.backend:9s}):   {plain_s:7.2f} s  {n / plain_s:7.1f} passages/s  "
              f"{len(texts) / plain_s:7.1f} texts/s   CPU {plain_cpu:7.2f} s  (encode only, same texts)")
        print(f"ingest throughput / bare encode throughput: {plain_s / ingest_s:5.2f}x wall, "
              f"{plain_cpu / ingest_cpu:5.2f}x CPU  (target >= 0.9)")
        print("build phases (wall s / CPU s):  " + "  ".join(
            f"{name} {wall:.2f} / {cpu:.2f}" for name, wall, cpu in clock.table()))
        print(f"load average after {os.getloadavg()[0]:.2f}")

        searcher = Searcher(index, embedder)
        for mode in ("dense", "lexical", "hybrid") if args.queries else ():
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
