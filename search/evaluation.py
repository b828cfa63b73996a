"""Retrieval metrics and the role-corpus question set (hit@k and MRR@10)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rolesearch.search.searcher import SearchResult

SPLITS = ("tuning", "heldout", "all")


class Ranker(Protocol):
    """What evaluation needs of a ranker: the served Searcher and the baseline both have it."""

    def search(self, query: str, k: int = 5, mode: str = "hybrid", **kwargs) -> SearchResult: ...


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
    kind: str = ""  # ownership, list, comparison, career, money, definition, two-passage

    @property
    def split(self) -> str:
        """"tuning" or "heldout", fixed by the id alone (see split_of)."""
        return split_of(self.id)

    @property
    def answers(self) -> tuple[Answer, ...]:
        """The expected answer first, then the accepted alternatives."""
        return (Answer(self.answer, self.article),) + self.also


def load_questions(path: Path) -> list[Question]:
    """Read a JSONL question set, one question per line.

    {"id", "question", "answer", "article"?, "roles"?, "kind"?, "also"?: [{"answer", "article"?}, ...]}
    """
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            d = json.loads(line)
            try:
                also = tuple(Answer(a["answer"], a.get("article")) for a in d.get("also") or ())
                out.append(Question(d["id"], d["question"], d["answer"], d.get("article"), tuple(d.get("roles") or ()), also,
                                    d.get("kind") or ""))
            except KeyError as exc:
                raise ValueError(f"{path}:{n}: question lacks {exc}") from exc
    return out


def split_of(question_id: str) -> str:
    """The half a question belongs to: "tuning" when the first byte of sha256(id) is even, else "heldout".

    It depends on the id only, so adding questions never moves an old one to the other half.
    """
    return "tuning" if hashlib.sha256(question_id.encode()).digest()[0] % 2 == 0 else "heldout"


def select_split(questions: list[Question], split: str) -> list[Question]:
    """The questions of one half ("tuning", "heldout") or all of them ("all")."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    return questions if split == "all" else [q for q in questions if q.split == split]


def question_digest(question: Question) -> str:
    """sha256 of everything that decides whether a question is answered: its wording and its accepted answers."""
    body = {"id": question.id, "question": question.question, "kind": question.kind,
            "answers": [[a.article, a.answer] for a in question.answers]}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


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


def question_ranks(searcher: Ranker, questions: list[Question], mode: str = "hybrid") -> dict[str, int | None]:
    """First-relevant rank (None: not in the top 10) of every question, by id."""
    ranks = {}
    for q in questions:
        result = searcher.search(q.question, k=10, mode=mode, highlights=False)
        ranks[q.id] = first_relevant_rank([(h.passage.article_id, h.passage.text) for h in result.hits], q)
    return ranks


def summarize(questions: list[Question], ranks: dict[str, int | None]) -> dict:
    """Metrics over all the questions and per kind, and the misses (not in the top 3)."""
    kinds = sorted({q.kind for q in questions if q.kind})
    return {
        **question_metrics([ranks[q.id] for q in questions]),
        "per_kind": {k: question_metrics([ranks[q.id] for q in questions if q.kind == k]) for k in kinds},
        "misses": [{"id": q.id, "kind": q.kind, "question": q.question, "rank": ranks[q.id]}
                   for q in questions if ranks[q.id] is None or ranks[q.id] > 3],
        "ranks": ranks,
    }


def evaluate_questions(searcher: Ranker, questions: list[Question], mode: str = "hybrid") -> dict:
    """Run every question and report the metrics (overall and per kind) and the misses."""
    return {**summarize(questions, question_ranks(searcher, questions, mode)), "mode": mode}


def evaluate_answers(searcher, questions: list[Question], offtopic: list[str], roles, config) -> dict:
    """Answer quality: on-topic questions answered, off-topic ones refused, role sets named exactly."""
    from rolesearch.search.answers import ask, is_ownership

    answered, exact, top_right, judged, wrong, unanswered = 0, 0, 0, 0, [], []
    for q in questions:
        a = ask(searcher, q.question, roles, config).answer
        answered += a.answerable
        if not a.answerable:
            unanswered.append(q.id)
        if q.roles or is_ownership(q.question, roles):
            judged += 1
            got = [c.role for c in a.roles]  # strongest first
            top_right += bool(got) and got[0] in q.roles
            if sorted(got) == sorted(q.roles):
                exact += 1
            else:
                wrong.append({"id": q.id, "expected": sorted(q.roles), "got": got})
    answered_off = [q for q in offtopic if ask(searcher, q, roles, config).answer.answerable]
    refused = len(offtopic) - len(answered_off)
    return {
        "answered_on_topic": round(answered / (len(questions) or 1), 3),
        "refused_off_topic": round(refused / (len(offtopic) or 1), 3),
        "unanswered": unanswered,
        "role_exact": round(exact / (judged or 1), 3),
        "role_top_right": round(top_right / (judged or 1), 3),
        "answered_off_topic": answered_off,
        "role_questions": judged,
        "role_misses": wrong,
    }
