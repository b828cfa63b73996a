"""Passage: one row of a version's passage table, as chunking makes it and search returns it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Passage:
    """One retrievable unit: a slice of an article's text with its place in the article."""

    id: str
    article_id: str
    title: str
    section: tuple[str, ...]
    start: int
    end: int
    text: str
    tokens: int
    hash: str  # of embed_text(): equal hashes embed to equal vectors
    roles: tuple[str, ...] = ()  # roles the passage attributes its duties to (ingest.roles)

    def to_dict(self) -> dict:
        # Field by field: dataclasses.asdict deep-copies recursively, a tenth of a 1M-passage build's writing.
        return {"id": self.id, "article_id": self.article_id, "title": self.title, "section": list(self.section),
                "start": self.start, "end": self.end, "text": self.text, "tokens": self.tokens, "hash": self.hash,
                "roles": list(self.roles)}

    @classmethod
    def from_dict(cls, d: dict) -> "Passage":
        return cls(**{**d, "section": tuple(d["section"]), "roles": tuple(d.get("roles") or ())})
