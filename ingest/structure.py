"""Find the structure in an article's text: headings, list items, table rows and paragraphs.

The articles are plain text with structure in it (Markdown headings, title-case heading
lines, numbered section titles, bulleted and numbered lists, one article with single
newlines only), so structure is read line by line with offsets into the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

BlockKind = Literal["heading", "item", "row", "para"]

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_NUMBERED_TITLE = re.compile(r"^(\d+(?:\.\d+)*)\.?\s+(\S.*)$")
_ITEM = re.compile(r"^(\s*)(?:[-*+•●▪◦‣]|\d+[.)])\s+\S")
_ROW = re.compile(r"^\s*\|.*\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?[\s:|-]+\|?\s*$")
_WORD = re.compile(r"[A-Za-z][\w'’/&.-]*")
_MINOR = {
    "a", "an", "the", "and", "or", "but", "nor", "of", "to", "for", "in", "on", "at", "by",
    "with", "from", "vs", "vs.", "versus", "as", "into", "is", "are", "be", "between", "your",
    "you", "its", "it", "their", "our", "about", "&", "via", "per", "do", "not", "than",
}


@dataclass
class Block:
    """A unit of the article: a heading, a list item (with its nested items), a table row or a paragraph."""

    kind: BlockKind
    start: int
    end: int
    level: int = 0  # heading level, or list indent
    text: str = ""
    children: list["Block"] = field(default_factory=list)


def parse_blocks(text: str, title: str | None = None, headings=None) -> list[Block]:
    """Split text into blocks with character offsets; nested list items are folded into their parent."""
    if headings is not None:
        return _fold_items(_blocks_with_known_headings(text, headings))
    lines = _lines(text)
    blocks: list[Block] = []
    numbered_level = 0  # level of the enclosing numbered section, for title-case subheadings
    last_heading_level = 1
    title_key = _key(title) if title else None
    para: Block | None = None

    def close_para() -> None:
        nonlocal para
        if para is not None:
            blocks.append(para)
            para = None

    for start, end, line in lines:
        stripped = line.strip()
        if not stripped:
            close_para()
            continue
        indent = len(line) - len(line.lstrip())
        lstart = start + indent
        lend = start + len(line.rstrip())
        heading = _heading_level(stripped, indent, numbered_level, last_heading_level)
        if heading and title_key and _key(heading[1]) == title_key:
            heading = (1, heading[1])  # the title repeated in the body: not a section
        if heading:
            close_para()
            level, htext = heading
            if _NUMBERED_TITLE.match(stripped) and not _MD_HEADING.match(stripped):
                numbered_level = level
            elif _MD_HEADING.match(stripped):
                numbered_level = 0
            if not stripped.endswith(":"):
                last_heading_level = level
            blocks.append(Block("heading", lstart, lend, level, htext))
            continue
        if _ROW.match(line):
            close_para()
            if not _TABLE_RULE.match(line):
                blocks.append(Block("row", lstart, lend, indent, stripped))
            continue
        if _ITEM.match(line):
            close_para()
            blocks.append(Block("item", lstart, lend, indent, stripped))
            continue
        if para is not None and para.kind == "para":
            para.end = lend
            para.text += " " + stripped
        elif blocks and blocks[-1].kind == "item" and indent > blocks[-1].level and para is None:
            # a wrapped continuation line of a list item
            blocks[-1].end = lend
            blocks[-1].text += " " + stripped
        else:
            para = Block("para", lstart, lend, 0, stripped)
    close_para()
    return _fold_items(blocks)


def _lines(text: str) -> list[tuple[int, int, str]]:
    out, pos = [], 0
    for line in text.split("\n"):
        out.append((pos, pos + len(line), line))
        pos += len(line) + 1
    return out


def _key(s: str) -> str:
    return re.sub(r"\W+", " ", s).strip().lower()


def _heading_level(line: str, indent: int, numbered_level: int, last_level: int):
    """Return (level, heading text) when the line is a heading, else None."""
    md = _MD_HEADING.match(line)
    if md:
        return len(md.group(1)), md.group(2).strip()
    if len(line) > 100 or line[-1] in ".,;!…":
        return None
    num = _NUMBERED_TITLE.match(line)
    if num and indent == 0:
        words = line.split()
        if len(words) <= 12 and num.group(2)[0].isupper():
            return 1 + num.group(1).count(".") + 1, line
        return None
    if _ITEM.match(line) or _ROW.match(line):
        return None
    if line.endswith(":"):
        label = line[:-1]
        if len(label.split()) <= 5 and _is_title_case(label):
            return last_level + 1, line
        return None
    if indent == 0 and _is_title_case(line):
        return (numbered_level + 1 if numbered_level else 2), line
    return None


def _is_title_case(line: str) -> bool:
    letters = sum(c.isalpha() for c in line)
    visible = sum(not c.isspace() for c in line)
    if not visible or letters / visible < 0.6:
        return False
    words = _WORD.findall(line)
    if not 1 <= len(words) <= 12 or not words[0][0].isupper():
        return False
    significant = [w for w in words if w.lower() not in _MINOR]
    if not significant:
        return False
    capital = sum(w[0].isupper() for w in significant)
    return capital / len(significant) >= 0.75


def _blocks_with_known_headings(text: str, headings) -> list[Block]:
    """Blocks for text whose headings are known (from HTML): the rest is parsed as plain text."""
    blocks: list[Block] = []
    pos = 0
    for start, level, htext in list(headings) + [(len(text), 0, "")]:
        segment = text[pos:start]
        for b in parse_blocks_plain(segment):
            b.start += pos
            b.end += pos
            blocks.append(b)
        if level:
            blocks.append(Block("heading", start, start + len(htext), level, htext))
            pos = start + len(htext)
    return blocks


def parse_blocks_plain(text: str) -> list[Block]:
    """Blocks of text that has no headings of its own: items, rows and paragraphs only."""
    out: list[Block] = []
    for start, end, line in _lines(text):
        stripped = line.strip()
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        kind: BlockKind = "row" if _ROW.match(line) else "item" if _ITEM.match(line) else "para"
        out.append(Block(kind, start + indent, start + len(line.rstrip()), indent, stripped))
    return out


def _fold_items(blocks: list[Block]) -> list[Block]:
    """Attach deeper-indented items to the item above them, so a list item stays with its sub-items."""
    out: list[Block] = []
    for b in blocks:
        if b.kind == "item" and out and out[-1].kind == "item" and b.level > out[-1].level:
            parent = out[-1]
            parent.children.append(b)
            parent.end = b.end
            continue
        out.append(b)
    return out
