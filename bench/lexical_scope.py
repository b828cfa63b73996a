"""The BM25 side channel: the lexical work of a query for a term found only in restricted passages against one
found nowhere, for a reader who may not read those passages.

    nice python bench/lexical_scope.py [--passages 50000] [--restricted 500] [--rounds 2000]

A synthetic corpus (words drawn from a 5,000-word vocabulary, Zipf-like) with `restricted` passages that
alone hold the word "falconsecret". The reader may read the others. Per query it times LexicalIndex.top
(three fields, as the searcher weighs them) and prints the median and 90th percentile microseconds, in the
same run, interleaved, for:

  before   the whole index's statistics with the reader's mask (how search ran before issue 21)
  scoped   the reader's own index (search.index.SearchIndex.lexical_for: statistics over readable rows)

and the ratio restricted-term / nowhere-term for each. A ratio far from 1 means the time tells the two apart.
The figures go in docs/permissions.md ("Lexical side channels").
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rolesearch.store.lexical import build_lexical_fields, scoped_lexical

WEIGHTS = {"section": 0.25, "title": 0.25}


def corpus(n: int, restricted: int, seed: int = 7) -> tuple[dict[str, list[str]], np.ndarray]:
    """Field texts of n passages and the mask of the readable ones (the last `restricted` are not)."""
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}x" for i in range(5000)]
    p = 1 / np.arange(1, len(vocab) + 1)
    p /= p.sum()
    texts, sections, titles = [], [], []
    for i in range(n):
        words = [vocab[j] for j in rng.choice(len(vocab), size=60, p=p)]
        if i >= n - restricted:
            words[rng.integers(0, len(words))] = "falconsecret"
        texts.append(" ".join(words))
        sections.append(" ".join(vocab[j] for j in rng.choice(len(vocab), size=3, p=p)))
        titles.append(f"article {i // 8}")
    readable = np.ones(n, dtype=bool)
    readable[n - restricted:] = False
    return {"text": texts, "section": sections, "title": titles}, readable


def timed(fn, query: str) -> float:
    t0 = time.perf_counter()
    fn(query)
    return (time.perf_counter() - t0) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--passages", type=int, default=50_000)
    ap.add_argument("--restricted", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=2000)
    args = ap.parse_args()
    fields, readable = corpus(args.passages, args.restricted)
    full = build_lexical_fields(fields)
    t0 = time.perf_counter()
    scoped = scoped_lexical(full.terms, np.flatnonzero(readable), readable)
    print(f"the reader's scoped index built in {time.perf_counter() - t0:.2f} s (once per version and group set)")
    depth = 100
    paths = {"before": lambda q: full.top(q, depth, WEIGHTS, readable),
             "scoped": lambda q: scoped.top(q, depth, WEIGHTS, readable)}
    pairs = {"alone": ("falconsecret", "quokkazz"), "with a common word": ("w3x falconsecret", "w3x quokkazz")}
    for label, (restricted, nowhere) in pairs.items():
        run(paths, {"restricted-only term": restricted, "term nowhere": nowhere}, args, label)


def run(paths: dict, queries: dict, args, label: str) -> None:
    for name, fn in paths.items():  # what each returns is the same either way: the restricted rows are masked
        assert fn(queries["restricted-only term"]).keys() == fn(queries["term nowhere"]).keys(), name
    for fn in paths.values():  # warm the buffer pools
        for q in queries.values():
            fn(q)
    times = {(p, q): [] for p in paths for q in queries}
    for _ in range(args.rounds):
        for p, fn in paths.items():
            for q, text in queries.items():
                times[p, q].append(timed(fn, text))
    print(f"\n{label}: {args.passages:,} passages, {args.restricted:,} restricted (hold the term), {args.rounds} "
          f"rounds, microseconds per LexicalIndex.top; queries {list(queries.values())}")
    print(f"{'path':8s} {'query':22s} {'median':>8s} {'p90':>8s}")
    for (p, q), ts in times.items():
        print(f"{p:8s} {q:22s} {statistics.median(ts):8.1f} {np.percentile(ts, 90):8.1f}")
    for p in paths:
        a, b = (statistics.median(times[p, q]) for q in queries)
        print(f"{p}: restricted-only / nowhere = {a / b:.2f}")


if __name__ == "__main__":
    main()
