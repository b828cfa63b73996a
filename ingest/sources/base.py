"""The one interface every source kind implements: yield articles, and the pages it could not read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Protocol, Union

from rolesearch.ingest.articles import MAX_ARTICLE_BYTES, Article, ArticleError, content_hash


class SourceError(ValueError):
    """A source that cannot be read at all (a malformed export, a missing folder): the build fails, nothing is published."""


@dataclass(frozen=True)
class Skipped:
    """A page the source found but could not index, with the reason (reported in the build summary)."""

    path: str
    reason: str


@dataclass(frozen=True)
class Unchanged:
    """An article whose bytes hash as the previous version recorded: it is not parsed again, its passages are
    reused. Only sources that offer read_changed yield it; read_sources resolves its access groups."""

    id: str
    path: str
    content_hash: str
    access: tuple[str, ...] = ()


Item = Union[Article, Skipped, Unchanged]
# Issue 13's hook: groups for an article the source itself knows no groups for (a mapping file
# from title / URL / path pattern to groups). Applied by ingest.sources.read_sources.
AccessHook = Callable[[Article], tuple[str, ...]]


class Source(Protocol):
    """A kind of place articles come from (folder, mediawiki, confluence, crawl).

    Optional capabilities, used wherever a source has them (ingest.sources): read_changed(known) yields
    Unchanged for what the published index already holds; notify(page_ids) takes page ids a wiki pushed;
    published() is called once the version built from the last read is published (a sync state moves then);
    stats (a dict) says what the last read did and is printed in the ingest summary."""

    kind: str
    location: str

    def read(self) -> Iterator[Item]:
        """Every article of the source, or a Skipped for each page that cannot be indexed; raise SourceError
        when the source as a whole is unreadable."""
        ...


def check_size(raw: bytes) -> None:
    """ArticleError when a page is over the size limit that applies to article files too."""
    if len(raw) > MAX_ARTICLE_BYTES:
        raise ArticleError(f"page is {len(raw):,} bytes, over the {MAX_ARTICLE_BYTES:,}-byte limit")


def page_article(*, id: str, path: str, title: str, text: str, headings, raw: bytes, source: str,
                 url: str | None = None, date: str | None = None, access: tuple[str, ...] = (),
                 section_prefix: tuple[str, ...] = (), meta: dict | None = None,
                 namespace: str | None = None) -> Article:
    """An Article from one wiki page; ArticleError when it is over the size limit or has no text.

    raw is what identifies the page's content (its wikitext, its HTML): its hash decides "changed".
    """
    check_size(raw)
    if not text.strip():
        raise ArticleError("page has no text")
    return Article(
        id=id, path=path, title=title, text=text, content_hash=content_hash(raw), url=url, date=date,
        access=access, source=source, headings=tuple(headings) if headings is not None else None,
        meta=meta or {}, section_prefix=section_prefix, namespace=namespace,
    )
