"""The question-set format: alternative answers count as relevant, each in its own article."""

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
