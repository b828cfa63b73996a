"""Retrieval metrics and the role-corpus question set (hit@k and MRR@10)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from search.searcher import Searcher


@dataclass(frozen=True)
class Answer:
    """A short substring of a passage that answers a question, optionally tied to one article."""

    answer: str
    article: str | None = None

    def found_in(self, article_id: str, text: str) -> bool:
        """Whether the passage (article_id, text) contains this answer, in the right article."""
        return self.answer in text and (self.article is None or self.article == article_id)


@dataclass(frozen=True)
class Question:
    """A question as a user would ask it, and a short substring of the passage that answers it.

    also lists other passages of the corpus that answer the question just as well (the articles
    overlap); a hit on any of them counts as relevant.
    """

    id: str
    question: str
    answer: str
    article: str | None = None
    roles: tuple[str, ...] = ()
    also: tuple[Answer, ...] = ()

    @property
    def answers(self) -> tuple[Answer, ...]:
        """The expected answer first, then the accepted alternatives."""
        return (Answer(self.answer, self.article),) + self.also


def load_questions(path: Path) -> list[Question]:
    """Read a JSONL question set, one question per line.

    {"id", "question", "answer", "article"?, "roles"?, "also"?: [{"answer", "article"?}, ...]}
    """
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            d = json.loads(line)
            try:
                also = tuple(Answer(a["answer"], a.get("article")) for a in d.get("also") or ())
                out.append(Question(d["id"], d["question"], d["answer"], d.get("article"), tuple(d.get("roles") or ()), also))
            except KeyError as exc:
                raise ValueError(f"{path}:{n}: question lacks {exc}") from exc
    return out


def first_relevant_rank(ranked_texts: list[tuple[str, str]], question: Question) -> int | None:
    """Rank (from 1) of the first (article_id, text) that contains any accepted answer, in its article."""
    for rank, (article_id, text) in enumerate(ranked_texts, start=1):
        if any(a.found_in(article_id, text) for a in question.answers):
            return rank
    return None


def question_metrics(ranks: list[int | None]) -> dict[str, float]:
    """hit@1, hit@3 and MRR@10 over first-relevant ranks (None: not in the top 10)."""
    n = len(ranks) or 1
    return {
        "hit@1": sum(1 for r in ranks if r is not None and r <= 1) / n,
        "hit@3": sum(1 for r in ranks if r is not None and r <= 3) / n,
        "mrr@10": sum(1.0 / r for r in ranks if r is not None and r <= 10) / n,
        "questions": len(ranks),
    }


def evaluate_questions(searcher: Searcher, questions: list[Question], mode: str = "hybrid") -> dict:
    """Run every question and report the metrics and the misses."""
    ranks: list[int | None] = []
    misses = []
    for q in questions:
        result = searcher.search(q.question, k=10, mode=mode)
        rank = first_relevant_rank([(h.passage.article_id, h.passage.text) for h in result.hits], q)
        ranks.append(rank)
        if rank is None or rank > 3:
            misses.append({"id": q.id, "question": q.question, "rank": rank})
    return {**question_metrics(ranks), "mode": mode, "misses": misses}


def evaluate_answers(searcher: Searcher, questions: list[Question], offtopic: list[str], roles, config) -> dict:
    """Answer quality: on-topic questions answered, off-topic ones refused, role sets named exactly."""
    from search.answers import ask, is_ownership

    answered, exact, judged, wrong = 0, 0, 0, []
    for q in questions:
        a = ask(searcher, q.question, roles, config).answer
        answered += a.answerable
        if q.roles or is_ownership(q.question, roles):
            judged += 1
            got = sorted(c.role for c in a.roles)
            if got == sorted(q.roles):
                exact += 1
            else:
                wrong.append({"id": q.id, "expected": sorted(q.roles), "got": got})
    refused = sum(not ask(searcher, q, roles, config).answer.answerable for q in offtopic)
    return {
        "answered_on_topic": round(answered / (len(questions) or 1), 3),
        "refused_off_topic": round(refused / (len(offtopic) or 1), 3),
        "role_exact": round(exact / (judged or 1), 3),
        "role_questions": judged,
        "role_misses": wrong,
    }
