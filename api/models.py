"""Request and response models of the HTTP API (and of `rolesearch search --json`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from rolesearch.store.versions import VersionInfo

MAX_QUERY_CHARS = 1000
MAX_K = 50
# What _not_blank enforces, stated in the schema for clients and schema-driven tests: no control
# characters but tab and newlines, and at least one character that is not a space. (Lone surrogates,
# also refused, cannot be written in the regex dialects schema validators use.)
_ALLOWED = r"[^\x00-\x08\x0b\x0c\x0e-\x1f]"
_VISIBLE = r"[^\x00-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
QUERY_PATTERN = f"^{_ALLOWED}*{_VISIBLE}{_ALLOWED}*$"


class SearchRequest(BaseModel):
    """A search: the question, how many hits, and which ranking."""

    model_config = {"extra": "forbid"}

    q: str = Field(..., min_length=1, max_length=MAX_QUERY_CHARS, description="The question, 1 to 1,000 characters",
                   json_schema_extra={"pattern": QUERY_PATTERN})
    k: int = Field(5, ge=1, le=MAX_K, description="Number of hits, 1 to 50")
    mode: Literal["dense", "lexical", "hybrid"] = Field("hybrid", description="Ranking: dense, lexical or their fusion")
    # Filters, each repeatable (?tag=a&tag=b): any of a facet's values, all facets given. Unknown values match nothing.
    article: list[str] = Field([], max_length=50, description="Only these article ids")
    tag: list[str] = Field([], max_length=50, description="Only articles with one of these tags")
    source: list[str] = Field([], max_length=50, description="Only articles from these sources (e.g. folder)")
    facets: bool = Field(False, description="Also count the top hits per article, tag and source (the page's facets)")

    @field_validator("q")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("q must not be blank")
        if any(ord(c) < 32 and c not in "\t\n\r" for c in v):
            raise ValueError("q must not contain control characters")
        if any(0xD800 <= ord(c) <= 0xDFFF for c in v):
            raise ValueError("q must be valid Unicode text (it holds a lone surrogate)")
        return v


class HighlightOut(BaseModel):
    """The sentence(s) of a passage that best answer the query; offsets are within the passage text."""

    text: str
    start: int
    end: int


class HitOut(BaseModel):
    """One ranked passage."""

    rank: int
    score: float
    passage_id: str
    article_id: str
    title: str
    section: str = Field(description="Section path joined with ' > '")
    section_path: list[str]
    text: str
    url: str
    start: int = Field(description="Character offset of the passage in the article's text")
    end: int
    scores: dict[str, float | None] = Field(description="Component scores: dense, lexical, fused")
    highlight: HighlightOut | None = Field(None, description="The best-answering sentence of the passage")


class FacetOut(BaseModel):
    """One facet value and how many of the top hits have it."""

    value: str = Field(description="What to filter by (?article=, ?tag=, ?source=)")
    label: str
    count: int


class SearchResponse(BaseModel):
    """Hits for a query from one index version."""

    query: str
    mode: str
    hits: list[HitOut]
    index_version: str
    took_ms: float
    facets: dict[str, list[FacetOut]] | None = Field(
        None, description="With facets=true: counts per article, tag and source over the top hits the caller may see")
    search_id: str | None = Field(None, description="Id of this search for POST /feedback and /feedback/click "
                                  "(null when analytics is off)")


class RoleOut(BaseModel):
    """A role the evidence names as owning the duty asked about."""

    role: str
    confidence: float = Field(description="Share of the relevance-weighted evidence, 0 to 1")
    evidence: list[str] = Field(description="Ids of the passages that attribute the duty to this role, best first")


class AnswerOut(BaseModel):
    """The answer: whether the articles answer the question, the owning roles, and one plain sentence."""

    answerable: bool
    roles: list[RoleOut]
    text: str
    reason: str | None = Field(None, description="Why the question is not answerable (null when it is)")


class AskResponse(BaseModel):
    """An answer with the hits it was built from (the same hit objects as /search)."""

    query: str
    answer: AnswerOut
    hits: list[HitOut]
    index_version: str
    took_ms: float
    facets: dict[str, list[FacetOut]] | None = Field(None, description="As in SearchResponse")
    search_id: str | None = Field(None, description="Id of this search for POST /feedback and /feedback/click "
                                  "(null when analytics is off)")


SEARCH_ID_PATTERN = r"^[0-9a-f]{32}$"


class ClickRequest(BaseModel):
    """A reader opened a hit: which search, which rank (the page sends it with navigator.sendBeacon)."""

    model_config = {"extra": "forbid"}

    search_id: str = Field(..., pattern=SEARCH_ID_PATTERN, description="search_id of the /search or /ask response")
    rank: int = Field(..., ge=1, le=MAX_K, description="Rank of the hit opened, from 1")


class FeedbackRequest(BaseModel):
    """A thumbs up or down on a search's answer (no rank) or on one of its hits, with an optional comment."""

    model_config = {"extra": "forbid"}

    search_id: str = Field(..., pattern=SEARCH_ID_PATTERN, description="search_id of the /search or /ask response")
    rank: int | None = Field(None, ge=1, le=MAX_K, description="Rank of the hit judged; leave out for the answer")
    judgement: Literal["up", "down"]
    comment: str | None = Field(None, max_length=500, description="Optional, up to 500 characters")


class FeedbackAccepted(BaseModel):
    """The event was queued for the analytics database (or dropped, counted in /metrics, when it is full)."""

    recorded: bool


class HealthResponse(BaseModel):
    """Liveness with what is being served."""

    status: str
    index_version: str | None
    built_at: str | None
    articles: int = Field(description="Articles the caller may read")
    passages: int = Field(description="Passages of those articles")
    model: str
    loaded_at: str | None = Field(None, description="When the served version was swapped in")
    reload_error: str | None = Field(None, description="Why the last published version could not be served")
    sync: SyncOut | None = Field(None, description="The background sync, once one has run or is set to")


class ReindexResponse(BaseModel):
    """The state of the background reindex started by POST /admin/reindex."""

    state: Literal["idle", "running", "succeeded", "failed"]
    phase: str | None = Field(None, description="waiting, reading, embedding, writing or publishing")
    started_at: str | None
    finished_at: str | None
    embedded: int = Field(description="Texts (passages and their sentences) embedded so far")
    to_embed: int = Field(description="Texts (passages and their sentences) this reindex has to embed")
    summary: dict | None = Field(None, description="The ingest summary, as `rolesearch ingest --json` prints it")
    error: str | None


class SyncOut(BaseModel):
    """The background sync (serve --sync-every, POST /admin/notify): the last run and how it went."""

    state: Literal["idle", "running", "succeeded", "failed"]
    trigger: str | None = Field(None, description="What started the last sync: interval or notify")
    interval: float = Field(description="Seconds between syncs; 0: only when a wiki pushes a change")
    started_at: str | None
    finished_at: str | None
    seconds: float | None = Field(None, description="How long the last sync took")
    pages_changed: int | None = Field(None, description="Pages added, changed or removed by the last successful sync")
    last_success_at: str | None = None
    error: str | None = Field(None, description="Why the last sync failed (the served version is kept)")
    failures: int = Field(0, description="Failed syncs in a row (retried with backoff)")


class NotifyRequest(BaseModel):
    """Pages a wiki changed (saved, deleted, moved, restored): synced soon, bursts coalesced."""

    model_config = {"extra": "forbid"}

    pages: list[int] = Field([], max_length=1000, description="Page ids the wiki changed")
    event: str | None = Field(None, max_length=40, description="What happened (edit, delete, move, undelete), logged")


class NotifyResponse(BaseModel):
    """The notification was queued; the sync follows in the background."""

    queued: int
    sync: SyncOut


class ReadyResponse(BaseModel):
    """Readiness: an index is loaded and searches can be answered."""

    status: Literal["ready"]
    index_version: str


class ErrorResponse(BaseModel):
    """The shape of every error."""

    detail: str | list | dict


class RollbackRequest(BaseModel):
    """Which kept index version to publish again."""

    model_config = {"extra": "forbid"}

    version: str = Field(..., min_length=1, max_length=200, description="A version id from `rolesearch versions`")
    allow_wider_access: bool = Field(False, description="Publish it even when it lets more readers see some "
                                     "articles than the published version does (recorded in the audit log)")


class RollbackResponse(BaseModel):
    """The version now published and the one it replaced."""

    published: str
    previous: str | None
    versions: list[VersionInfo] = Field(description="The kept versions after the rollback, oldest first")
