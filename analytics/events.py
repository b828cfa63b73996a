"""What is recorded: a search, a click on one of its hits, and a judgement of its answer or a hit."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class SearchEvent:
    """One /search or /ask as it was answered; query is None when query text is not kept."""

    id: str
    ts: float
    endpoint: str  # "search" or "ask"
    query: str | None
    query_hash: str
    mode: str
    filters: dict
    hits: tuple[str, ...]  # passage ids, rank 1 first
    answered: bool  # /ask: answerable; /search: a hit at or above the answer threshold
    abstained: bool | None  # /ask only
    answer: str | None
    evidence: tuple[str, ...]
    latency_ms: float
    index_version: str
    reader: str | None

    table = "searches"

    def row(self) -> tuple:
        return (self.id, self.ts, self.endpoint, self.query, self.query_hash, self.mode,
                json.dumps(self.filters, sort_keys=True) if self.filters else None, json.dumps(list(self.hits)),
                int(self.answered), None if self.abstained is None else int(self.abstained), self.answer,
                json.dumps(list(self.evidence)) if self.evidence else None, self.latency_ms, self.index_version,
                self.reader)


@dataclass(frozen=True)
class Click:
    """A reader opened the hit at rank of search search_id."""

    search_id: str
    ts: float
    rank: int
    reader: str | None

    table = "clicks"

    def row(self) -> tuple:
        return (self.search_id, self.ts, self.rank, self.reader)


@dataclass(frozen=True)
class Judgement:
    """Thumbs up (+1) or down (-1) on the answer of search_id (rank None) or on its hit at rank."""

    search_id: str
    ts: float
    rank: int | None
    judgement: int
    comment: str | None
    reader: str | None

    table = "feedback"

    def row(self) -> tuple:
        return (self.search_id, self.ts, self.rank, self.judgement, self.comment, self.reader)


Event = SearchEvent | Click | Judgement
INSERTS = {
    "searches": "INSERT OR IGNORE INTO searches VALUES (" + ",".join("?" * 15) + ")",
    "clicks": "INSERT INTO clicks VALUES (?,?,?,?)",
    "feedback": "INSERT INTO feedback VALUES (?,?,?,?,?,?)",
}
