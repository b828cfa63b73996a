"""Answers to questions: which roles own a duty (with the passages that say so), or the best passage, or nothing."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from rolesearch.search.query import is_ownership
from rolesearch.search.searcher import Hit, Searcher, SearchResult
from rolesearch.store.roles import RoleConfig
from rolesearch.store.sentences import passage_sentences

_PRONOUN = re.compile(r"\s*(?:[-*•]\s*)?(?:they|their|these|them)\b", re.IGNORECASE)
_LABEL = re.compile(r"^\s*(?:\d+[.)]\s*|[-*•]\s*)?(?P<label>[^\n:]{3,60}?)\s*(?::|\s[-–—])\s")


@dataclass(frozen=True)
class AnswerConfig:
    """How answers are formed (tuned on tests/data/questions.jsonl and offtopic.jsonl)."""

    passages: int = 5  # the top hits roles are aggregated over
    min_dense: float = 0.22  # best passage cosine below this: the corpus does not answer the question
    signals: bool = True  # also weigh the mean cosine and the rankers' agreement (abstain); off: min_dense alone
    # abstain's linear rule, fitted by bench/abstention.py on the tuning halves of questions.jsonl and offtopic.jsonl
    w_best: float = 21.06  # per unit of the best passage cosine
    w_corpus: float = 24.23  # per unit of the mean cosine over the passages
    w_agree: float = 6.97  # when the dense top hit is in the lexical top 5
    bias: float = -12.89
    min_share: float = 0.6  # a role is named when its weight is at least this share of the strongest role's
    temperature: float = 0.2  # gap in fused score that divides a passage's vote by e, relative to the top hit
    sentence_votes: bool = True  # a hit votes for the roles of its answering sentence (sentence_votes)


@dataclass(frozen=True)
class RoleClaim:
    """A role that the evidence names, with its share of the relevance-weighted evidence."""

    role: str
    confidence: float
    evidence: list[str]  # passage ids, best first


@dataclass(frozen=True)
class Answer:
    """What the question gets: answerable or not (and why not), the roles (ownership questions only), and one sentence."""

    answerable: bool
    roles: list[RoleClaim]
    text: str
    reason: str | None = None  # why the question is not answerable (None when it is)


@dataclass(frozen=True)
class Signals:
    """What says whether the corpus answers a query, none of them the best cosine alone."""

    best: float  # best cosine of a passage's own vector
    corpus: float  # mean cosine over the passages: how close the query is to what the articles are about
    agree: bool  # the dense top hit is among the lexical top 5

    @classmethod
    def of(cls, result: SearchResult) -> Signals:
        """The signals a hybrid search recorded (search.searcher), falling back to the hits' best cosine."""
        extra = result.extra
        best = extra.get("best_dense", best_dense(result.hits))
        return cls(best, extra.get("corpus_dense", best), bool(extra.get("agree", True)))


def abstain(signals: Signals, config: AnswerConfig) -> str | None:
    """Why the corpus does not answer the query, or None when it does.

    Below min_dense nothing is close enough; above it, a linear rule over the best cosine, the mean
    cosine and the rankers' agreement decides (fitted on the tuning halves, notes/ranking.md): an
    off-topic question can come close to one passage ("when is the next company holiday?" 0.33) but
    stays far from the articles as a whole, and the words of its best passage are not its own.
    """
    if signals.best < config.min_dense:
        return f"no passage is close to the question (best cosine {signals.best:.2f} < {config.min_dense:.2f})"
    if not config.signals:
        return None
    score = config.w_best * signals.best + config.w_corpus * signals.corpus + config.w_agree * signals.agree + config.bias
    if score >= 0:
        return None
    return (f"the question is far from what the articles are about (best cosine {signals.best:.2f}, mean "
            f"{signals.corpus:.2f}; the dense and lexical top hits {'agree' if signals.agree else 'disagree'})")


@dataclass
class AskResult:
    """An answer with the hits it was built from."""

    query: str
    answer: Answer
    result: SearchResult


def best_dense(hits: list[Hit]) -> float:
    """The highest cosine similarity among the hits (-1 when none has one)."""
    return max((h.dense for h in hits if h.dense is not None), default=-1.0)


def claim_roles(hits: list[Hit], min_share: float, temperature: float,
                votes: dict[str, tuple[str, ...]] | None = None) -> list[RoleClaim]:
    """Roles of the hits' passages (or votes[passage id], see sentence_votes), each hit weighted by
    exp((score - top score) / temperature).

    The votes follow the ranking the reader sees (the hybrid score), so a passage that only
    resembles the question in the dense space, with none of its words, cannot outvote the hits
    above it; notes/ranking.md has the comparison with cosine-weighted votes.
    """
    weights: dict[str, float] = {}
    evidence: dict[str, list[str]] = {}
    top = max((h.score for h in hits), default=0.0)
    votes = votes or {}
    for h in hits:
        w = math.exp((h.score - top) / temperature)
        for role in votes.get(h.passage.id, h.passage.roles):
            weights[role] = weights.get(role, 0.0) + w
            evidence.setdefault(role, []).append(h.passage.id)
    if not weights:
        return []
    total, top = sum(weights.values()), max(weights.values())
    chosen = sorted((r for r in weights if weights[r] >= min_share * top), key=lambda r: -weights[r])
    return [RoleClaim(r, round(weights[r] / total, 3), evidence[r]) for r in chosen]


def sentence_votes(searcher: Searcher, query: str, hits: list[Hit], roles: RoleConfig) -> dict[str, tuple[str, ...]]:
    """For each hit, the roles of its sentence that answers the question, when that sentence says who.

    A passage that compares two roles is attributed both, but the sentence answering the question
    names one ("Their primary concern is model accuracy": data scientists). The answering sentence is
    the passage's sentence closest to the question with the role names taken out (a question that
    names both roles, "data scientist vs MLOps: who ships the model?", is otherwise closest to the
    sentence naming both). Its subjects vote; a sentence opening with "They"/"Their" votes for the
    role the sentences before it name; a sentence naming none leaves the passage's roles.
    """
    index = searcher.index
    voters = [h for h in hits if h.passage.roles and h.row is not None]
    if index.sentences is None or index.sentence_start is None or not voters:
        return {}
    vector = searcher.embedder.encode_query(roles.mention.sub(" ", query))[0]
    out: dict[str, tuple[str, ...]] = {}
    for h in voters:
        a, b = int(index.sentence_start[h.row]), int(index.sentence_start[h.row + 1])
        sentences = passage_sentences(h.passage.text)
        if b <= a or len(sentences) != b - a:
            continue
        scores = np.asarray(index.sentence_rows.ranges(np.array([a]), np.array([b])), dtype=np.float32) @ vector
        best = int(np.argmax(scores))
        named = roles.sentence_subjects(sentences[best])
        if not named and _PRONOUN.match(sentences[best]):
            for before in reversed(sentences[:best]):
                named = roles.sentence_subjects(before) or roles.mentioned(before)[-1:]
                if named:
                    break
        if named:
            out[h.passage.id] = tuple(named)
    return out


def duty_label(hit: Hit) -> str:
    """A few words naming the duty: the label of the best sentence's list item, else that sentence's start."""
    # The highlight, not the passage's first line: in a list of duties the answer is often the third item.
    text = hit.highlight.text if hit.highlight else hit.passage.text
    m = _LABEL.match(text)
    if m and len(m.group("label").split()) <= 8:
        label = m.group("label").strip()
    else:
        words = text.split()
        label = " ".join(words[:12]) + ("…" if len(words) > 12 else "")
    label = label.replace("**", "").replace("__", "")
    # A sentence-case label reads as a duty mid-sentence ("model versioning and rollback");
    # title case ("Feature Engineering") and acronyms ("CI/CD") keep their capitals.
    words = label.split()
    sentence_case = label[1:2].islower() and not any(w[:1].isupper() for w in words[1:])
    return label[:1].lower() + label[1:] if sentence_case else label


def source(hit: Hit, articles: dict) -> str:
    """(Publisher, 'Section') of a hit, for the answer sentence."""
    meta = articles.get(hit.passage.article_id, {})
    who = meta.get("publisher") or hit.passage.title
    section = hit.passage.section[-1] if hit.passage.section else hit.passage.title
    return f"({who}, '{section}')"


def answer(query: str, result: SearchResult, roles: RoleConfig, articles: dict, config: AnswerConfig,
           votes: dict[str, tuple[str, ...]] | None = None) -> Answer:
    """Form the answer from a hybrid result's top hits (votes: sentence_votes' roles per passage id)."""
    hits = result.hits[: config.passages]
    reason = abstain(Signals.of(result), config) if hits else "no passage matches the question"
    if reason is not None:
        return Answer(False, [], "Nothing in the articles answers this question.", reason)
    by_id = {h.passage.id: h for h in hits}
    claims = claim_roles(hits, config.min_share, config.temperature, votes) if is_ownership(query, roles) else []
    if claims:
        # Roles whose best evidence is the same passage (a shared duty) are named together.
        groups: dict[str, list[str]] = {}
        for c in claims:
            groups.setdefault(c.evidence[0], []).append(c.role)
        parts = [f"{' and '.join(names)}: {duty_label(by_id[pid])} {source(by_id[pid], articles)}"
                 for pid, names in groups.items()]
        return Answer(True, claims, "; ".join(parts) + ".")
    best = hits[0]
    sentence = best.highlight.text if best.highlight else best.passage.text
    return Answer(True, [], f"{' '.join(sentence.split())} {source(best, articles)}")


def ask(searcher: Searcher, query: str, roles: RoleConfig, config: AnswerConfig = AnswerConfig(), k: int = 5,
        allow: np.ndarray | None = None, scope: np.ndarray | None = None) -> AskResult:
    """Search in hybrid mode and answer from the hits.

    allow (Searcher.search) keeps passages out before ranking, so roles, evidence, the answer sentence and
    the not-answerable check (the best cosine over allowed passages only) all come from what the caller may see;
    scope (the passages the caller may read) is what lexical statistics are taken over.
    """
    result = searcher.search(query, k=max(k, config.passages), mode="hybrid", allow=allow, scope=scope)
    votes = None
    if config.sentence_votes and is_ownership(query, roles):
        votes = sentence_votes(searcher, query, result.hits[: config.passages], roles)
    a = answer(query, result, roles, searcher.index.articles, config, votes)
    result.hits = result.hits[:k]
    return AskResult(query, a, result)
