"""Ablation of the ranking knobs: each on/off and each value, on both question halves and SciFact test.

Every configuration runs the real `Searcher` (and `search.baseline`) over one loaded index; each
question is encoded once and its vector reused by every configuration, so the whole grid takes
minutes. Knobs are chosen on the tuning half; the held-out half and SciFact test only check
that a kept knob does not lose (notes/ranking.md, "Out of sample").

    .venv/bin/python bench/ablation.py --index /tmp/idx [--scifact ../shared/benchmarks/scifact] [--only alpha,rrf]

SciFact reuses the corpus embeddings `rolesearch eval --beir` cached (~/.cache/rolesearch/embeddings).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rolesearch.cli.beir import beir_index  # noqa: E402
from rolesearch.ingest.beir import default_cache_dir, load_beir  # noqa: E402
from rolesearch.ingest.chunking import embed_text  # noqa: E402
from rolesearch.search.baseline import BaselineSearcher  # noqa: E402
from rolesearch.search.beir import rank_queries  # noqa: E402
from rolesearch.search.evaluation import load_questions, question_metrics, question_ranks  # noqa: E402
from rolesearch.search.index import SearchIndex  # noqa: E402
from rolesearch.search.metrics import evaluate_rankings  # noqa: E402
from rolesearch.search.searcher import Searcher  # noqa: E402
from rolesearch.settings import Settings  # noqa: E402
from rolesearch.store.lexical import LEXICAL_PARAMS, build_lexical_fields  # noqa: E402

# name -> overrides of the served SearchConfig ("stopwords" rebuilds the lexical index in memory).
GRID: dict[str, dict] = {
    "served": {},
    **{f"alpha {a}": {"alpha": a} for a in (0.3, 0.4, 0.5, 0.7, 0.8)},
    **{f"rrf k={k}": {"fusion": "rrf", "rrf_k": k} for k in (1, 10, 60)},
    **{f"norm {n}": {"normalization": n} for n in ("max", "zscore", "rank")},
    **{f"norm rank alpha {a}": {"normalization": "rank", "alpha": a} for a in (0.4, 0.5, 0.7)},
    **{f"norm zscore alpha {a}": {"normalization": "zscore", "alpha": a} for a in (0.4, 0.5, 0.7)},
    "top1 guard": {"top1_guard": True},
    "no sentence vectors": {"sentence_vectors": False},
    **{f"sentence weight {w}": {"sentence_weight": w} for w in (0.3, 0.5, 0.8, 1.0)},
    **{f"section cap {c}": {"max_per_section": c} for c in (0, 1, 3)},
    **{f"role prior {b}": {"role_prior": b} for b in (0.0, 0.05, 0.2, 0.3)},
    **{f"fields {s}/{t}": {"section_weight": s, "title_weight": t}
       for s, t in ((0.0, 0.0), (0.1, 0.1), (0.25, 0.0), (0.5, 0.25), (0.5, 0.5))},
    "stop list en": {"stopwords": "en"},
}


class MemoEmbedder:
    """The model, with each query encoded once for all configurations."""

    def __init__(self, embedder):
        self._embedder = embedder
        self._memo: dict[str, object] = {}

    def encode_query(self, text: str):
        if text not in self._memo:
            self._memo[text] = self._embedder.encode_query(text)
        return self._memo[text]

    def __getattr__(self, name):
        return getattr(self._embedder, name)


@contextmanager
def stopwords(index: SearchIndex, words: str | None, fields: tuple[str, ...]):
    """The index with its lexical fields rebuilt under another stop list (queries analysed the same way)."""
    if words is None or words == LEXICAL_PARAMS["stopwords"]:
        yield index
        return
    saved = LEXICAL_PARAMS["stopwords"]
    LEXICAL_PARAMS["stopwords"] = words
    try:
        texts = {
            "text": [p.text for p in index.passages] if "section" in fields
            else [embed_text(p.title, p.section, p.text) for p in index.passages],
            "section": [" > ".join(p.section) for p in index.passages],
            "title": [p.title for p in index.passages],
        }
        yield replace(index, lexical=build_lexical_fields({f: texts[f] for f in fields}))
    finally:
        LEXICAL_PARAMS["stopwords"] = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=None)
    ap.add_argument("--questions", type=Path, default=Path("tests/data/questions.jsonl"))
    ap.add_argument("--scifact", type=Path, default=None, help="BEIR SciFact folder: also nDCG@10 on its test split")
    ap.add_argument("--only", default="", help="comma-separated substrings of the configuration names to run")
    args = ap.parse_args()
    # The served searcher's index, model, roles and knobs; each configuration below replaces only the knobs.
    base = Settings().open_searcher(index_dir=args.index)
    index, roles, served = base.index, base.roles, base.config
    embedder = MemoEmbedder(base.embedder)
    questions = load_questions(args.questions)
    halves = {h: [q for q in questions if q.split == h] for h in ("tuning", "heldout")}
    beir = None
    if args.scifact:
        data = load_beir(args.scifact, "test")
        tmp = tempfile.TemporaryDirectory(prefix="ablation-beir-")
        beir = (data, beir_index(data, Path(tmp.name) / "index", embedder, default_cache_dir()))
    wanted = [w for w in args.only.split(",") if w]
    names = [n for n in GRID if not wanted or n == "served" or any(w in n for w in wanted)]

    def rankers(config, words):
        """A context yielding a ranker factory over an index, under the stop list asked for."""
        @contextmanager
        def over(idx):
            fields = tuple(idx.lexical.fields) if idx.lexical is not None else ("text",)
            with stopwords(idx, words, fields) as used:
                yield BaselineSearcher(used, embedder, served.candidates) if config is None else \
                    Searcher(used, embedder, config, roles)
        return over

    def row(name: str, over) -> None:
        cells = []
        with over(index) as ranker:
            ranks = question_ranks(ranker, questions, "hybrid")
        for qs in halves.values():
            m = question_metrics([ranks[q.id] for q in qs])
            cells.append(f"{m['hit@1']:.3f} / {m['hit@3']:.3f} / {m['mrr@10']:.3f}")
        if beir is not None:
            data, bindex = beir
            with over(bindex) as ranker:
                ndcg = evaluate_rankings(rank_queries(ranker, data.queries, "hybrid"), data.qrels)["ndcg@10"]
            cells.append(f"{ndcg:.4f}")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)

    print("| configuration | tuning hit@1 / hit@3 / MRR@10 | held-out hit@1 / hit@3 / MRR@10 |"
          + (" SciFact test nDCG@10 |" if beir else ""))
    print("| --- | --- | --- |" + (" --- |" if beir else ""))
    row("baseline", rankers(None, None))
    for name in names:
        overrides = dict(GRID[name])
        words = overrides.pop("stopwords", None)
        row(name, rankers(replace(served, **overrides), words))

if __name__ == "__main__":
    main()
