"""Ranking on the real corpus."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from rolesearch.search.evaluation import evaluate_questions, load_questions, select_split
from rolesearch.store import lexical as lexical_module
from tests.conftest import DATA, ROOT

ROLLBACK = "tenyks-ml-vs-mlops-engineer"


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_rollback_question_ranks_rollback_passage_in_top_3(corpus_searcher, mode):
    hits = corpus_searcher.search("who owns model rollback?", k=3, mode=mode).hits
    texts = [h.passage.text for h in hits]
    assert any("Model versioning and rollback" in t for t in texts), texts


@pytest.fixture(scope="module")
def heldout(corpus_searcher):
    """The held-out half, ranked by the served ranker and by the baseline over the same index."""
    from rolesearch.search.baseline import BaselineSearcher

    questions = select_split(load_questions(DATA / "questions.jsonl"), "heldout")
    baseline = BaselineSearcher(corpus_searcher.index, corpus_searcher.embedder)
    return questions, evaluate_questions(corpus_searcher, questions), evaluate_questions(baseline, questions)


def test_heldout_floor(heldout):
    questions, ours, _ = heldout
    assert len(questions) >= 75
    # Measured on the held-out half (94 questions): hit@1 0.638, hit@3 0.830, MRR@10 0.741; see docs/ranking.md.
    # The target (hit@3 0.95, MRR@10 0.90) is not reached: notes/ranking.md says why, per kind.
    assert ours["hit@3"] >= 0.81, ours["misses"]
    assert ours["mrr@10"] >= 0.72, ours["mrr@10"]


def test_served_ranker_not_below_baseline_on_heldout(heldout):
    questions, ours, baseline = heldout
    one = 1 / len(questions)  # one question's worth of hit@3; MRR@10 moves at most that much per question too
    # Measured: ours 0.830 / 0.741, baseline 0.809 / 0.699 (hit@3 / MRR@10).
    assert ours["hit@3"] >= baseline["hit@3"] - one, (ours["hit@3"], baseline["hit@3"])
    assert ours["mrr@10"] >= baseline["mrr@10"] - one, (ours["mrr@10"], baseline["mrr@10"])
    # Ownership questions are where the tuned ranker earns its keep (role prior, sentence vectors).
    assert ours["per_kind"]["ownership"]["mrr@10"] > baseline["per_kind"]["ownership"]["mrr@10"]


def test_baseline_reads_only_the_text_field_and_passage_vectors(corpus_searcher):
    from rolesearch.search.baseline import BaselineSearcher

    baseline = BaselineSearcher(corpus_searcher.index, corpus_searcher.embedder)
    hits = baseline.search("who owns model rollback?", k=3).hits
    assert any("Model versioning and rollback" in h.passage.text for h in hits)
    # "Similarities" is only a heading word: the served lexical ranker finds it through the section field,
    # the baseline's BM25 over passage text alone does not find it in the heading-only passages.
    ours = {h.passage.id for h in corpus_searcher.search("Similarities", k=10, mode="lexical").hits}
    base = {h.passage.id for h in baseline.search("Similarities", k=10, mode="lexical").hits}
    heading_only = {p.id for p in corpus_searcher.index.passages
                    if "Similarities" in " ".join(p.section) and "imilarit" not in p.text}
    assert heading_only & ours and not heading_only & base
    # No cap per section: the baseline may return more than two hits of one section.
    hits = baseline.search("MLOps engineer responsibilities", k=10).hits
    sections = [(h.passage.article_id, h.passage.section) for h in hits]
    assert max(sections.count(s) for s in sections) > 2


def test_hybrid_beats_dense_and_lexical_on_heldout(corpus_searcher, heldout):
    questions, ours, _ = heldout
    mrr = {m: evaluate_questions(corpus_searcher, questions, m)["mrr@10"] for m in ("dense", "lexical")}
    # Measured on the held-out half: dense 0.671, lexical 0.658, hybrid 0.741.
    assert ours["mrr@10"] > max(mrr.values()) + 0.03, (ours["mrr@10"], mrr)


def test_diversity_caps_hits_per_section(corpus_searcher):
    hits = corpus_searcher.search("MLOps engineer responsibilities", k=10).hits
    sections = [(h.passage.article_id, h.passage.section) for h in hits]
    assert max(sections.count(s) for s in sections) <= 2
    undiverse = corpus_searcher.search("MLOps engineer responsibilities", k=10, max_per_section=0).hits
    assert len(undiverse) == 10


@pytest.mark.slow
def test_cli_search_json_is_the_http_body(corpus_index):
    out = subprocess.run(
        [sys.executable, "-m", "rolesearch", "search", "who owns model rollback?", "--index", str(corpus_index), "-k", "3", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert set(body) == {"query", "mode", "hits", "index_version", "took_ms", "facets", "search_id"}
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


@pytest.mark.slow
def test_cli_eval_prints_ours_beside_the_baseline_per_kind(corpus_index):
    out = subprocess.run(
        [sys.executable, "-m", "rolesearch", "eval", "--questions", str(DATA / "questions.jsonl"), "--index", str(corpus_index),
         "--split", "tuning", "--ranker", "all", "--mode", "lexical"],  # lexical: no query to encode
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].endswith("split tuning: 76 questions")
    assert lines[2].startswith("ours lexical") and lines[3].startswith("baseline lexical")
    per_kind = lines[lines.index("per kind, hit@3 / MRR@10") + 2:][:7]
    assert [row.split()[0] for row in per_kind] == ["career", "comparison", "definition", "list", "money",
                                                    "ownership", "two-passage"]
    assert all(len(row.split("/")) == 3 for row in per_kind)  # two "hit@3 / MRR@10" cells per row
    bad = subprocess.run([sys.executable, "-m", "rolesearch", "eval", "--questions", str(DATA / "questions.jsonl"),
                          "--index", str(corpus_index), "--split", "odd"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert bad.returncode == 2 and "split must be one of tuning, heldout, all" in bad.stderr


@pytest.mark.parametrize("allowed,depth,common", [(None, 20, None), ("half", 20, None), (None, 3, None),
                                                   ("half", 2, None), (None, 5, 0.1), ("half", 5, 0.1), (None, 5, 0.0)])
def test_lexical_top_from_postings_equals_the_dense_scores(corpus_searcher, allowed, depth, common, monkeypatch):
    """The postings-only top (what a query costs at a million passages) is the dense score array's top, exactly,
    query after query through the same reused (re-zeroed) accumulators; a small depth takes the sampled bar, and
    terms in more than `common` of the passages are pruned when the bound allows (0.0: every term, never allowed)."""
    pruned = []
    if common is not None:
        beats = lexical_module._beats
        monkeypatch.setattr(lexical_module, "COMMON_SHARE", common)
        monkeypatch.setattr(lexical_module, "_beats", lambda *a: pruned.append(beats(*a)) or pruned[-1])
    lexical = corpus_searcher.index.lexical
    n = len(corpus_searcher.index.passages)
    allow = None if allowed is None else np.arange(n) % 2 == 0
    weights = {"section": 0.25, "title": 0.25}
    questions = load_questions(DATA / "questions.jsonl")
    compared = 0
    for q in [q.question for q in questions] + ["mlops", "zzzunknownword"]:
        dense = lexical.scores(q, weights)
        if allow is not None:
            dense = np.where(allow, dense, 0.0)
        top = lexical.top(q, depth, weights, allow)
        expected = sorted(dense[dense > 0], reverse=True)[:depth]
        assert sorted(top.values(), reverse=True) == [float(x) for x in expected], q
        assert all(float(dense[i]) == s for i, s in top.items()), q
        compared += bool(top)
    assert compared > 100
    if common:  # the pruning path ran, and both of its outcomes were checked above
        assert sum(pruned) >= 10 and not all(pruned), pruned


def test_exact_dense_scores_equal_the_per_sentence_blend(corpus_searcher):
    """The exact path's per-passage reduceat over sentence rows gives blend's scores (maximum.at per row), exactly."""
    from rolesearch.search.blend import blend

    index, config = corpus_searcher.index, corpus_searcher.config
    assert index.exact and index.sentence_start is not None and index.sentences is not None
    for q in [q.question for q in load_questions(DATA / "questions.jsonl")][:15]:
        v = corpus_searcher.embedder.encode_query(q)[0]
        expected = blend(index.embeddings @ v, index.sentences @ v, index.sentence_owner, config.sentence_weight)
        got = corpus_searcher.dense_scores(q, 30)
        assert len(got) == 30 and all(float(expected[i]) == s for i, s in got.items()), q
        assert sorted(got.values(), reverse=True) == sorted(map(float, expected), reverse=True)[:30], q
