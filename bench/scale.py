"""The index at scale: generated articles, a full build, load, query latency and ANN recall, one incremental add.

    python bench/scale.py --passages 100000 [--keep DIR] [--index-type auto|flat|hnsw|ivf]

Articles are generated from the role articles' and SciFact's sentences (headings, lists and
paragraphs recombined), so chunking, BM25 and sentence vectors see real-looking text. Embedding
a million passages takes hours on two cores, so VECTORS COME FROM A CHEAP SOURCE: every source
sentence is embedded once with the real model, and a generated sentence or passage gets the
(mean) vector of its source sentences plus small noise. Everything else runs for real: chunking,
BM25, the FAISS build, manifest, publish, load (in a fresh process, as a server would) and query
(queries are source sentences' openings, encoded by the real model).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.ann import AnnParams  # noqa: E402
from ingest.sentence_vectors import passage_sentences  # noqa: E402

# ../shared from the project root (a git worktree one level deeper looks one more level up).
SCIFACT = next((p / "shared" / "benchmarks" / "scifact" / "corpus.jsonl" for p in (ROOT.parent, ROOT.parent.parent)
                if (p / "shared" / "benchmarks" / "scifact" / "corpus.jsonl").exists()),
               ROOT.parent / "shared" / "benchmarks" / "scifact" / "corpus.jsonl")
NOISE = 0.02  # per-dimension noise added to a reused vector (cosine to its source ~0.9)


def source_sentences(limit: int, seed: int = 0) -> list[str]:
    """Sentences of the role articles and SciFact abstracts, shuffled."""
    sentences: list[str] = []
    for path in sorted((ROOT / "corpus").glob("*.*")):
        if path.name == "README.md":
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip().lstrip("-*# ").strip()
            if len(line) > 40 and not line.startswith(("---", "title:", "url:", "publisher:")):
                sentences.extend(s for s in passage_sentences(line) if len(s) > 30)
    if SCIFACT.exists():
        with open(SCIFACT, encoding="utf-8") as f:
            for line in f:
                sentences.extend(s for s in passage_sentences(json.loads(line)["text"]) if 30 < len(s) < 400)
                if len(sentences) >= limit:
                    break
    sentences = list(dict.fromkeys(sentences))
    random.Random(seed).shuffle(sentences)
    return sentences[:limit]


def write_articles(folder: Path, pool: list[str], count: int, seed: int = 0, prefix: str = "gen") -> None:
    """count Markdown articles: a title, 3-6 sections of paragraphs and bullet lists, sentences from pool."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for a in range(count):
        title = " ".join(rng.choice(pool).split()[:6]).rstrip(".,;:")
        lines = [f"---\ntitle: {title}\npublisher: Generated\nurl: https://example.org/{prefix}/{a}\n---",
                 f"# {title}", ""]
        for _ in range(rng.randint(3, 6)):
            lines += [f"## {' '.join(rng.choice(pool).split()[:4]).rstrip('.,;:')}", ""]
            for _ in range(rng.randint(1, 3)):
                if rng.random() < 0.35:
                    lines += [f"- {rng.choice(pool)}" for _ in range(rng.randint(2, 5))] + [""]
                else:
                    lines += [" ".join(rng.choice(pool) for _ in range(rng.randint(2, 5))), ""]
        (folder / f"{prefix}-{a:07d}.md").write_text("\n".join(lines), encoding="utf-8")


class PooledEmbedder:
    """The cheap vector source: known sentences' real vectors plus noise; passages average their sentences'.

    Token counting and query encoding are the real model's, so chunking and queries are real.
    """

    def __init__(self, real, pool: list[str], pool_vectors: np.ndarray):
        self.real = real
        self.name, self.dimension, self.max_tokens = real.name, real.dimension, real.max_tokens
        self.vectors = "pooled:" + real.name  # never mixed with real vectors in a cache
        self.spec = real.spec
        self.lookup = {s: i for i, s in enumerate(pool)}
        self.pool_vectors = pool_vectors
        # Noise rows picked by a hash of the text: the same text always gets the same vector.
        self.noise = np.random.default_rng(0).normal(0, NOISE, (65_536, self.dimension)).astype(np.float32)

    def count_tokens(self, text: str) -> int:
        return self.real.count_tokens(text)

    def encode_query(self, query: str) -> np.ndarray:
        return self.real.encode_query(query)

    def encode(self, texts, progress=False, on_progress=None, on_vectors=None) -> np.ndarray:
        rows: list[int] = []
        lengths = np.empty(len(texts), dtype=np.int64)
        seeds = np.empty(len(texts), dtype=np.int64)
        for i, t in enumerate(texts):
            seeds[i] = int(hashlib.md5(t.encode()).hexdigest()[:8], 16)
            found = [self.lookup[t]] if t in self.lookup else \
                [self.lookup[s] for s in passage_sentences(t) if s in self.lookup]
            rows += found or [int(seeds[i]) % len(self.pool_vectors)]  # a title or heading fragment: any stable one
            lengths[i] = len(found) or 1
        if not len(texts):
            return np.zeros((0, self.dimension), np.float32)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        v = np.add.reduceat(self.pool_vectors[rows], starts) / lengths[:, None] + self.noise[seeds % len(self.noise)]
        out = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
        if on_vectors is not None:
            on_vectors(list(range(len(texts))), out)
        if on_progress is not None:
            on_progress(len(texts), len(texts))
        return out


def disk_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def serve_child(index_dir: Path, queries: list[str], backend: str) -> dict:
    """In a fresh process: load time, resident memory after load, per-mode latency, recall against exact."""
    from ingest.embedding import EmbedderSpec
    from search.index import SearchIndex
    from search.searcher import Searcher

    import faiss

    faiss.omp_set_num_threads(1)  # as the server runs it (api/app.py): one thread per query
    embedder = EmbedderSpec(backend=backend, threads=1).load()
    rss_model = _rss_mb()
    t = time.perf_counter()
    index = SearchIndex.load(index_dir)
    load_s = time.perf_counter() - t
    searcher = Searcher(index, embedder)
    searcher.search(queries[0], k=10)
    rss = _rss_mb()
    out = {"load_s": round(load_s, 2), "rss_mb_after_load": round(rss), "rss_mb_model_only": round(rss_model),
           "kinds": list(index.kinds)}
    for mode in ("dense", "lexical", "hybrid"):
        times = []
        for q in queries:
            t = time.perf_counter()
            searcher.search(q, k=10, mode=mode, highlights=True)
            times.append((time.perf_counter() - t) * 1000)
        out[f"{mode}_p50_ms"], out[f"{mode}_p99_ms"] = (round(float(np.percentile(times, p)), 1) for p in (50, 99))
    out["rss_mb_after_queries"] = round(_rss_mb())
    if not index.exact:
        exact = Searcher(replace(index, kinds=("flat", "flat")), embedder)
        recall, overlap = [], []
        for q in queries:
            served = set(searcher.dense_scores(q, 10))
            truth = set(exact.dense_scores(q, 10))
            recall.append(len(served & truth) / max(len(truth), 1))
            a = {h.passage.hash for h in searcher.search(q, 10, "hybrid", highlights=False).hits}
            b = {h.passage.hash for h in exact.search(q, 10, "hybrid", highlights=False).hits}
            overlap.append(len(a & b) / max(len(b), 1))
        out["dense_recall@10_vs_exact"] = round(float(np.mean(recall)), 4)
        out["hybrid_top10_overlap_vs_exact"] = round(float(np.mean(overlap)), 4)
    return out


class MemorySampler:
    """Peak anonymous and file-backed resident memory of this process, sampled twice a second in a thread."""

    def __init__(self):
        self.peak = {"RssAnon": 0.0, "RssFile": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            with open("/proc/self/status") as f:
                for line in f:
                    key = line.split(":")[0]
                    if key in self.peak:
                        self.peak[key] = max(self.peak[key], int(line.split()[1]) / 1024)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, default=10_000, help="approximate passages to generate")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--pool", type=int, default=3000, help="source sentences embedded for real")
    ap.add_argument("--index-type", default="auto", choices=["auto", "flat", "hnsw", "ivf"])
    ap.add_argument("--exact-below", type=int, default=AnnParams.exact_below)
    ap.add_argument("--backend", default=None, help="query encoder backend (default: the project's default)")
    ap.add_argument("--build-only", action="store_true", help="stop after the full build and the incremental add")
    ap.add_argument("--chunk-workers", type=int, default=1, help="processes chunking the articles (build_index)")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    from ingest.embedding import DEFAULT_BACKEND, EmbedderSpec

    backend = args.backend or DEFAULT_BACKEND
    if args.child:
        queries = json.loads(sys.stdin.read())
        print(json.dumps(serve_child(args.child, queries, backend)))
        return
    from ingest.pipeline import build_index

    work = args.keep or Path(tempfile.mkdtemp(prefix="rolesearch-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus, index = work / "corpus", work / "index"
    try:
        t = time.perf_counter()
        real = EmbedderSpec(backend=backend).load()
        pool = source_sentences(args.pool)
        pool_vectors = real.encode(pool)
        stages = {"embed_source_sentences_s": round(time.perf_counter() - t, 1)}
        articles = max(1, int(args.passages / 11))  # ~11 passages an article, measured (SciFact-length paragraphs)
        t = time.perf_counter()
        if corpus.exists():
            shutil.rmtree(corpus)
        write_articles(corpus, pool, articles)
        stages["generate_articles_s"] = round(time.perf_counter() - t, 1)
        embedder = PooledEmbedder(real, pool, pool_vectors)
        params = AnnParams(kind=args.index_type, exact_below=args.exact_below)
        phases: dict[str, float] = {}
        clock = {"name": None, "t": time.perf_counter(), "into": phases}

        def on_phase(name: str) -> None:
            now = time.perf_counter()
            if clock["name"]:
                clock["into"][clock["name"]] = clock["into"].get(clock["name"], 0) + now - clock["t"]
            clock.update(name=name, t=now)

        if index.exists():
            shutil.rmtree(index)
        memory = MemorySampler()
        t, cpu = time.perf_counter(), time.process_time()
        steps: dict[str, float] = {}
        full = build_index(corpus, index, embedder, on_phase=on_phase, ann_params=params, cache_max_entries=0,
                           stages=steps, chunk_workers=args.chunk_workers)
        on_phase("done")
        build_s, build_cpu = time.perf_counter() - t, time.process_time() - cpu
        version = index / "versions" / full.version
        manifest = json.loads((version / "manifest.json").read_text())
        embed_s = phases.get("embedding", 0.0)
        # One more article, built incrementally (its vectors from the same cheap source).
        write_articles(corpus, pool, 1, seed=99, prefix="added")
        inc_phases: dict[str, float] = {}
        clock.update(name=None, into=inc_phases)
        t, cpu = time.perf_counter(), time.process_time()
        inc_steps: dict[str, float] = {}
        inc = build_index(corpus, index, embedder, on_phase=on_phase, ann_params=params, cache_max_entries=0,
                          stages=inc_steps, chunk_workers=args.chunk_workers)
        on_phase("done")
        add_s, add_cpu = time.perf_counter() - t, time.process_time() - cpu
        memory.stop()
        rng = random.Random(1)
        queries = [" ".join(s.split()[:8]) for s in rng.sample(pool, args.queries)]
        served = None
        if not args.build_only:
            child = subprocess.run([sys.executable, __file__, "--child", str(index), "--backend", backend],
                                   input=json.dumps(queries), capture_output=True, text=True, check=True)
            served = json.loads(child.stdout.strip().splitlines()[-1])
        report = {
            "passages": full.passages["total"], "sentences": full.sentences["total"], "articles": articles,
            "vectors": f"CHEAP SOURCE: {len(pool)} real sentence vectors ({backend}) reused with noise {NOISE}",
            "index": manifest.get("ann"),
            "stages_s": stages | {f"build_{k}_s": round(v, 1) for k, v in phases.items()},
            "build_steps_s": {k: round(v, 2) for k, v in steps.items()},
            "full_build_s": round(build_s, 1), "full_build_excl_embedding_s": round(build_s - embed_s, 1),
            # CPU seconds of this process (all its threads): less sensitive to other jobs on the machine than wall time
            "full_build_cpu_s": round(build_cpu, 1), "add_one_article_cpu_s": round(add_cpu, 2),
            "add_one_article_s": round(add_s, 2),
            "add_one_article_stages_s": {k: round(v, 1) for k, v in inc_phases.items()},
            "add_one_article_steps_s": {k: round(v, 2) for k, v in inc_steps.items()},
            "add_one_article_vs_full_excl_embedding": round(add_s / max(build_s - embed_s, 1e-9), 4),
            "incremental_trained_reused": (json.loads((index / "versions" / inc.version / "manifest.json").read_text())
                                           .get("ann") or {}).get("sentences", {}).get("trained_reused"),
            "build_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            # RSS split: anonymous (the process's own memory) and file-backed (mapped vector files: page cache)
            "build_peak_rss_anon_mb": round(memory.peak["RssAnon"]), "build_peak_rss_file_mb": round(memory.peak["RssFile"]),
            "disk_mb": round(disk_size(version) / 2**20, 1),
            "served": served,
            "load_average": os.getloadavg(),
        }
        print(json.dumps(report, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
