"""Ingest throughput on Ray against a local build, in one run, on the role corpus (or --corpus).

    .venv/bin/python bench/ray_ingest.py                 # local, then --ray with 1 and 2 actors
    .venv/bin/python bench/ray_ingest.py --actors 1 2 4  # other pool sizes (a local cluster gets enough CPUs)
    .venv/bin/python bench/ray_ingest.py --generated 25  # 25 variants of the role articles (bench/incremental.py)

Every build is a full one (no previous version, no cache) into a temporary folder. Printed per run: the
phases (reading+chunking, embedding, writing+publishing) in seconds, embedded texts/s (passages and their
sentences, over the embedding phase; "steady": after the first vectors arrived), and for Ray the fixed overhead: starting the local cluster, and the
embedding phase's wait for its first vectors (actors starting and loading the model) against a local build's.
The load average is printed: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def timed_build(corpus: Path, index_dir: Path, embedder) -> dict:
    """One full build with the time of each phase and of the first vectors."""
    from rolesearch.ingest.pipeline import build_index

    marks: dict[str, float] = {}
    t0 = time.perf_counter()

    def phase(name: str) -> None:
        marks[name] = time.perf_counter()

    first: list[int] = []

    def progress(done: int, total: int) -> None:
        if not first:
            marks["first_vectors"] = time.perf_counter()
            first.append(done)

    summary = build_index(corpus, index_dir, embedder, full=True, on_phase=phase, on_progress=progress)
    end = time.perf_counter()
    texts = summary.passages["embedded"] + summary.sentences["embedded"]
    embed_s = marks["writing"] - marks["embedding"]
    return {
        "passages": summary.passages["total"], "texts_embedded": texts,
        "read_chunk_s": round(marks["embedding"] - marks["reading"], 2),
        "embed_s": round(embed_s, 2),
        "first_vectors_s": round(marks.get("first_vectors", end) - marks["embedding"], 2),
        "write_publish_s": round(end - marks["writing"], 2),
        "total_s": round(end - t0, 2),
        "texts_per_s": round(texts / embed_s, 1),
        # After the first vectors: the pool's throughput once its models are loaded, what a long build sees.
        "steady_texts_per_s": round((texts - first[0]) / max(marks["writing"] - marks["first_vectors"], 1e-9), 1)
        if first and texts > first[0] else None,
        "passages_per_s": round(summary.passages["total"] / (end - t0), 1),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    ap.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--generated", type=int, default=0, help="build N generated variants of --corpus's articles")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    from rolesearch.cluster import ClusterOptions, ray_cluster
    from rolesearch.encoder.base import Encoder
    from rolesearch.encoder.ray_encoder import RayEncoder

    t = time.perf_counter()
    embedder = Encoder()
    report = {"cpus": os.cpu_count(), "loadavg_1m_before": round(os.getloadavg()[0], 2),
              "model_load_s": round(time.perf_counter() - t, 2), "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        if a.generated:
            sys.path.insert(0, str(ROOT / "bench"))
            from incremental import generate

            from rolesearch.ingest.articles import list_article_files, read_article

            sources = [read_article(p, a.corpus) for p in list_article_files(a.corpus)]
            a.corpus = Path(tmp) / "corpus"
            a.corpus.mkdir()
            generate(sources, a.corpus, a.generated, seed=4)
        report["runs"]["local"] = timed_build(a.corpus, Path(tmp) / "local", embedder)
        t = time.perf_counter()
        with ray_cluster(ClusterOptions(num_cpus=max(os.cpu_count() or 1, *a.actors))):
            report["ray_cluster_start_s"] = round(time.perf_counter() - t, 2)
            for n in a.actors:
                report["runs"][f"ray {n} actor{'s' if n > 1 else ''}"] = timed_build(
                    a.corpus, Path(tmp) / f"ray{n}", RayEncoder(embedder, n))
    local = report["runs"]["local"]
    for name, run in report["runs"].items():
        run["fixed_overhead_s"] = round(run["first_vectors_s"] - local["first_vectors_s"], 2)
    if a.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{'generated corpus' if a.generated else a.corpus}: {local['passages']} passages, {local['texts_embedded']} texts embedded per build "
          f"(passages + sentences); {report['cpus']} CPUs, load average before {report['loadavg_1m_before']}")
    print(f"local Ray cluster start {report['ray_cluster_start_s']} s (once per command)")
    print(f"{'run':14s} {'read+chunk':>10s} {'embed':>7s} {'1st vec':>7s} {'write':>6s} {'total':>7s} "
          f"{'texts/s':>8s} {'steady':>7s} {'passages/s':>10s} {'overhead':>8s} {'load':>5s}")
    for name, r in report["runs"].items():
        print(f"{name:14s} {r['read_chunk_s']:10.2f} {r['embed_s']:7.2f} {r['first_vectors_s']:7.2f} "
              f"{r['write_publish_s']:6.2f} {r['total_s']:7.2f} {r['texts_per_s']:8.1f} {r['steady_texts_per_s'] or 0:7.1f} {r['passages_per_s']:10.1f} "
              f"{r['fixed_overhead_s']:8.2f} {r['loadavg_1m']:5.1f}")


if __name__ == "__main__":
    main()
