"""Who may read what: an article's access groups against the groups of the person searching."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Reader:
    """The groups a request is answered for; `everything` reads every article (authentication off)."""

    groups: frozenset[str] = frozenset()
    everything: bool = False

    @classmethod
    def of(cls, groups: Iterable[str]) -> "Reader":
        """A reader in these groups (blank names dropped)."""
        return cls(frozenset(g.strip() for g in groups if g and g.strip()))


EVERYONE = Reader(everything=True)  # no authentication: every article is public, as before permissions


def can_read(access: Iterable[str] | None, reader: Reader) -> bool:
    """An article is readable when it is public (no groups) or the reader is in one of its groups."""
    groups = tuple(access or ())
    return reader.everything or not groups or not reader.groups.isdisjoint(groups)


def readable_articles(articles: dict, reader: Reader) -> set[str]:
    """Ids of the manifest's articles this reader may see."""
    return {aid for aid, meta in articles.items() if can_read(meta.get("access"), reader)}
