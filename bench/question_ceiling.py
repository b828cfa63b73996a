"""How far any choice among the rankers could go on a question set: the per-question oracle bound.

For each question, the rank of the first relevant passage by dense (passage vectors only),
dense (the best of passage and sentence vectors), dense as configured (a blend of the two),
lexical and hybrid, as the service ranks them (top 10, section diversity). The oracle takes, per question, the best of those ranks:
no rule that picks or weights one ranker per question can beat it, so when the oracle falls
short of a target, better fusion alone cannot reach it (notes/ranking.md, "The ceiling").

    .venv/bin/python bench/question_ceiling.py --index index [--questions tests/data/questions.jsonl]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rolesearch.search.evaluation import first_relevant_rank, load_questions, question_metrics  # noqa: E402
from rolesearch.search.searcher import Searcher  # noqa: E402
from rolesearch.settings import Settings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=None)
    ap.add_argument("--questions", type=Path, default=Path("tests/data/questions.jsonl"))
    args = ap.parse_args()
    s = Settings()
    default = s.open_searcher(index_dir=args.index)
    index, embedder, roles = default.index, default.embedder, default.roles
    passage_only = Searcher(index, embedder, dataclasses.replace(default.config, sentence_vectors=False), roles)
    best_sentence = Searcher(index, embedder, dataclasses.replace(default.config, sentence_weight=1.0), roles)
    rankers = {
        "dense-passage": lambda q: passage_only.search(q, k=10, mode="dense", highlights=False),
        "dense-max": lambda q: best_sentence.search(q, k=10, mode="dense", highlights=False),
        "dense": lambda q: default.search(q, k=10, mode="dense", highlights=False),
        "lexical": lambda q: default.search(q, k=10, mode="lexical", highlights=False),
        "hybrid": lambda q: default.search(q, k=10, mode="hybrid", highlights=False),
    }
    questions = load_questions(args.questions)
    ranks: dict[str, list[int | None]] = {name: [] for name in rankers}
    for q in questions:
        for name, run in rankers.items():
            hits = run(q.question).hits
            ranks[name].append(first_relevant_rank([(h.passage.article_id, h.passage.text) for h in hits], q))
    ranks["oracle"] = [min((r[i] for r in ranks.values() if r[i] is not None), default=None) for i in range(len(questions))]
    for name, rs in ranks.items():
        m = question_metrics(rs)
        print(f"{name:14s} hit@1 {m['hit@1']:.3f}  hit@3 {m['hit@3']:.3f}  MRR@10 {m['mrr@10']:.3f}  ({len(rs)})")
    print("beyond rank 3 in every ranking (rank per ranker, '-' = not in the top 10):")
    for i, q in enumerate(questions):
        if ranks["oracle"][i] is None or ranks["oracle"][i] > 3:
            row = " ".join(f"{name}:{ranks[name][i] or '-'}" for name in rankers)
            print(f"  {q.id} {row}  {q.question}")


if __name__ == "__main__":
    main()
