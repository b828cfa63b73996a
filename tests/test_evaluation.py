"""The question-set format: alternative answers count as relevant, each in its own article."""

from types import SimpleNamespace

import pytest

from rolesearch.search.evaluation import Answer, Question, first_relevant_rank, load_questions


def test_first_relevant_rank_accepts_an_alternative_answer_in_its_article():
    q = Question("q", "who owns rollback?", "rollback", "a", also=(Answer("revert the model", "b"),))
    assert first_relevant_rank([("c", "nothing"), ("b", "they revert the model"), ("a", "rollback")], q) == 2
    # The alternative's text in another article is not relevant.
    assert first_relevant_rank([("a", "they revert the model"), ("a", "rollback")], q) == 2
    assert first_relevant_rank([("c", "rollback")], q) is None


def test_load_questions_reads_also(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "q1", "question": "x?", "answer": "y", "article": "a", '
                    '"also": [{"article": "b", "answer": "z"}]}\n{"id": "q2", "question": "u?", "answer": "v"}\n')
    q1, q2 = load_questions(path)
    assert q1.answers == (Answer("y", "a"), Answer("z", "b"))
    assert q2.also == () and q2.answers == (Answer("v", None),)


# --- the metrics every quality threshold and figure trusts, computed by hand on a tiny fixture -------------

# id -> (kind, first relevant rank); None: nothing relevant in the top 10. Rank 12 can only come from a caller
# that ranks past 10: it counts for nothing, like None.
FIXTURE = {"q1": ("ownership", 1), "q2": ("ownership", 3), "q3": ("list", 2), "q4": ("list", None),
           "q5": ("comparison", 4), "q6": ("", 12)}


def _fixture_questions() -> list[Question]:
    return [Question(qid, f"question {qid}?", "answer", kind=kind) for qid, (kind, _) in FIXTURE.items()]


def test_question_metrics_by_hand():
    from rolesearch.search.evaluation import question_metrics

    got = question_metrics([rank for _, rank in FIXTURE.values()])
    # hit@1: q1. hit@3: q1, q2, q3. MRR@10: (1 + 1/3 + 1/2 + 0 + 1/4 + 0) / 6.
    assert got == {"hit@1": 1 / 6, "hit@3": 3 / 6, "mrr@10": pytest.approx((1 + 1 / 3 + 1 / 2 + 1 / 4) / 6),
                   "questions": 6}
    assert question_metrics([3]) == {"hit@1": 0, "hit@3": 1, "mrr@10": pytest.approx(1 / 3), "questions": 1}
    assert question_metrics([10, 11]) == {"hit@1": 0, "hit@3": 0, "mrr@10": pytest.approx(0.1 / 2), "questions": 2}
    assert question_metrics([]) == {"hit@1": 0, "hit@3": 0, "mrr@10": 0, "questions": 0}


def test_summarize_per_kind_and_misses_by_hand():
    from rolesearch.search.evaluation import summarize

    questions = _fixture_questions()
    ranks = {qid: rank for qid, (_, rank) in FIXTURE.items()}
    got = summarize(questions, ranks)
    assert (got["hit@1"], got["hit@3"], got["questions"]) == (1 / 6, 0.5, 6)
    assert got["per_kind"] == {  # sorted by kind; a question without a kind counts overall only
        "comparison": {"hit@1": 0, "hit@3": 0, "mrr@10": 0.25, "questions": 1},
        "list": {"hit@1": 0, "hit@3": 0.5, "mrr@10": 0.25, "questions": 2},
        "ownership": {"hit@1": 0.5, "hit@3": 1, "mrr@10": pytest.approx(2 / 3), "questions": 2},
    }
    assert [(m["id"], m["rank"]) for m in got["misses"]] == [("q4", None), ("q5", 4), ("q6", 12)]
    assert got["misses"][0] == {"id": "q4", "kind": "list", "question": "question q4?", "rank": None}
    assert got["ranks"] == ranks


class _Ranker:
    """A ranker that returns fixed (article, text, score) hits per question, in the order given."""

    def __init__(self, hits: dict[str, list[tuple[str, str, float]]]):
        self.hits = hits

    def search(self, query, k=5, mode="hybrid", **kwargs):
        rows = self.hits[query][:k]
        return SimpleNamespace(hits=[SimpleNamespace(passage=SimpleNamespace(article_id=a, text=t), score=s)
                                     for a, t, s in rows])


def test_evaluate_questions_ranks_ties_in_served_order_and_counts_no_hit():
    from rolesearch.search.evaluation import evaluate_questions

    tie = Question("tie", "tie?", "owns rollback", "a", kind="ownership")
    alt = Question("alt", "alt?", "owns rollback", "a", kind="ownership", also=(Answer("reverts", "b"),))
    none = Question("none", "none?", "owns rollback", "a", kind="list")
    far = Question("far", "far?", "owns rollback", "a", kind="list")
    filler = [("c", f"filler {i}", 0.1) for i in range(10)]
    ranker = _Ranker({
        # Two hits with the same score: the one served first is rank 1, so the answer behind it is rank 2.
        "tie?": [("a", "nothing here", 0.5), ("a", "the MLOps engineer owns rollback", 0.5)] + filler,
        # The alternative answer in its own article at rank 3; the main answer's text in the wrong article first.
        "alt?": [("c", "owns rollback", 0.9), ("c", "x", 0.8), ("b", "it reverts the model", 0.7)],
        "none?": filler,
        # The answer at rank 11: past the top 10 the evaluation asks for, so no hit.
        "far?": filler + [("a", "owns rollback", 0.05)],
    })
    got = evaluate_questions(ranker, [tie, alt, none, far], "dense")
    assert got["ranks"] == {"tie": 2, "alt": 3, "none": None, "far": None}
    assert (got["hit@1"], got["hit@3"], got["mrr@10"]) == (0, 0.5, pytest.approx((1 / 2 + 1 / 3) / 4))
    assert got["per_kind"]["ownership"] == {"hit@1": 0, "hit@3": 1, "mrr@10": pytest.approx(5 / 12), "questions": 2}
    assert got["per_kind"]["list"] == {"hit@1": 0, "hit@3": 0, "mrr@10": 0, "questions": 2}
    assert [m["id"] for m in got["misses"]] == ["none", "far"] and got["mode"] == "dense"
