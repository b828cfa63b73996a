"""The mediawiki source: a Special:Export / dumpBackup.php XML file (schema 0.10 or 0.11), read as a stream.

Main-namespace pages only, the latest revision of each, redirects skipped. Page URLs are built
from the export's siteinfo `<base>` (the main page's URL).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from rolesearch.ingest.articles import ArticleError, id_slug
from rolesearch.ingest.sources.base import Item, Skipped, SourceError, check_size, page_article
from rolesearch.ingest.sources.wikitext import wikitext_to_text

SCHEMAS = ("0.10", "0.11")
_NS_PREFIX = "{http://www.mediawiki.org/xml/export-"


@dataclass
class MediaWikiSource:
    """Pages of a MediaWiki XML export file."""

    location: str
    kind: str = "mediawiki"

    def read(self) -> Iterator[Item]:
        """Each main-namespace page's latest revision as an article; SourceError (with line and column)
        when the XML is malformed or truncated."""
        path = Path(self.location)
        if not path.is_file():
            raise SourceError(f"MediaWiki export {path} does not exist")
        try:
            yield from self._pages(path)
        except ET.ParseError as exc:
            line, column = exc.position
            raise SourceError(f"MediaWiki export {path} is malformed or truncated at line {line}, "
                              f"column {column} ({exc})") from exc

    def _pages(self, path: Path) -> Iterator[Item]:
        base: str | None = None
        schema_checked = False
        # iterparse reads the file in pieces; each <page> is cleared once handled, so memory stays flat.
        for event, elem in ET.iterparse(path, events=("start", "end")):
            tag = _local(elem.tag)
            if event == "start":
                if not schema_checked:
                    _check_schema(path, elem)
                    schema_checked = True
                continue
            if tag == "siteinfo":
                base = _text(elem, "base")
                elem.clear()
            elif tag == "page":
                item = self._page(path, elem, base)
                elem.clear()
                if item is not None:
                    yield item

    def _page(self, path: Path, page: ET.Element, base: str | None) -> Item | None:
        title = _text(page, "title") or ""
        if _text(page, "ns") != "0" or _child(page, "redirect") is not None:
            return None
        revision = _latest_revision(page)
        where = f"{path.name}: {title}"
        if revision is None:
            return Skipped(where, "page has no revision")
        text_el = _child(revision, "text")
        if text_el is None or text_el.get("deleted") is not None:
            return Skipped(where, "the latest revision's text is not in the export (deleted or omitted)")
        model = _text(revision, "model") or "wikitext"
        if model != "wikitext":
            return Skipped(where, f"page content model is {model}, not wikitext")
        wikitext = text_el.text or ""
        if wikitext.lstrip()[:9].upper() == "#REDIRECT":
            return None
        raw = wikitext.encode("utf-8")
        try:
            check_size(raw)  # before parsing: an oversized page is not worth the time
            text, headings = wikitext_to_text(wikitext)
            # The title is part of what the page's hash covers: a move is a change of title.
            return page_article(
                id=id_slug(title.replace(" ", "_")), path=where, title=title, text=text, headings=headings,
                raw=title.encode("utf-8") + b"\n" + raw, source=self.kind, url=page_url(base, title),
                date=_text(revision, "timestamp"), meta={"revision": _text(revision, "id")}, namespace="Main",
            )
        except ArticleError as exc:
            return Skipped(where, str(exc))


def page_url(base: str | None, title: str) -> str | None:
    """A page's URL from siteinfo's base (the main page's URL), as MediaWiki writes titles in URLs."""
    if not base:
        return None
    encoded = quote(title.replace(" ", "_"), safe="/:;@$!*(),~")
    parts = urlsplit(base)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k == "title" for k, _ in query):  # .../index.php?title=Main_Page
        query = [(k, title.replace(" ", "_") if k == "title" else v) for k, v in query]
        return urlunsplit(parts._replace(query=urlencode(query), fragment=""))
    head = parts.path.rsplit("/", 1)[0]
    return urlunsplit(parts._replace(path=f"{head}/{encoded}", query="", fragment=""))


def _check_schema(path: Path, root: ET.Element) -> None:
    if _local(root.tag) != "mediawiki" or not root.tag.startswith(_NS_PREFIX):
        raise SourceError(f"{path} is not a MediaWiki XML export (root element {root.tag})")
    version = root.get("version") or root.tag[len(_NS_PREFIX):].rstrip("/}")
    if version not in SCHEMAS:
        raise SourceError(f"{path}: export schema {version} is not supported (only {', '.join(SCHEMAS)})")


def _latest_revision(page: ET.Element) -> ET.Element | None:
    revisions = [r for r in page if _local(r.tag) == "revision"]
    if not revisions:
        return None
    # A full-history dump lists revisions oldest first, but the timestamp decides; ISO 8601 sorts as text.
    return max(enumerate(revisions), key=lambda ir: (_text(ir[1], "timestamp") or "", ir[0]))[1]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(elem: ET.Element, name: str) -> ET.Element | None:
    for child in elem:
        if _local(child.tag) == name:
            return child
    return None


def _text(elem: ET.Element, name: str) -> str | None:
    child = _child(elem, name)
    return child.text if child is not None else None
