"""Turn an HTML article into plain text, keeping its headings, lists and table rows as lines."""

from __future__ import annotations

from bs4 import BeautifulSoup, NavigableString, Tag

_SKIP = {"script", "style", "noscript", "template", "nav", "footer", "form", "svg", "button", "head"}
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_BLOCKS = {"p", "div", "section", "article", "main", "blockquote", "pre", "figcaption", "dd", "dt", "header"}


def html_to_text(html: str) -> tuple[str | None, str, tuple[tuple[int, int, str], ...]]:
    """Return (title, text, headings) where headings are (char offset, level, text) in text."""
    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    root = soup.body or soup
    out = TextWriter()
    _walk(root, out, list_depth=0)
    text = out.text()
    return (title or None), text, tuple(out.headings)


class TextWriter:
    """Text built line by line, with the offsets of the heading lines (shared by the wiki sources)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.headings: list[tuple[int, int, str]] = []

    def line(self, text: str, blank_before: bool = True) -> int:
        """Append a line of text (collapsed whitespace); return its start offset."""
        text = " ".join(text.split())
        if not text:
            return -1
        if self.parts:
            sep = "\n\n" if blank_before else "\n"
            self._add(sep)
        start = self.length
        self._add(text)
        return start

    def _add(self, s: str) -> None:
        self.parts.append(s)
        self.length += len(s)

    def text(self) -> str:
        return "".join(self.parts) + ("\n" if self.parts else "")


def _inline_text(tag: Tag) -> str:
    return tag.get_text(" ", strip=True)


def _walk(node: Tag, out: TextWriter, list_depth: int) -> None:
    buffer: list[str] = []

    def flush() -> None:
        if buffer:
            out.line(" ".join(buffer))
            buffer.clear()

    for child in node.children:
        if isinstance(child, NavigableString):
            if type(child) is NavigableString and child.strip():
                buffer.append(child.strip())
            continue
        if not isinstance(child, Tag):
            continue
        name = child.name.lower()
        if name in _SKIP:
            continue
        if name in _HEADINGS:
            flush()
            text = _inline_text(child)
            start = out.line(text)
            if start >= 0:
                out.headings.append((start, _HEADINGS[name], " ".join(text.split())))
        elif name in ("ul", "ol"):
            flush()
            for i, item in enumerate(child.find_all("li", recursive=False), start=1):
                marker = f"{i}." if name == "ol" else "-"
                nested = [c for c in item.find_all(["ul", "ol"], recursive=False)]
                for n in nested:
                    n.extract()
                out.line("  " * list_depth + f"{marker} {_inline_text(item)}", blank_before=False)
                for n in nested:
                    _walk_list(n, out, list_depth + 1)
        elif name == "table":
            flush()
            for row in child.find_all("tr"):
                cells = [c.get_text(" ", strip=True) for c in row.find_all(["th", "td"])]
                if any(cells):
                    out.line("| " + " | ".join(cells) + " |", blank_before=False)
        elif name == "br":
            flush()
        elif name in _BLOCKS or name == "li":
            flush()
            _walk(child, out, list_depth)
        else:
            text = child.get_text(" ", strip=True)
            if text:
                buffer.append(text)
    flush()


def _walk_list(lst: Tag, out: TextWriter, depth: int) -> None:
    wrapper = BeautifulSoup("", "html.parser").new_tag("div")
    wrapper.append(lst)
    _walk(wrapper, out, depth)
