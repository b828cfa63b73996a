"""hit@1, hit@3 and MRR@10 on the tuning and held-out halves of a question set and on all of it.

The halves are search.evaluation.split_of's (sha256 of the id). Ranking knobs are chosen on the
tuning half only; the held-out half is the check (notes/ranking.md, "Out of sample"). Before
issue 14 the halves were the odd and even id numbers.

    .venv/bin/python bench/question_halves.py --index /tmp/rank-idx [--questions tests/data/questions.jsonl] [--mode hybrid]

Settings come from ROLESEARCH_* variables as everywhere else (e.g. ROLESEARCH_ROLE_PRIOR=0 to ablate).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rolesearch.search.evaluation import first_relevant_rank, load_questions, question_metrics  # noqa: E402
from rolesearch.settings import Settings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=None)
    ap.add_argument("--questions", type=Path, default=Path("tests/data/questions.jsonl"))
    ap.add_argument("--mode", default="hybrid")
    args = ap.parse_args()
    s = Settings()
    searcher = s.open_searcher(index_dir=args.index)
    ranks = {}
    questions = load_questions(args.questions)
    for q in questions:
        hits = searcher.search(q.question, k=10, mode=args.mode, highlights=False).hits
        ranks[q.id] = first_relevant_rank([(h.passage.article_id, h.passage.text) for h in hits], q)
    halves = {h: [ranks[q.id] for q in questions if q.split == h] for h in ("tuning", "heldout")}
    halves["all"] = list(ranks.values())
    for name, rs in halves.items():
        m = question_metrics(rs)
        print(f"{args.mode:8s} {name:7s} hit@1 {m['hit@1']:.3f}  hit@3 {m['hit@3']:.3f}  MRR@10 {m['mrr@10']:.3f}  ({len(rs)})")
    print("misses (rank > 3): " + " ".join(f"{q}:{r}" for q, r in ranks.items() if r is None or r > 3))


if __name__ == "__main__":
    main()
