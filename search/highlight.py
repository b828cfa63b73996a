"""The sentence of a passage that best answers a query, with its offsets in the passage."""

from __future__ import annotations

from typing import Callable, Mapping, NamedTuple, Sequence

from rolesearch.store.lexical import analyze
from rolesearch.store.sentences import sentence_spans

_MIN_WORDS = 6  # a shorter best sentence (a label, a heading-like line) takes its neighbour along


class Highlight(NamedTuple):
    """A span of a passage: its text and character offsets within the passage text."""

    text: str
    start: int
    end: int


def highlight(query: str, text: str, idf: Callable[[list[str]], Mapping[str, float]] | None = None) -> Highlight:
    """The sentence sharing the most (idf-weighted) query terms; the first sentence when none shares any."""
    return best_sentence(query_terms(query, idf), text)


def query_terms(query: str, idf: Callable[[list[str]], Mapping[str, float]] | None = None) -> dict[str, float]:
    """The query's analysed terms with their weights (idf when given, else 1): computed once per query."""
    terms = sorted(set(analyze([query])[0]))
    weights = idf(terms) if idf and terms else {}
    return {t: weights.get(t, 1.0) for t in terms}


def best_sentence(terms: Mapping[str, float], text: str) -> Highlight:
    """The sentence of text sharing the most weighted terms (see query_terms)."""
    return best_sentences(terms, [text])[0]


def best_sentences(terms: Mapping[str, float], texts: Sequence[str]) -> list[Highlight]:
    """best_sentence of each text, with one call to the analyser for all their sentences."""
    spans = [sentence_spans(text) for text in texts]
    tokens = iter(analyze([text[s:e] for text, sp in zip(texts, spans) for s, e in sp]) if any(spans) else [])
    return [_pick(terms, text, sp, [frozenset(next(tokens)) for _ in sp]) for text, sp in zip(texts, spans)]


def _pick(terms: Mapping[str, float], text: str, spans: Sequence[tuple[int, int]],
          sentences: Sequence[frozenset[str]]) -> Highlight:
    """The best of text's sentences (spans, with their analysed terms); the whole text when it has none."""
    if not spans:
        return Highlight(text, 0, len(text))

    def score(tokens: frozenset[str]) -> float:
        # In the query's term order: a set's order follows string hashes, which change per process, and a float
        # sum in another order can break a tie between two sentences the other way.
        return sum(w for t, w in terms.items() if t in tokens)

    scores = [score(tokens) for tokens in sentences]
    best = max(range(len(spans)), key=lambda i: (scores[i], -i))
    start, end = spans[best]
    if len(text[start:end].split()) < _MIN_WORDS and best + 1 < len(spans):
        end = spans[best + 1][1]
    return Highlight(text[start:end], start, end)
