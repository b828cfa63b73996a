"""Split an article into passages that follow its structure, within a token budget.

A passage never straddles two sections; a list item stays whole where it fits (with its
sub-items); a substantial list item is a passage of its own, so the answer to "who owns
model rollback?" is not diluted by its neighbours; short items and paragraphs are packed
together up to the budget. A passage's text is always a slice of the article's text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Callable, Iterable

from rolesearch.ingest.articles import Article
from rolesearch.ingest.structure import Block, parse_blocks
from rolesearch.store.passage import Passage

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“‘(\[]?[A-Z0-9])")


@dataclass(frozen=True)
class ChunkingParams:
    """What decides how passages are cut; recorded in the manifest, a change means a full rebuild."""

    max_tokens: int = 200
    min_item_tokens: int = 40  # an item this long is a passage of its own
    encoding: str = "cl100k_base"


@dataclass(frozen=True)
class TokenLimits:
    """The budget in tiktoken tokens, and the embedding model's own input limit."""

    count: Callable[[str], int]
    max_tokens: int
    count_model: Callable[[str], int] | None = None
    max_model_tokens: int | None = None


class ChunkingError(ValueError):
    """A piece of text that cannot be made to fit the limits (should not happen on real prose)."""


def embed_text(title: str, section: Iterable[str], text: str) -> str:
    """What the model sees for a passage: title and section path give context the text lacks."""
    path = " > ".join(section)
    return f"{title}\n{path}\n{text}" if path else f"{title}\n{text}"


def chunk_article(article: Article, params: ChunkingParams, limits: TokenLimits) -> list[Passage]:
    """Cut an article into passages; every passage fits both token limits."""
    limits = _memoised(limits)
    blocks = parse_blocks(article.text, article.title, article.headings)
    passages: list[Passage] = []
    stack: list[tuple[int, str]] = []
    section_blocks: list[Block] = []

    def flush() -> None:
        if section_blocks:
            section = article.section_prefix + tuple(text for level, text in stack if level > 1)
            for start, end in _pack(article, section, section_blocks, params, limits):
                passages.append(_make_passage(article, section, start, end, len(passages), limits))
            section_blocks.clear()

    for block in blocks:
        if block.kind == "heading":
            flush()
            while stack and stack[-1][0] >= block.level:
                stack.pop()
            stack.append((block.level, block.text))
        else:
            section_blocks.append(block)
    flush()
    return passages


def _memoised(limits: TokenLimits) -> TokenLimits:
    """The same limits, each text counted once: packing asks for the same spans' counts again and again."""
    model = lru_cache(maxsize=4096)(limits.count_model) if limits.count_model is not None else None
    return replace(limits, count=lru_cache(maxsize=4096)(limits.count), count_model=model)


def _make_passage(article: Article, section, start: int, end: int, n: int, limits: TokenLimits) -> Passage:
    text = article.text[start:end]
    digest = hashlib.sha256(embed_text(article.title, section, text).encode()).hexdigest()[:16]
    return Passage(
        id=f"{article.id}:{n}",
        article_id=article.id,
        title=article.title,
        section=section,
        start=start,
        end=end,
        text=text,
        tokens=limits.count(text),
        hash=digest,
    )


class _Piece:
    __slots__ = ("start", "end", "standalone", "lead_in")

    def __init__(self, start: int, end: int, standalone: bool = False, lead_in: bool = False):
        self.start, self.end, self.standalone, self.lead_in = start, end, standalone, lead_in


def _fits(article: Article, section, start: int, end: int, limits: TokenLimits) -> bool:
    text = article.text[start:end]
    if limits.count(text) > limits.max_tokens:
        return False
    if limits.count_model is not None and limits.max_model_tokens is not None:
        return limits.count_model(embed_text(article.title, section, text)) <= limits.max_model_tokens
    return True


def _pieces(article: Article, section, block: Block, params: ChunkingParams, limits: TokenLimits) -> list[_Piece]:
    """The block as one piece when it fits, else split at sub-items, then sentences, then words."""
    text = article.text
    if _fits(article, section, block.start, block.end, limits):
        tokens = limits.count(text[block.start:block.end])
        standalone = block.kind == "item" and tokens >= params.min_item_tokens
        lead_in = block.kind == "para" and text[block.start:block.end].rstrip().endswith(":") and tokens < params.min_item_tokens
        return [_Piece(block.start, block.end, standalone, lead_in)]
    if block.children:
        own = Block(block.kind, block.start, _rstrip_at(text, block.children[0].start), 0)
        out = _pieces(article, section, own, params, limits)
        for child in block.children:
            out += _pieces(article, section, child, params, limits)
        for p in out:
            p.standalone = True
        return out
    return [_Piece(s, e, standalone=True) for s, e in _split_long(article, section, block.start, block.end, limits)]


def _rstrip_at(text: str, end: int) -> int:
    while end > 0 and text[end - 1].isspace():
        end -= 1
    return end


def _split_long(article: Article, section, start: int, end: int, limits: TokenLimits) -> list[tuple[int, int]]:
    """Split an over-long span at sentence ends, packing sentences; a sentence too long is split at words."""
    text = article.text
    bounds = [start] + [start + m.end() for m in _SENTENCE_END.finditer(text[start:end])] + [end]
    sentences = [(bounds[i], _rstrip_at(text, bounds[i + 1])) for i in range(len(bounds) - 1)]
    units: list[tuple[int, int]] = []
    for s, e in sentences:
        if _fits(article, section, s, e, limits):
            units.append((s, e))
        else:
            units += _split_words(article, section, s, e, limits)
    out: list[tuple[int, int]] = []
    for s, e in units:
        if out and _fits(article, section, out[-1][0], e, limits):
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _split_words(article: Article, section, start: int, end: int, limits: TokenLimits) -> list[tuple[int, int]]:
    words = [(start + m.start(), start + m.end()) for m in re.finditer(r"\S+", article.text[start:end])]
    out: list[tuple[int, int]] = []
    for s, e in words:
        if out and _fits(article, section, out[-1][0], e, limits):
            out[-1] = (out[-1][0], e)
        elif _fits(article, section, s, e, limits):
            out.append((s, e))
        else:
            raise ChunkingError(f"a single word at {s} of {article.id} exceeds the token limits")
    return out


def _pack(article: Article, section, blocks: list[Block], params: ChunkingParams, limits: TokenLimits):
    """Greedy packing of a section's pieces into passages, yielding (start, end) spans."""
    groups: list[list[_Piece]] = []
    for block in blocks:
        for piece in _pieces(article, section, block, params, limits):
            current = groups[-1] if groups else None
            joinable = (
                current is not None
                and not any(p.standalone for p in current)
                and (not piece.standalone or all(p.lead_in for p in current))
                and _fits(article, section, current[0].start, piece.end, limits)
            )
            if joinable:
                current.append(piece)
            else:
                groups.append([piece])
    for group in groups:
        yield group[0].start, group[-1].end
