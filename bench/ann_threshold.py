"""Where exact scoring stops paying: query CPU of exact vs IVF-SQ8 search at a few row counts (AnnParams.exact_below).

    python bench/ann_threshold.py [--index /tmp/b1-100k-new/index] [--sizes 5000,10000,25000,50000,100000,250000]

Rows are the first N sentence vectors of a built version (real encoder vectors of bench/scale.py's
generated text, or of any index), queries are bench/scale.py's 200 queries encoded by the real model.
Per size it prints the CPU ms a query of: exact scoring as the searcher does it (one product over
all rows, then the top k by argpartition), FAISS's flat search, and IVF-SQ8 built as store/ann.py
builds it (nlist by ivf_lists, searched at nprobe), with the share of the exact top 10 among the IVF's
k candidates (what the searcher's exact rescoring can recover).
One thread for FAISS and BLAS, as the server runs. k = 300: what a query asks of the sentence
index (3 x the 100 candidates); the passage index is asked for 100.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rolesearch.store import ann  # noqa: E402
from rolesearch.store.ann import AnnParams  # noqa: E402


def cpu_ms(fn, queries: np.ndarray, repeat: int = 2) -> float:
    """CPU ms a query of fn(query), over the queries repeat times (the process's CPU: load-independent)."""
    t = time.process_time()
    for _ in range(repeat):
        for q in queries:
            fn(q)
    return (time.process_time() - t) * 1000 / (repeat * len(queries))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, default=Path("/tmp/b1-100k-new/index"))
    ap.add_argument("--sizes", default="5000,10000,25000,50000,100000,250000")
    ap.add_argument("--k", type=int, default=300)
    ap.add_argument("--nprobe", type=int, default=AnnParams.ivf_nprobe)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    import faiss
    from threadpoolctl import threadpool_limits

    from bench.scale import queries_from, source_sentences
    from rolesearch.encoder.base import DEFAULT_BACKEND
    from rolesearch.encoder.spec import EncoderSpec
    from rolesearch.store.versions import load_version

    faiss.omp_set_num_threads(1)
    threadpool_limits(1, user_api="blas")
    files = load_version(args.index)
    vectors = files.sentence_embeddings if files.sentence_embeddings is not None else files.embeddings
    embedder = EncoderSpec(backend=DEFAULT_BACKEND, threads=1).load()
    queries = np.concatenate([embedder.encode_query(q) for q in queries_from(source_sentences(3000), args.queries)])
    params = AnnParams(ivf_nprobe=args.nprobe)
    rows_out = []
    for size in (int(s) for s in args.sizes.split(",")):
        if size > len(vectors):
            continue
        block = np.ascontiguousarray(vectors[:size], dtype=np.float32)
        k = min(args.k, size)

        def exact(q, block=block, k=k):
            scores = block @ q
            return np.argpartition(-scores, k - 1)[:k]

        flat, _, _ = ann.build(block, "flat", params)
        t = time.perf_counter()
        ivf, _, info = ann.build(block, "ivf", params)
        build_s = time.perf_counter() - t
        # What exact rescoring can recover: the exact top 10 rows found among the IVF's k candidates.
        recall = np.mean([len(set(np.argsort(-(block @ q))[:10].tolist())
                              & set(ann.search(ivf, "ivf", params, q, k).tolist())) / 10 for q in queries])
        rows_out.append({
            "rows": size, "ivf_lists": info["lists"], "nprobe": args.nprobe, "k": k,
            "exact_numpy_cpu_ms": round(cpu_ms(exact, queries), 3),
            "faiss_flat_cpu_ms": round(cpu_ms(lambda q: ann.search(flat, "flat", params, q, k), queries), 3),
            "ivf_sq8_cpu_ms": round(cpu_ms(lambda q: ann.search(ivf, "ivf", params, q, k), queries), 3),
            "ivf_recall10_in_top_k": round(float(recall), 4), "ivf_build_s": round(build_s, 1),
        })
        print(json.dumps(rows_out[-1]), flush=True)
    print(json.dumps({"index": str(args.index), "load_average": os.getloadavg(), "rows": rows_out}))


if __name__ == "__main__":
    main()
