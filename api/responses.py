"""Turn search results into response models (shared by the HTTP API and the CLI's --json)."""

from __future__ import annotations

from rolesearch.api.links import hit_url
from rolesearch.api.models import AnswerOut, AskResponse, FacetOut, HighlightOut, HitOut, RoleOut, SearchResponse
from rolesearch.search.answers import AskResult
from rolesearch.search.facets import facet_counts
from rolesearch.search.searcher import Hit, SearchResult


def hit_out(hit: Hit, articles: dict) -> HitOut:
    """The response form of one hit."""
    p = hit.passage
    h = hit.highlight
    return HitOut(
        rank=hit.rank,
        score=round(hit.score, 6),
        passage_id=p.id,
        article_id=p.article_id,
        title=p.title,
        section=" > ".join(p.section),
        section_path=list(p.section),
        text=p.text,
        url=hit_url(articles.get(p.article_id, {}), p, h.text if h else None),
        start=p.start,
        end=p.end,
        scores={"dense": hit.dense, "lexical": hit.lexical, "fused": hit.fused},
        highlight=HighlightOut(text=h.text, start=h.start, end=h.end) if h else None,
    )


def search_response(result: SearchResult, articles: dict) -> SearchResponse:
    """The body of /search for a result."""
    return SearchResponse(
        query=result.query,
        mode=result.mode,
        hits=[hit_out(h, articles) for h in result.hits],
        index_version=result.index_version,
        took_ms=result.took_ms,
    )


def ask_response(result: AskResult, articles: dict) -> AskResponse:
    """The body of /ask for an answer."""
    a = result.answer
    return AskResponse(
        query=result.query,
        answer=AnswerOut(answerable=a.answerable, text=a.text, reason=a.reason,
                         roles=[RoleOut(role=c.role, confidence=c.confidence, evidence=c.evidence) for c in a.roles]),
        hits=[hit_out(h, articles) for h in result.result.hits],
        index_version=result.result.index_version,
        took_ms=result.result.took_ms,
    )


def facets_out(hits: list[Hit], articles: dict) -> dict[str, list[FacetOut]]:
    """The facets of a response: counts over these hits per article, tag and source."""
    return {f: [FacetOut(value=v.value, label=v.label, count=v.count) for v in values]
            for f, values in facet_counts(hits, articles).items()}
