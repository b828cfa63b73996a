"""Links from a hit to the exact spot in its article."""

from __future__ import annotations

import re
from urllib.parse import quote

from rolesearch.store.passage import Passage


def slug(text: str) -> str:
    """An anchor id for a heading, the same on the article page and in hit links."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def section_anchor(path) -> str:
    """The anchor of a section from its whole heading path, so repeated headings
    ("Key Responsibilities:" under each role) still get an anchor of their own."""
    return "--".join(slug(h) for h in path) or "section"


_LINE_MARKUP = re.compile(r"^\s*(?:[-*+•●▪◦‣]|\d+[.)])\s+")


def _rendered_words(text: str) -> str:
    """The text as a browser shows it: list markers and table bars are drawn, not text a fragment can match."""
    lines = (_LINE_MARKUP.sub("", line) for line in text.split("\n"))
    return " ".join(" ".join(w for w in line.split() if w != "|") for line in lines)


def hit_url(article: dict, passage: Passage, highlight: str | None = None) -> str:
    """The article's own url when it has one, else its page here, at the passage's section and sentence."""
    base = article.get("url") or f"/articles/{quote(passage.article_id)}"
    fragment = section_anchor(passage.section) if passage.section and not article.get("url") else ""
    snippet = _rendered_words((highlight or passage.text).strip())
    words = snippet.split()
    if words:
        # A text fragment takes the first and last words of the sentence; the browser scrolls to it.
        start = " ".join(words[:4])
        end = " ".join(words[-3:]) if len(words) > 7 else ""
        directive = ":~:text=" + quote(start, safe="") + ("," + quote(end, safe="") if end else "")
        fragment = f"{fragment}{directive}"
    return f"{base}#{fragment}" if fragment else base
