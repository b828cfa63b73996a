"""Fit and check the answer abstention rule: tuning halves of the question set and of the off-topic set, held-out halves reported.

    .venv/bin/python bench/abstention.py --index index [--select]

Each question (tests/data/questions.jsonl, answerable) and off-topic question (tests/data/offtopic.jsonl)
is searched as /ask searches it, and its signals recorded (search.answers.Signals: best passage cosine,
mean cosine over the passages, dense/lexical agreement; plus, for --select, the idf-weighted share of the
query's terms the corpus has and the best lexical score). Both files are split by search.evaluation.split_of.
A logistic regression (standardised features, classes balanced) is fitted on the tuning halves only; its
weights in raw units are what AnswerConfig carries. --select first chooses the feature set and C by
leave-one-out on the tuning halves (errors, then log-loss). The held-out halves are then reported once,
beside the former rule (best cosine >= 0.22) and the rule the served AnswerConfig holds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rolesearch.search.answers import AnswerConfig, Signals, abstain  # noqa: E402
from rolesearch.search.evaluation import load_questions, split_of  # noqa: E402
from rolesearch.settings import Settings  # noqa: E402
from rolesearch.store.lexical import analyze, term_idf  # noqa: E402

SERVED = ("best", "corpus", "agree")
CANDIDATES = ("best", "corpus", "coverage", "lexical", "agree")


def features(searcher, text: str, config: AnswerConfig) -> dict:
    """The served signals of one query, and the lexical ones --select also weighs."""
    result = searcher.search(text, k=config.passages, mode="hybrid", highlights=False)
    s = Signals.of(result)
    tokens = analyze([text])[0]
    idf = term_idf(searcher.index.lexical.text, tokens)
    total = sum(idf.values()) or 1.0
    coverage = sum(idf[t] for t in set(tokens) if t in searcher.index.lexical.text.vocab_dict) / total
    lexical = max((h.lexical or 0.0 for h in result.hits), default=0.0)
    return {
        "best": s.best,
        "corpus": s.corpus,
        "agree": float(s.agree),
        "coverage": coverage,
        "lexical": lexical,
        "served_refuses": abstain(s, config) is not None,
        "old_refuses": s.best < config.min_dense,
    }


def fit(rows: list[dict], names: tuple[str, ...], c: float):
    """Logistic regression on rows (answerable = 1); (weights, bias) in raw feature units."""
    from sklearn.linear_model import LogisticRegression

    x = np.array([[r[n] for n in names] for r in rows])
    y = np.array([r["on"] for r in rows])
    mu, sd = x.mean(0), x.std(0) + 1e-12
    m = LogisticRegression(C=c, class_weight="balanced", max_iter=10_000).fit((x - mu) / sd, y)
    w = m.coef_[0] / sd
    return w, float(m.intercept_[0] - (m.coef_[0] * mu / sd).sum())


def select(rows: list[dict]) -> tuple[tuple[str, ...], float]:
    """Feature set (always with the best cosine) and C with the fewest leave-one-out errors, then the lowest log-loss."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import LeaveOneOut, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.array([r["on"] for r in rows])
    weight = np.where(y == 1, len(y) / (2 * y.sum()), len(y) / (2 * (1 - y).sum()))
    results = []
    for c in (1.0, 10.0, 100.0):
        for k in range(1, len(CANDIDATES) + 1):
            for names in itertools.combinations(CANDIDATES, k):
                if "best" not in names:
                    continue
                x = np.array([[r[n] for n in names] for r in rows])
                model = make_pipeline(
                    StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=10_000)
                )
                p = cross_val_predict(model, x, y, cv=LeaveOneOut(), method="predict_proba")[:, 1]
                errors = int(((p < 0.5) & (y == 1)).sum() + ((p >= 0.5) & (y == 0)).sum())
                results.append((errors, round(float(log_loss(y, p, sample_weight=weight)), 4), c, names))
    results.sort()
    for r in results[:8]:
        print(f"  LOO errors {r[0]}  log-loss {r[1]:.4f}  C {r[2]:g}  {', '.join(r[3])}")
    return results[0][3], results[0][2]


def report(name: str, rows: list[dict], refuses) -> None:
    on = [r for r in rows if r["on"]]
    off = [r for r in rows if not r["on"]]
    wrong_on = [r["id"] for r in on if refuses(r)]
    wrong_off = [r["id"] for r in off if not refuses(r)]
    print(
        f"  {name:40s} off-topic refused {len(off) - len(wrong_off)}/{len(off)}  answerable refused "
        f"{len(wrong_on)}/{len(on)}  {'answered off-topic: ' + ' '.join(wrong_off) if wrong_off else ''}"
        f"{'  refused: ' + ' '.join(wrong_on) if wrong_on else ''}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=None)
    ap.add_argument("--questions", type=Path, default=Path("tests/data/questions.jsonl"))
    ap.add_argument("--offtopic", type=Path, default=Path("tests/data/offtopic.jsonl"))
    ap.add_argument("--select", action="store_true", help="choose features and C by leave-one-out on tuning")
    args = ap.parse_args()
    s = Settings()
    searcher = s.open_searcher(index_dir=args.index)
    config = s.answer_config()
    items = [(q.id, q.question, 1) for q in load_questions(args.questions)]
    items += [(d["id"], d["question"], 0) for d in map(json.loads, args.offtopic.read_text().splitlines()) if d]
    rows = [{"id": i, "on": on, "split": split_of(i), **features(searcher, text, config)} for i, text, on in items]
    tuning = [r for r in rows if r["split"] == "tuning"]
    names, c = SERVED, 100.0
    if args.select:
        print("selection on the tuning halves (leave-one-out):")
        names, c = select(tuning)
    w, b = fit(tuning, names, c)
    print(
        f"fitted on tuning ({sum(r['on'] for r in tuning)} answerable, {sum(1 - r['on'] for r in tuning)} off-topic), "
        f"C {c:g}: " + ", ".join(f"{n} {x:.2f}" for n, x in zip(names, w)) + f", bias {b:.2f}"
    )

    def fitted(r: dict) -> bool:
        return r["best"] < config.min_dense or float(sum(r[n] * x for n, x in zip(names, w)) + b) < 0

    for half in ("tuning", "heldout"):
        print(f"{half}:")
        part = [r for r in rows if r["split"] == half]
        report("before: best cosine >= 0.22", part, lambda r: r["old_refuses"])
        report("served AnswerConfig", part, lambda r: r["served_refuses"])
        report("fitted here", part, fitted)


if __name__ == "__main__":
    main()
