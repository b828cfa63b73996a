"""Role attribution on the real articles, highlights, and answers to ownership, shared, non-role and off-topic questions."""

from __future__ import annotations

import json

import pytest

from rolesearch.ingest.roles import attribute_roles
from rolesearch.search.answers import AnswerConfig, ask, is_ownership
from rolesearch.search.evaluation import evaluate_answers, load_questions
from rolesearch.search.highlight import best_sentences, highlight, query_terms
from rolesearch.store.lexical import analyze
from rolesearch.store.roles import RoleConfig
from rolesearch.store.sentences import sentence_spans
from tests.conftest import DATA

TENYKS = "tenyks-ml-vs-mlops-engineer"
YARDSTICK = "yardstick-mlops-vs-ml-platform-engineer"
APORIA = "aporia-what-is-an-mlops-engineer"


@pytest.fixture(scope="module")
def roles() -> RoleConfig:
    return RoleConfig.load()


def passage_with(searcher, article_id: str, snippet: str):
    found = [p for p in searcher.index.passages if p.article_id == article_id and snippet in p.text]
    assert len(found) == 1, (snippet, [p.id for p in found])
    return found[0]


@pytest.mark.parametrize("article, snippet, expected", [
    # Section "MLOps Engineer" and "The MLOps engineer needs to ..." as subject.
    (TENYKS, "Model versioning and rollback", ("MLOps Engineer",)),
    (TENYKS, "Feature Engineering - The job of feature engineering", ("ML Engineer",)),
    # A shared duty: both roles as one subject, under a heading that compares the two.
    (TENYKS, "Model Validation - ML Engineers and MLOps Engineers share", ("ML Engineer", "MLOps Engineer")),
    (TENYKS, "Security and compliance", ("ML Engineer", "MLOps Engineer")),
    (YARDSTICK, "Standardize ML workflows across the organization", ("ML Platform Engineer",)),
    (YARDSTICK, "Pipeline Automation: Build end-to-end", ("MLOps Engineer",)),
    # Under "5. Key Challenges in MLE and MLOps" (a comparison), and "This is a core concern for
    # MLOps engineers" only mentions the role: no role is credited with the duty.
    ("mle-vs-mlops-fine-line", "This is a core concern for MLOps engineers", ()),
])
def test_roles_attributed_at_ingest(corpus_searcher, article, snippet, expected):
    assert passage_with(corpus_searcher, article, snippet).roles == expected


def test_attribution_reads_subjects_not_mentions(roles):
    assert attribute_roles((), "Work closely with data scientists to productionize models.", roles) == ()
    assert attribute_roles((), "Functionally, MLOps engineers are responsible for automation.", roles) == ("MLOps Engineer",)
    assert attribute_roles(("Data Scientist vs. MLOps Engineer",), "They experiment.", roles) == ()
    assert attribute_roles((), "ML Engineers validate models, while Data Engineers move data.", roles) == (
        "ML Engineer", "Data Engineer")


def test_a_new_role_is_configuration_not_code(tmp_path, small_corpus, embedder):
    from rolesearch.ingest.pipeline import build_index
    from rolesearch.search.index import SearchIndex

    roles_file = tmp_path / "roles.yaml"
    roles_file.write_text(
        "roles:\n  - name: Prompt Engineer\n    aliases: [prompt engineer, PE]\n"
        "  - name: MLOps Engineer\n    aliases: [MLOps engineer]\n", encoding="utf-8")
    (small_corpus / "prompts.md").write_text(
        "# Prompts\n\n## Prompt Engineer\n\n- Prompt libraries: the prompt engineer curates and versions prompts.\n",
        encoding="utf-8")
    index_dir = tmp_path / "index"
    build_index(small_corpus, index_dir, embedder, roles=RoleConfig.load(roles_file))
    by_id = {p.id: p.roles for p in SearchIndex.load(index_dir).passages}
    assert by_id["prompts:0"] == ("Prompt Engineer",)
    assert by_id["rollback:0"] == ("MLOps Engineer",)
    assert by_id["rollback:1"] == ()  # "ML Engineer" is not a role in this file


def test_highlight_picks_the_answering_sentence_with_offsets():
    text = ("Model versioning and rollback: The MLOps engineer needs to manage different versions of ML models. "
            "Functionally, this enables efficient experimentation and debugging. "
            "The desired outcome is reliable releases.")
    h = highlight("who rolls back to a previous model version?", text)
    assert h.text == "Model versioning and rollback: The MLOps engineer needs to manage different versions of ML models."
    assert text[h.start:h.end] == h.text and h.start == 0
    h = highlight("what is the desired outcome?", text)
    assert h.text == "The desired outcome is reliable releases." and text[h.start:h.end] == h.text


def test_highlights_of_all_hits_at_once_equal_each_analysed_alone(corpus_searcher):
    """best_sentences (one analyser call per query) picks what analysing each passage's sentences alone picks."""
    texts = [p.text for p in corpus_searcher.index.passages] + ["", "no sentence end", "Short. Two words here."]
    compared = 0
    for q in [q.question for q in load_questions(DATA / "questions.jsonl")][:20]:
        terms = query_terms(q, corpus_searcher._idf)
        for text, got in zip(texts, best_sentences(terms, texts)):
            spans = sentence_spans(text)
            if not spans:
                assert got == (text, 0, len(text))
                continue
            scores = [sum(w for t, w in terms.items() if t in set(analyze([text[s:e]])[0])) for s, e in spans]
            best = max(range(len(spans)), key=lambda i: (scores[i], -i))
            start, end = spans[best]
            if len(text[start:end].split()) < 6 and best + 1 < len(spans):
                end = spans[best + 1][1]
            assert got == (text[start:end], start, end), (q, text)
            compared += bool(scores[best])
    assert compared > 200


def test_ownership_questions_are_told_apart(roles):
    assert is_ownership("who owns model rollback?", roles)
    assert is_ownership("which team should I call about drift alerts?", roles)
    assert not is_ownership("who is an MLOps engineer's boss typically?", roles)
    assert not is_ownership("how much does an MLOps engineer earn?", roles)


def test_ask_ownership_names_the_role_with_evidence(corpus_searcher, roles):
    result = ask(corpus_searcher, "who owns model rollback?", roles)
    a = result.answer
    assert a.answerable
    assert [c.role for c in a.roles] == ["MLOps Engineer"]
    rollback = passage_with(corpus_searcher, TENYKS, "Model versioning and rollback").id
    assert a.roles[0].evidence[0] == rollback
    assert a.text == "MLOps Engineer: model versioning and rollback (Tenyks, 'MLOps Engineer')."


def test_ask_shared_duty_names_both_roles(corpus_searcher, roles):
    a = ask(corpus_searcher, "whose job is it to validate our models - the ML engineers or the MLOps folks?", roles).answer
    assert a.answerable
    assert {c.role for c in a.roles} == {"ML Engineer", "MLOps Engineer"}
    shared = passage_with(corpus_searcher, TENYKS, "Model Validation - ML Engineers and MLOps Engineers share").id
    assert all(shared in c.evidence for c in a.roles)
    assert sum(c.confidence for c in a.roles) <= 1.0
    # Roles come strongest first; for this shared duty the two are close, so the order follows the votes.
    first, second = (c.role for c in a.roles)
    assert a.text == (f"{first} and {second}: Model Validation (Tenyks, "
                      "'Table 1. Similarities between the roles of ML Engineer and MLOps Engineer').")


def test_ask_where_articles_disagree_names_each_role_with_its_article(corpus_searcher, roles):
    # Aporia gives the choice of MLOps tooling to the MLOps engineer, Yardstick to the ML platform engineer.
    a = ask(corpus_searcher, "who picks and rolls out our MLOps tooling like MLflow or Kubeflow?", roles).answer
    claims = {c.role: c for c in a.roles}
    assert set(claims) == {"MLOps Engineer", "ML Platform Engineer"}
    aporia = passage_with(corpus_searcher, APORIA, "selecting and implementing MLOps tools and platforms").id
    yardstick = passage_with(corpus_searcher, YARDSTICK, "Tooling and Standardization: Select, integrate").id
    assert claims["MLOps Engineer"].evidence[0] == aporia
    assert claims["ML Platform Engineer"].evidence == [yardstick]
    # Each role is named with the duty as its own article words it: the answering list item, not the first one.
    assert a.text == ("MLOps Engineer: Implement MLOps tools and platforms (Aporia, 'Responsibilities of MLOps Engineers'); "
                      "ML Platform Engineer: Tooling and Standardization (Yardstick, "
                      "'ML Platform Engineer: Building the AI Ecosystem').")


def test_ask_non_role_question_points_to_the_best_passage(corpus_searcher, roles):
    result = ask(corpus_searcher, "how much does an MLOps engineer earn with 4 years experience?", roles)
    a = result.answer
    assert a.answerable and a.roles == []
    best = result.result.hits[0]
    assert best.highlight.text in best.passage.text
    assert " ".join(best.highlight.text.split()) in a.text


@pytest.mark.parametrize("question", ["how do I reset my VPN password?", "what's the best recipe for sourdough bread?"])
def test_ask_off_topic_is_not_answerable(corpus_searcher, roles, question):
    a = ask(corpus_searcher, question, roles).answer
    assert not a.answerable and a.roles == []


def test_abstention_on_both_sides(corpus_searcher, roles):
    questions = load_questions(DATA / "questions.jsonl")
    offtopic = [json.loads(line)["question"] for line in open(DATA / "offtopic.jsonl", encoding="utf-8")]
    figures = evaluate_answers(corpus_searcher, questions, offtopic, roles, AnswerConfig())
    # Measured on the 170 questions with the three-signal rule (bench/abstention.py): every off-topic question
    # refused, one on-topic question refused (q03, held out: close to no passage's words, and its dense top hit
    # not in the lexical top 5); of 49 role questions the top role is right for 43 and the role set exact for 38
    # (votes by the answering sentence: search.answers.sentence_votes).
    assert len(figures["unanswered"]) <= 1, figures
    assert figures["refused_off_topic"] == 1.0, figures
    assert figures["role_top_right"] >= 43 / 49 - 0.001, figures
    assert figures["role_exact"] >= 38 / 49 - 0.001, figures


# The four off-topic questions one cosine threshold could not refuse (notes/ranking.md).
CLOSE_OFFTOPIC = ["when is the next company holiday?", "when does payroll run this month?",
                  "what's my employee ID number?", "who is on call for the billing database this week?"]


@pytest.mark.parametrize("question", CLOSE_OFFTOPIC)
def test_off_topic_close_to_one_passage_is_refused_with_a_reason(corpus_searcher, roles, question):
    a = ask(corpus_searcher, question, roles).answer
    assert not a.answerable and a.roles == []
    assert a.reason and "far from what the articles are about" in a.reason


def test_the_best_cosine_alone_answers_them(corpus_searcher, roles):
    # Without the other signals the best passage cosine lets three of them through: they need the rule.
    cosine_only = AnswerConfig(signals=False)
    answered = [q for q in CLOSE_OFFTOPIC if ask(corpus_searcher, q, roles, cosine_only).answer.answerable]
    assert len(answered) >= 3, answered
    a = ask(corpus_searcher, "who owns model rollback?", roles).answer
    assert a.answerable and a.reason is None


@pytest.mark.parametrize("question, expected", [
    # The "Data Scientist vs. MLOps Engineer" passage names both roles; its sentence that answers names one
    # ("Their primary concern is model accuracy", after "... the focus of Data scientists").
    ("data scientist or MLOps engineer: who cares most about model accuracy?", "Data Scientist"),
    ("data scientist vs MLOps: who actually ships the model to production?", "MLOps Engineer"),
])
def test_roles_come_from_the_answering_sentence(corpus_searcher, roles, question, expected):
    a = ask(corpus_searcher, question, roles).answer
    assert a.answerable and a.roles[0].role == expected, a.roles
    # Votes by the passages' roles put another role first: the sentence votes are what make it right.
    before = ask(corpus_searcher, question, roles, AnswerConfig(sentence_votes=False)).answer
    assert before.roles[0].role != expected, before.roles
