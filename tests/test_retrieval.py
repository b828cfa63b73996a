"""Ranking on the real corpus."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from search.evaluation import evaluate_questions, load_questions
from tests.conftest import DATA, ROOT

ROLLBACK = "tenyks-ml-vs-mlops-engineer"


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_rollback_question_ranks_rollback_passage_in_top_3(corpus_searcher, mode):
    hits = corpus_searcher.search("who owns model rollback?", k=3, mode=mode).hits
    texts = [h.passage.text for h in hits]
    assert any("Model versioning and rollback" in t for t in texts), texts


def test_question_set_floor(corpus_searcher):
    questions = load_questions(DATA / "questions.jsonl")
    assert len(questions) >= 30
    result = evaluate_questions(corpus_searcher, questions, "hybrid")
    # Floors measured on this question set (hybrid hit@3 0.868, MRR@10 0.783); see README, Ranking.
    assert result["hit@3"] >= 0.85, result
    assert result["mrr@10"] >= 0.77, result


def test_hybrid_beats_dense_and_lexical_on_the_question_set(corpus_searcher):
    questions = load_questions(DATA / "questions.jsonl")
    mrr = {m: evaluate_questions(corpus_searcher, questions, m)["mrr@10"] for m in ("dense", "lexical", "hybrid")}
    # Measured: dense 0.680, lexical 0.684, hybrid 0.783.
    assert mrr["hybrid"] > max(mrr["dense"], mrr["lexical"]) + 0.03, mrr


def test_diversity_caps_hits_per_section(corpus_searcher):
    hits = corpus_searcher.search("MLOps engineer responsibilities", k=10).hits
    sections = [(h.passage.article_id, h.passage.section) for h in hits]
    assert max(sections.count(s) for s in sections) <= 2
    undiverse = corpus_searcher.search("MLOps engineer responsibilities", k=10, max_per_section=0).hits
    assert len(undiverse) == 10


@pytest.mark.slow
def test_cli_search_json_is_the_http_body(corpus_index):
    out = subprocess.run(
        [sys.executable, "-m", "api.cli", "search", "who owns model rollback?", "--index", str(corpus_index), "-k", "3", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert set(body) == {"query", "mode", "hits", "index_version", "took_ms", "facets"}
    assert body["hits"][0]["article_id"] == ROLLBACK
    assert "Model versioning and rollback" in body["hits"][0]["text"]


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_allow_mask_keeps_other_passages_out_before_ranking(corpus_searcher, mode):
    import numpy as np

    passages = corpus_searcher.index.passages
    allow = np.array([p.article_id != ROLLBACK for p in passages])
    hits = corpus_searcher.search("who owns model rollback?", k=5, mode=mode, allow=allow).hits
    # Still k hits, none from the masked article, which holds the best answer unmasked.
    assert len(hits) == 5
    assert all(h.passage.article_id != ROLLBACK for h in hits)
    assert corpus_searcher.search("who owns model rollback?", k=5, mode=mode, allow=~allow).hits[0].passage.article_id == ROLLBACK
    assert corpus_searcher.search("rollback", k=5, mode=mode, allow=np.zeros(len(passages), bool)).hits == []
