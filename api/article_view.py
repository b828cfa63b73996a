"""An indexed article laid out for its page: blocks of its own text, an anchor on each section heading."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rolesearch.api.links import section_anchor, slug
from rolesearch.ingest.articles import Article, ArticleError, read_article
from rolesearch.ingest.structure import parse_blocks
from rolesearch.search.access import Reader, can_read


class ArticleMissing(Exception):
    """The article is not in the served index, or its file is gone from the corpus folder."""


class ArticleRefused(Exception):
    """The article's file now names groups the reader is not in (restricted since it was indexed)."""


@dataclass(frozen=True)
class PageBlock:
    """A heading (with its anchor id and level) or a run of the article's text, kept verbatim."""

    kind: str  # "heading", "item", "row" or "para"
    text: str
    level: int = 0
    anchor: str | None = None


@dataclass(frozen=True)
class ArticlePage:
    """What the article page shows."""

    id: str
    title: str
    url: str | None
    publisher: str | None
    date: str | None
    tags: tuple[str, ...]
    blocks: tuple[PageBlock, ...]
    changed_since_indexed: bool

    @property
    def sections(self) -> list[PageBlock]:
        return [b for b in self.blocks if b.kind == "heading"]


def load_article_page(corpus_dir: Path, article_id: str, indexed: dict, reader: Reader) -> ArticlePage:
    """Read an indexed article (manifest entry `indexed`) from the folder it was indexed from and lay it out.

    The file as it is now is shown only when both its groups now (front matter) and the indexed ones
    (which include the access map's) admit the reader: an article restricted since the last ingest is
    not served whole meanwhile. ArticleRefused when they do not.
    """
    source = indexed.get("source", "folder")
    if source != "folder":  # a wiki page lives in its wiki; hits and /articles link there
        where = f"; its page is {indexed['url']}" if indexed.get("url") else ""
        raise ArticleMissing(f"article {article_id!r} comes from a {source} source and is not shown here{where}")
    # The folder recorded at ingest; versions built before it was recorded fall back to the corpus folder.
    folder = Path(indexed.get("origin") or corpus_dir)
    path = folder / indexed["path"]
    try:
        inside = path.resolve().is_relative_to(folder.resolve())
    except OSError:
        inside = False
    if not inside:  # a symlink or ".." out of the folder is never followed
        raise ArticleMissing(f"article {article_id!r} is indexed but its file lies outside its folder")
    try:
        article = read_article(path, folder)
    except ArticleError as exc:
        raise ArticleMissing(f"article {article_id!r} is indexed but its file cannot be read: {exc}") from exc
    if not can_read(article.access, reader):
        raise ArticleRefused(article_id)
    return article_page(article, changed=article.content_hash != indexed.get("hash"))


def article_page(article: Article, changed: bool = False) -> ArticlePage:
    """Lay out an article: the same headings the chunker saw, so section anchors match hit links."""
    blocks: list[PageBlock] = []
    used: dict[str, int] = {}
    stack: list[tuple[int, str]] = []
    for b in parse_blocks(article.text, article.title, article.headings):
        if b.kind == "heading":
            # The same heading path the chunker records for passages below this heading.
            while stack and stack[-1][0] >= b.level:
                stack.pop()
            stack.append((b.level, b.text))
            path = [text for level, text in stack if level > 1]
            anchor = section_anchor(path) if path else slug(b.text)
            # Links name the first of two identical paths; the later one still needs an id of its own.
            used[anchor] = used.get(anchor, 0) + 1
            if used[anchor] > 1:
                anchor = f"{anchor}-{used[anchor]}"
            blocks.append(PageBlock("heading", b.text, b.level, anchor))
        else:
            # Verbatim (list markers too): a link's text fragment quotes the article's own words.
            blocks.append(PageBlock(b.kind, article.text[b.start:b.end]))
    return ArticlePage(
        id=article.id, title=article.title, url=article.url, publisher=article.publisher, date=article.date,
        tags=article.tags, blocks=tuple(blocks), changed_since_indexed=changed,
    )
