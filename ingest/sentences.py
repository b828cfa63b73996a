"""Sentence boundaries inside a passage, as character spans (shared by role attribution and highlights)."""

from __future__ import annotations

import re

# A sentence ends at . ! ? before a capital or digit, or at a line break (list items, table rows).
_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[\"“‘(\[]?[A-Z0-9])|\n+")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-blank sentence or line of text, surrounding whitespace trimmed."""
    spans = []
    pos = 0
    for m in list(_BOUNDARY.finditer(text)) + [None]:
        end = m.start() if m else len(text)
        piece = text[pos:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((pos + lead, pos + len(piece.rstrip())))
        if m:
            pos = m.end()
    return spans
