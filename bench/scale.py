"""The index at scale: generated articles, a full build, load, query latency and ANN recall, one incremental add.

    python bench/scale.py --passages 100000 [--keep DIR] [--index-type auto|flat|hnsw|ivf]
    python bench/scale.py --serve-only INDEX_DIR     # only the serving figures, on an index already built
    python bench/scale.py --add-to DIR               # only one more article into a kept run (--keep DIR)

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

from rolesearch.store.ann import AnnParams  # noqa: E402
from rolesearch.store.sentences import passage_sentences  # noqa: E402

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


def serve_child(index_dir: Path, queries: list[str], backend: str, nprobes: tuple[int, ...] = ()) -> dict:
    """In a fresh process: load time, resident memory after load, per-mode latency, recall against exact.

    nprobes: more IVF nprobe values to measure (latency and recall each) beside the version's own.
    """
    import faiss
    from threadpoolctl import threadpool_limits

    from rolesearch.encoder.spec import EncoderSpec
    from rolesearch.search.index import SearchIndex
    from rolesearch.search.searcher import Searcher

    faiss.omp_set_num_threads(1)  # as the server runs it (api/app.py): one thread per query, FAISS and BLAS
    threadpool_limits(1, user_api="blas")
    embedder = EncoderSpec(backend=backend, threads=1).load()
    rss_model = _rss_mb()
    t = time.perf_counter()
    index = SearchIndex.load(index_dir)
    load_s = time.perf_counter() - t
    searcher = Searcher(index, embedder)
    searcher.search(queries[0], k=10)
    rss = _rss_mb()
    out = {"load_s": round(load_s, 2), "rss_mb_after_load": round(rss), "rss_mb_model_only": round(rss_model),
           "rss_after_load_anon_file_mb": _rss_parts_mb(), "kinds": list(index.kinds),
           "ann_params": {"ivf_nprobe": index.ann_params.ivf_nprobe, "hnsw_ef_search": index.ann_params.hnsw_ef_search}}
    out |= latencies(searcher, queries, ("dense", "lexical", "hybrid"))
    out["rss_mb_after_queries"] = round(_rss_mb())
    out["rss_after_queries_anon_file_mb"] = _rss_parts_mb()
    if not index.exact:
        truth = exact_truth(searcher, queries)
        out |= recall_against_exact(searcher, queries, truth)
        for nprobe in nprobes:
            other = Searcher(replace(index, ann_params=replace(index.ann_params, ivf_nprobe=nprobe)), embedder)
            out[f"nprobe_{nprobe}"] = latencies(other, queries, ("dense", "hybrid")) | \
                recall_against_exact(other, queries, truth)
    return out


def latencies(searcher, queries: list[str], modes: tuple[str, ...]) -> dict:
    """p50 and p99 in ms of search(k=10, highlights on) per mode over the queries (query encoding included), and
    the process's CPU time per query."""
    out = {}
    for mode in modes:
        times = []
        cpu = time.process_time()
        for q in queries:
            t = time.perf_counter()
            searcher.search(q, k=10, mode=mode, highlights=True)
            times.append((time.perf_counter() - t) * 1000)
        out[f"{mode}_p50_ms"], out[f"{mode}_p99_ms"] = (round(float(np.percentile(times, p)), 1) for p in (50, 99))
        # CPU time says what the wall clock cannot on a shared machine: the work a query costs.
        out[f"{mode}_cpu_ms_per_query"] = round((time.process_time() - cpu) * 1000 / len(queries), 2)
    return out


def add_article(index: Path, corpus: Path, embedder, params: AnnParams, chunk_workers: int = 1) -> dict:
    """Build index again after an article was added to corpus: time, CPU, phases and steps of the add."""
    from rolesearch.ingest.pipeline import build_index

    phases: dict[str, float] = {}
    clock = {"name": None, "t": time.perf_counter()}

    def on_phase(name: str) -> None:
        now = time.perf_counter()
        if clock["name"]:
            phases[clock["name"]] = phases.get(clock["name"], 0) + now - clock["t"]
        clock.update(name=name, t=now)

    steps = LoggedSteps("add")
    t, cpu = time.perf_counter(), time.process_time()
    inc = build_index(corpus, index, embedder, on_phase=on_phase, ann_params=params, cache_max_entries=0,
                      stages=steps, chunk_workers=chunk_workers)
    on_phase("done")
    add_s, add_cpu = time.perf_counter() - t, time.process_time() - cpu
    manifest = json.loads((index / "versions" / inc.version / "manifest.json").read_text())
    return {"add_one_article_s": round(add_s, 2), "add_one_article_cpu_s": round(add_cpu, 2),
            "add_one_article_stages_s": {k: round(v, 1) for k, v in phases.items()},
            "add_one_article_steps_s": {k: round(v, 2) for k, v in steps.items()},
            "add_one_article_articles": inc.articles, "add_one_article_passages": inc.passages,
            "incremental_trained_reused": ((manifest.get("ann") or {}).get("sentences") or {}).get("trained_reused"),
            "incremental_assigned": {k: (manifest.get("ann") or {}).get(k, {}).get("assigned")
                                     for k in ("passages", "sentences")}}


class LoggedSteps(dict):
    """build_index's per-step seconds, each also printed to stderr as it ends (a long run's log shows how far it got)."""

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        print(f"[scale {time.strftime('%H:%M:%S')}] {self.what}: {key} done ({value:.1f} s)", file=sys.stderr, flush=True)


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


def exact_truth(searcher, queries: list[str]) -> list[dict[int, float]]:
    """Exact dense scores of each query's top passages (exact_dense), checked against Searcher's exact path."""
    from rolesearch.search.searcher import Searcher

    index = searcher.index
    exact_searcher = Searcher(replace(index, kinds=("flat", "flat")), searcher.embedder, searcher.config, searcher.roles)
    vectors = np.concatenate([searcher.embedder.encode_query(q) for q in queries])
    depth = max(searcher.config.candidates, 40)  # what search(k=10) asks of the dense ranker
    truth = exact_dense(index, vectors, depth, searcher.config.sentence_weight if searcher.config.sentence_vectors
                        and index.sentences is not None else 0.0)
    for q, known in list(zip(queries, truth))[:3]:  # the batch agrees with the searcher's exact path
        direct = exact_searcher.dense_scores(q, 10)
        if len(set(direct) & set(sorted(known, key=known.get, reverse=True)[:10])) < 9:  # float ties aside
            raise AssertionError(f"batched exact scoring disagrees with Searcher's exact path on {q!r}")
    return truth


def recall_against_exact(searcher, queries: list[str], truth: list[dict[int, float]]) -> dict:
    """Dense recall@10 and hybrid top-10 overlap of the served searcher against exact dense scores (truth)."""
    from rolesearch.search.searcher import Searcher

    index = searcher.index

    class KnownDense(Searcher):
        def _dense(self, query, depth, allow=None):
            scores = dict(sorted(by_query[query].items(), key=lambda kv: -kv[1])[:depth])
            return scores, max(scores.values()), 0.0

    by_query = dict(zip(queries, truth))
    exact = KnownDense(index, searcher.embedder, searcher.config, searcher.roles)
    recall, overlap = [], []
    for q, known in zip(queries, truth):
        served = set(searcher.dense_scores(q, 10))
        recall.append(len(served & set(sorted(known, key=known.get, reverse=True)[:10])) / 10)
        a = {h.passage.id for h in searcher.search(q, 10, "hybrid", highlights=False).hits}
        b = {h.passage.id for h in exact.search(q, 10, "hybrid", highlights=False).hits}
        overlap.append(len(a & b) / max(len(b), 1))
    return {"dense_recall@10_vs_exact": round(float(np.mean(recall)), 4),
            "hybrid_top10_overlap_vs_exact": round(float(np.mean(overlap)), 4)}


def exact_dense(index, vectors: np.ndarray, depth: int, weight: float, step: int = 50_000) -> list[dict[int, float]]:
    """Exact blended dense scores (the searcher's flat path) of every passage for many queries: their top depth each.

    Passages are scored step rows at a time against all queries, with each passage's best sentence
    (sentence rows are stored passage by passage), so the vectors are read once for all queries.
    """
    n, q = len(index.passages), len(vectors)
    top_ids, top_scores = np.zeros((q, 0), dtype=np.int64), np.zeros((q, 0), dtype=np.float32)
    starts = index.sentence_start
    for a in range(0, n, step):
        b = min(n, a + step)
        own = np.asarray(index.embeddings[a:b]) @ vectors.T  # (rows, queries)
        scores = own
        if weight and starts is not None:
            sent = np.asarray(index.sentences[starts[a]:starts[b]]) @ vectors.T
            has = np.diff(starts[a:b + 1]) > 0
            best = own.copy()
            best[has] = np.maximum(own[has], np.maximum.reduceat(sent, (starts[a:b] - starts[a])[has], axis=0))
            scores = (1.0 - weight) * own + weight * best
        ids = np.concatenate([top_ids, np.broadcast_to(np.arange(a, b), (q, b - a))], axis=1)
        vals = np.concatenate([top_scores, scores.T], axis=1)
        keep = np.argpartition(-vals, min(depth, vals.shape[1]) - 1, axis=1)[:, :depth]
        top_ids, top_scores = np.take_along_axis(ids, keep, 1), np.take_along_axis(vals, keep, 1)
    return [{int(i): float(s) for i, s in zip(ids, vals)} for ids, vals in zip(top_ids, top_scores)]


def _rss_parts_mb() -> dict:
    """Resident memory split: anonymous (heap, arrays) and file-backed (mapped index pages, reclaimable)."""
    with open("/proc/self/status") as f:
        parts = dict(line.split(":", 1) for line in f if line.startswith(("RssAnon", "RssFile", "RssShmem")))
    return {k: round(int(v.split()[0]) / 1024) for k, v in parts.items()}


def queries_from(pool: list[str], count: int) -> list[str]:
    """The benchmark's queries: the first 8 words of count source sentences (the same ones for the same pool)."""
    rng = random.Random(1)
    return [" ".join(s.split()[:8]) for s in rng.sample(pool, count)]


def nprobes(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def serve_in_child(index_dir: Path, queries: list[str], backend: str, nprobe: str = "") -> dict:
    """serve_child in a fresh Python process (nothing of the build in its memory), its figures back as a dict."""
    child = subprocess.run([sys.executable, __file__, "--child", str(index_dir), "--backend", backend,
                            "--nprobe", nprobe],
                           input=json.dumps(queries), capture_output=True, text=True)
    if child.returncode:
        raise SystemExit(f"the serving process failed:\n{child.stderr[-4000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


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
    ap.add_argument("--add-to", type=Path, metavar="DIR", help="only add one article to a kept run's index (--keep DIR)")
    ap.add_argument("--serve-only", type=Path, metavar="INDEX_DIR",
                    help="skip generating and building: load INDEX_DIR's published version in a fresh process and "
                         "print load, RSS, latency and recall (e.g. a --keep DIR/index, or bench/replicate_version.py's)")
    ap.add_argument("--nprobe", default="", help="comma-separated IVF nprobe values to measure beside the version's own")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    from rolesearch.encoder.base import DEFAULT_BACKEND
    from rolesearch.encoder.spec import EncoderSpec

    backend = args.backend or DEFAULT_BACKEND
    if args.child:
        queries = json.loads(sys.stdin.read())
        print(json.dumps(serve_child(args.child, queries, backend, nprobes(args.nprobe))))
        return
    if args.add_to:
        # One more article into a kept run's index (--keep DIR of an earlier run), as that run's add measures it.
        real = EncoderSpec(backend=backend).load()
        pool = source_sentences(args.pool)
        embedder = PooledEmbedder(real, pool, real.encode(pool))
        from rolesearch.ingest.articles import ArticleError, read_article

        for seed in range(1000, 2000):  # the first new generated article that is not skipped (a title may break YAML)
            path = args.add_to / "corpus" / f"added{seed}-0000000.md"
            if path.exists():
                continue
            write_articles(args.add_to / "corpus", pool, 1, seed=seed, prefix=f"added{seed}")
            try:
                read_article(path, args.add_to / "corpus")
                break
            except ArticleError:
                path.unlink()
        memory = MemorySampler()
        add = add_article(args.add_to / "index", args.add_to / "corpus", embedder,
                          AnnParams(kind=args.index_type, exact_below=args.exact_below), args.chunk_workers)
        memory.stop()
        print(json.dumps(add | {"build_peak_rss_anon_mb": round(memory.peak["RssAnon"]),
                                "build_peak_rss_file_mb": round(memory.peak["RssFile"]),
                                "load_average": os.getloadavg()}, indent=2))
        return
    if args.serve_only:
        from rolesearch.store.manifest import read_manifest

        manifest = read_manifest(args.serve_only)
        served = serve_in_child(args.serve_only, queries_from(source_sentences(args.pool), args.queries), backend,
                                args.nprobe)
        print(json.dumps({"index": str(args.serve_only), "version": manifest.version, "passages": manifest.passages,
                          "sentences": manifest.sentences, "articles": len(manifest.articles), "ann": manifest.ann,
                          "synthetic": any("~" in a for a in manifest.articles), "served": served,
                          "load_average": os.getloadavg()}, indent=2))
        return
    from rolesearch.ingest.pipeline import build_index

    work = args.keep or Path(tempfile.mkdtemp(prefix="rolesearch-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus, index = work / "corpus", work / "index"
    try:
        t = time.perf_counter()
        real = EncoderSpec(backend=backend).load()
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
        steps = LoggedSteps("full build")
        full = build_index(corpus, index, embedder, on_phase=on_phase, ann_params=params, cache_max_entries=0,
                           stages=steps, chunk_workers=args.chunk_workers)
        on_phase("done")
        build_s, build_cpu = time.perf_counter() - t, time.process_time() - cpu
        version = index / "versions" / full.version
        manifest = json.loads((version / "manifest.json").read_text())
        embed_s = phases.get("embedding", 0.0)
        # One more article, built incrementally (its vectors from the same cheap source).
        write_articles(corpus, pool, 1, seed=99, prefix="added")
        add = add_article(index, corpus, embedder, params, args.chunk_workers)
        memory.stop()
        served = None if args.build_only else serve_in_child(index, queries_from(pool, args.queries), backend,
                                                              args.nprobe)
        report = {
            "passages": full.passages["total"], "sentences": full.sentences["total"], "articles": articles,
            "vectors": f"CHEAP SOURCE: {len(pool)} real sentence vectors ({backend}) reused with noise {NOISE}",
            "index": manifest.get("ann"),
            "stages_s": stages | {f"build_{k}_s": round(v, 1) for k, v in phases.items()},
            "build_steps_s": {k: round(v, 2) for k, v in steps.items()},
            "full_build_s": round(build_s, 1), "full_build_excl_embedding_s": round(build_s - embed_s, 1),
            # CPU seconds of this process (all its threads): less sensitive to other jobs on the machine than wall time
            "full_build_cpu_s": round(build_cpu, 1),
            **add,
            "add_one_article_vs_full_excl_embedding": round(add["add_one_article_s"] / max(build_s - embed_s, 1e-9), 4),
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
