"""The question set and its fixed tuning / held-out split (no model needed)."""

from __future__ import annotations

from collections import Counter

from rolesearch.search.evaluation import load_questions, question_digest, select_split, split_of
from tests.conftest import DATA

KINDS = {"ownership", "list", "comparison", "career", "money", "definition", "two-passage"}


def _recorded() -> dict[str, str]:
    lines = (DATA / "heldout.sha256").read_text(encoding="utf-8").splitlines()
    return dict(line.split() for line in lines if line and not line.startswith("#"))


def test_question_set_has_every_kind_at_least_15_times():
    questions = load_questions(DATA / "questions.jsonl")
    assert len(questions) >= 150
    assert len({q.id for q in questions}) == len(questions)
    kinds = Counter(q.kind for q in questions)
    assert set(kinds) == KINDS, kinds
    assert min(kinds.values()) >= 15, kinds


def test_split_depends_on_the_id_alone():
    # sha256("q01") starts with 0xa2 (even), sha256("q02") with 0xb7 (odd).
    assert split_of("q01") == "tuning"
    assert split_of("q02") == "heldout"
    questions = load_questions(DATA / "questions.jsonl")
    tuning, heldout = select_split(questions, "tuning"), select_split(questions, "heldout")
    assert {q.id for q in tuning} | {q.id for q in heldout} == {q.id for q in questions}
    assert not {q.id for q in tuning} & {q.id for q in heldout}
    assert min(len(heldout), len(tuning)) >= 0.4 * len(questions)  # 94 / 76


def test_heldout_questions_are_unchanged_since_their_answers_were_recorded():
    recorded = _recorded()
    heldout = {q.id: q for q in select_split(load_questions(DATA / "questions.jsonl"), "heldout")}
    # No held-out question added, removed, reworded or given other accepted answers.
    assert set(heldout) == set(recorded)
    changed = [qid for qid, q in heldout.items() if question_digest(q) != recorded[qid]]
    assert not changed, f"held-out questions changed after their answers were recorded: {changed}"


def test_digest_sees_a_new_accepted_answer(tmp_path):
    q = load_questions(DATA / "questions.jsonl")[0]
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "%s", "question": "%s", "answer": "%s", "article": "%s", "kind": "%s", '
                    '"also": [{"article": "x", "answer": "y"}]}\n' % (q.id, q.question, q.answer, q.article, q.kind))
    assert question_digest(load_questions(path)[0]) != question_digest(q)
