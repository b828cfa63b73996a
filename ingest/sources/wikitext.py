"""Wikitext to plain text with headings, parsed by mwparserfromhell.

`==` headings become headings, lists stay lists ("- item", "1. item", nested by indent), table
rows become "| a | b |" rows, links become their text; templates, refs, comments, categories
and file links are dropped. The lines are the ones ingest.html writes for the same page
rendered to HTML, so an export and a crawl of one wiki give the same sections.
"""

from __future__ import annotations

import re

import mwparserfromhell
from mwparserfromhell.nodes import (
    Argument,
    Comment,
    ExternalLink,
    Heading,
    HTMLEntity,
    Tag,
    Template,
    Text,
    Wikilink,
)

from rolesearch.ingest.articles import ArticleError
from rolesearch.ingest.html import TextWriter

# Tags whose content is not shown as text (refs become footnotes; the rest are media or markup).
_DROPPED_TAGS = {"ref", "references", "gallery", "templatestyles", "indicator", "imagemap", "timeline",
                 "graph", "mapframe", "maplink", "score", "math", "chem", "ce", "style", "script"}
_BLOCK_TAGS = {"p", "div", "blockquote", "center", "pre", "syntaxhighlight", "source", "poem", "dl"}
_LIST_MARKUP = {"*", "#", ";", ":"}
# Links to these namespaces show no text in the page (an image, a category at the bottom).
_MEDIA_NAMESPACES = {"file", "image", "media", "category"}
_BEHAVIOR_SWITCH = re.compile(r"__[A-Z]+__")


def wikitext_to_text(wikitext: str) -> tuple[str, tuple[tuple[int, int, str], ...]]:
    """Return (text, headings) for a page's wikitext; headings are (char offset, level, text).

    ArticleError when the parser chokes on it (so the page is skipped with the reason, not the whole source)."""
    walker = _Walker()
    try:
        walker.walk(mwparserfromhell.parse(wikitext).nodes)
    except (RecursionError, mwparserfromhell.parser.ParserError, ValueError) as exc:
        raise ArticleError(f"wikitext cannot be parsed ({type(exc).__name__}: {str(exc)[:200] or 'nesting too deep'})"
                           ) from exc
    walker.end_line()
    walker.flush_para()
    return walker.out.text(), tuple(walker.out.headings)


def inline_text(nodes) -> str:
    """The text a run of wikitext shows on one line (a heading, a table cell, a link's label)."""
    walker = _Walker()
    walker.walk(nodes)
    walker.end_line()
    return " ".join((walker.out.text() + " " + " ".join(walker.para)).split())


class _Walker:
    """Walks parsed wikitext; lines are buffered so a paragraph's lines join as MediaWiki joins them."""

    def __init__(self) -> None:
        self.out = TextWriter()
        self.buf: list[str] = []  # the current line's inline text
        self.marker = ""  # list markup at the start of the current line ("**", "#", ";")
        self.para: list[str] = []  # consecutive plain lines: one paragraph
        self.counters: dict[int, int] = {}  # numbered-list counters by depth

    def walk(self, nodes) -> None:
        for node in nodes:
            self.node(node)

    def node(self, node) -> None:
        if isinstance(node, Text):
            self.text(str(node.value))
        elif isinstance(node, Heading):
            self.end_line()
            self.flush_para()
            title = inline_text(node.title.nodes)
            start = self.out.line(title)
            if start >= 0:
                self.out.headings.append((start, node.level, " ".join(title.split())))
        elif isinstance(node, (Template, Argument, Comment)):
            return
        elif isinstance(node, HTMLEntity):
            self.buf.append(node.normalize())
        elif isinstance(node, Wikilink):
            self.buf.append(_link_text(node))
        elif isinstance(node, ExternalLink):
            if node.title is not None:
                self.buf.append(inline_text(node.title.nodes))
            elif not node.brackets:
                self.buf.append(str(node.url))
        elif isinstance(node, Tag):
            self.tag(node)

    def text(self, value: str) -> None:
        value = _BEHAVIOR_SWITCH.sub("", value)
        lines = value.split("\n")
        for i, piece in enumerate(lines):
            if i:
                self.end_line()
            if piece:
                self.buf.append(piece)

    def tag(self, node: Tag) -> None:
        name = str(node.tag).strip().lower()
        markup = node.wiki_markup
        if markup in _LIST_MARKUP and name in ("li", "dt", "dd"):
            if not "".join(self.buf).strip():
                self.buf.clear()
                self.marker += markup
            else:  # "; term : definition" on one line
                self.buf.append(" : ")
            return
        if name in _DROPPED_TAGS:
            return
        if name == "table":
            self.end_line()
            self.flush_para()
            for row in _table_rows(node):
                self.out.line("| " + " | ".join(row) + " |", blank_before=False)
            return
        if name == "br":
            self.end_line()
            return
        if name == "hr":
            self.end_line()
            self.flush_para()
            return
        if name in _BLOCK_TAGS:
            self.end_line()
            self.flush_para()
            if node.contents is not None:
                self.walk(node.contents.nodes)
            self.end_line()
            self.flush_para()
            return
        if node.contents is not None:  # bold, italics, spans, nowiki, code: their text
            self.walk(node.contents.nodes)

    def end_line(self) -> None:
        """The end of a source line: a list item is written, a plain line joins the paragraph."""
        line = " ".join("".join(self.buf).split())  # inline pieces carry their own spaces
        self.buf.clear()
        marker, self.marker = self.marker, ""
        if marker:
            self.flush_para()
            depth = len(marker)
            for d in [d for d in self.counters if d > depth]:
                del self.counters[d]
            if marker[-1] == "#":
                self.counters[depth] = self.counters.get(depth, 0) + 1
                bullet = f"{self.counters[depth]}."
            else:
                self.counters.pop(depth, None)
                bullet = "-"
            if line:
                self.out.line("  " * (depth - 1) + f"{bullet} {line}", blank_before=False)
            return
        self.counters.clear()
        if line:
            self.para.append(line)
        else:
            self.flush_para()

    def flush_para(self) -> None:
        if self.para:
            self.out.line(" ".join(self.para))
            self.para.clear()


def _link_text(link: Wikilink) -> str:
    target = str(link.title).strip()
    namespace = target.split(":", 1)[0].strip().lower() if ":" in target else ""
    if namespace in _MEDIA_NAMESPACES:
        return ""
    if link.text is not None:
        return inline_text(link.text.nodes)
    return target.lstrip(":").split("#", 1)[0] or target.lstrip("#")


def _table_rows(table: Tag) -> list[list[str]]:
    """Rows of cells; header cells written before the first `|-` form a row of their own."""
    rows: list[list[str]] = []
    loose: list[str] = []
    for node in table.contents.nodes if table.contents is not None else []:
        if not isinstance(node, Tag):
            continue
        name = str(node.tag).strip().lower()
        if name in ("th", "td"):
            loose.append(inline_text(node.contents.nodes))
        elif name == "tr":
            if loose:
                rows.append(loose)
                loose = []
            cells = [inline_text(c.contents.nodes) for c in node.contents.nodes
                     if isinstance(c, Tag) and str(c.tag).strip().lower() in ("th", "td")]
            rows.append(cells)
    if loose:
        rows.append(loose)
    return [r for r in rows if any(c.strip() for c in r)]
