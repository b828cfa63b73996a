"""SciFact nDCG@10 for each sentence-row setting (issue 23's levers), vectors reused per text from the cache.

    .venv/bin/python bench/sentence_levers.py [--beir ../shared/benchmarks/scifact] [--split test]
        [--config fp32 --config int8+skip --config int8+skip+merge24 ...]

A config is the sentence rows' encoder (fp32: the passages' `onnx`, int8: `onnx-int8`), then "+skip" (no
rows for a one-sentence document) and "+mergeN" (sentences merged into units of at least N words). Passages
and queries are always fp32. `rolesearch eval --beir` caches a run's vectors by the exact list of texts, so a
setting that drops rows would encode all 45k sentences again; here each setting takes its rows' vectors from
the every-sentence run's file (same text, same vector space) and encodes only texts that run did not have
(merged units), caching them the same way. The figures equal `rolesearch eval --beir` with the same
ROLESEARCH_SENTENCE_* settings.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import rolesearch.ingest.beir as ingest_beir  # noqa: E402
from rolesearch.cli.beir import beir_index  # noqa: E402
from rolesearch.ingest.beir import cached_encode, default_cache_dir, load_beir  # noqa: E402
from rolesearch.search.beir import evaluate_index  # noqa: E402
from rolesearch.search.searcher import SearchConfig  # noqa: E402
from rolesearch.settings import Settings  # noqa: E402
from rolesearch.store.passage import Passage  # noqa: E402
from rolesearch.store.sentences import LEGACY, SentenceParams, sentence_units  # noqa: E402


def parse(config: str) -> tuple[str, SentenceParams]:
    """"int8+skip+merge24" -> ("onnx-int8", SentenceParams(skip_single=True, min_words=24))."""
    parts = config.split("+")
    backend = {"fp32": "onnx", "int8": "onnx-int8"}[parts[0]]
    merge = next((int(m.group(1)) for p in parts if (m := re.fullmatch(r"merge(\d+)", p))), 0)
    return backend, SentenceParams(skip_single="skip" in parts, min_words=merge)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beir", type=Path, default=Path("../shared/benchmarks/scifact"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--config", action="append", help="default: fp32, fp32+skip, int8, int8+skip")
    args = ap.parse_args()
    configs = args.config or ["fp32", "fp32+skip", "int8", "int8+skip"]
    data = load_beir(args.beir, args.split)
    settings = Settings(backend="onnx")
    embedder = settings.embedder()
    encoders = {"onnx": embedder}
    cache = default_cache_dir()
    docs = [Passage(id=d, article_id=d, title=t, section=(), start=0, end=len(x), text=x, tokens=0, hash="")
            for d, t, x in data.docs]
    known: dict[str, dict[str, np.ndarray]] = {}
    for config in configs:
        backend, params = parse(config)
        if backend not in encoders:
            encoders[backend] = replace(settings.embedder_spec(), backend=backend).load()
        encoder = encoders[backend]
        if backend not in known:  # the every-sentence run's vectors, from its cache file (encoded once if absent)
            texts = [s for _, s in sentence_units(docs, LEGACY)]
            known[backend] = dict(zip(texts, cached_encode(encoder, texts, cache)))
        table = known[backend]
        units = [s for _, s in sentence_units(docs, params)]
        new = sorted({u for u in units if u not in table})
        t0 = time.perf_counter()
        if new:
            table.update(zip(new, cached_encode(encoder, new, cache, progress=True)))
        encode_s = time.perf_counter() - t0

        def lookup(enc, texts, cache_dir, progress=False, table=table, encoder=encoder):
            if enc is encoder and texts and all(t in table for t in texts):
                return np.stack([table[t] for t in texts])
            return cached_encode(enc, texts, cache_dir, progress)

        ingest_beir.cached_encode = lookup  # build_beir_version looks it up at call time
        with tempfile.TemporaryDirectory() as tmp:
            index = beir_index(data, Path(tmp) / "index", embedder, cache, False, True, params, encoder)
            rows = 0 if index.sentences is None else len(index.sentences)
            results = evaluate_index(index, embedder, data.queries, data.qrels, SearchConfig())
        ingest_beir.cached_encode = cached_encode
        figures = "  ".join(f"{mode} {r['ndcg@10']:.4f}" for mode, r in results.items())
        print(f"{config:22s} sentence rows {rows:6d}  ({len(new)} new texts encoded in {encode_s:.0f} s)  nDCG@10: "
              f"{figures}", flush=True)


if __name__ == "__main__":
    main()
