"""Request and response models of the HTTP API (and of `rolesearch search --json`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

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


class SearchResponse(BaseModel):
    """Hits for a query from one index version."""

    query: str
    mode: str
    hits: list[HitOut]
    index_version: str
    took_ms: float


class HealthResponse(BaseModel):
    """Liveness with what is being served."""

    status: str
    index_version: str | None
    built_at: str | None
    articles: int
    passages: int
    model: str


class ReadyResponse(BaseModel):
    """Readiness: an index is loaded and searches can be answered."""

    status: Literal["ready"]
    index_version: str


class ErrorResponse(BaseModel):
    """The shape of every error."""

    detail: str | list | dict
