"""Tune the fusion knobs on SciFact's train split (never the test split) and print nDCG@10 for each setting.

    .venv/bin/python bench/tune_scifact.py [--beir ../shared/benchmarks/scifact] [--split train]

Dense and lexical candidates are computed once per query; each setting then only re-fuses them.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ingest.embedding import Embedder
from search.beir import DEPTH, build_beir_index, default_cache_dir, load_beir
from search.fusion import ranked
from search.metrics import evaluate_rankings
from search.searcher import SearchConfig, Searcher, fuse


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--beir", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/benchmarks/scifact")
    ap.add_argument("--split", default="train")
    args = ap.parse_args()
    if args.split == "test":
        raise SystemExit("tune on train; the test split is for reporting")
    data = load_beir(args.beir, args.split)
    embedder = Embedder()
    with tempfile.TemporaryDirectory() as tmp:
        searcher = Searcher(build_beir_index(data, Path(tmp) / "index", embedder, default_cache_dir()), embedder)
        ids = [p.id for p in searcher.index.passages]
        depth = 4 * DEPTH
        cands = {qid: (searcher.dense_scores(q, depth), searcher.lexical_scores(q, depth)) for qid, q in data.queries.items()}

    def score(config: SearchConfig) -> float:
        rankings = {qid: [ids[i] for i in ranked(fuse(d, l, "hybrid", config))[:DEPTH]] for qid, (d, l) in cands.items()}
        return evaluate_rankings(rankings, data.qrels)["ndcg@10"]

    results = []
    for k in (1, 2, 5, 10, 20, 40, 60, 100):
        for w in (0.5, 0.75, 1.0, 1.25, 1.5, 2.0):
            results.append((score(SearchConfig(fusion="rrf", rrf_k=k, rrf_dense_weight=w)), f"rrf k={k} dense_weight={w}"))
    for alpha in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        results.append((score(SearchConfig(fusion="convex", alpha=alpha)), f"convex alpha={alpha}"))
    for s, name in sorted(results, reverse=True):
        print(f"{s:.4f}  {name}")


if __name__ == "__main__":
    main()
