"""The lexical analyser gives bm25s.tokenize's tokens (the index and old versions were built with them)."""

from __future__ import annotations

import json
from pathlib import Path

import bm25s

from rolesearch.store.lexical import LEXICAL_PARAMS, _stemmer, analyze

ROOT = Path(__file__).resolve().parent.parent
ODD = ["", "   ", "A", "x y z", "Who OWNS model-rollback?!", "MLOps/ML-platform engineer's CI/CD (2024)",
       "naïve café déjà-vu Straße", "don't won't it's", "_under_score__ and 3.14 and 1e-5", "日本語のテキスト",
       "running runs ran runner", "the and of a an"]


def _reference(texts: list[str]) -> list[list[str]]:
    return bm25s.tokenize(texts, stopwords=LEXICAL_PARAMS["stopwords"], stemmer=_stemmer(), return_ids=False,
                          show_progress=False)


def test_analyze_gives_bm25s_tokens_on_the_corpus_questions_and_odd_text():
    lines = [line for f in sorted((ROOT / "corpus").iterdir()) if f.is_file()
             for line in f.read_text(encoding="utf-8").splitlines()]
    questions = [json.loads(q)["question"] for q in (ROOT / "tests/data/questions.jsonl").read_text().splitlines() if q.strip()]
    texts = lines + questions + ODD
    assert len(lines) > 500 and len(questions) > 100
    assert analyze(texts) == _reference(texts)
    # One text at a time (the query path) as well as many (the build).
    assert [analyze([t])[0] for t in questions + ODD] == [_reference([t])[0] for t in questions + ODD]
    assert analyze(["Who owns model rollback?"]) == [["own", "model", "rollback"]]
