"""A published index loaded for searching: passages, dense vectors, the lexical index, article metadata."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bm25s
import faiss

from ingest.chunking import Passage
from ingest.lexical import load_lexical
from ingest.store import IndexCorrupt, Manifest, load_version


@dataclass
class SearchIndex:
    """One index version, read-only once loaded, so it can be shared by concurrent requests."""

    manifest: Manifest
    passages: list[Passage]
    dense: faiss.Index
    lexical: bm25s.BM25 | None
    path: Path

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def articles(self) -> dict:
        return self.manifest.articles

    @classmethod
    def load(cls, index_dir: Path, model: str | None = None, version: str | None = None) -> "SearchIndex":
        """Load the published version (or the one named), refusing one built with another model."""
        files = load_version(Path(index_dir), version, model)
        lexical = None
        if files.manifest.lexical is not None:
            try:
                lexical = load_lexical(files.path)
            except (OSError, ValueError, KeyError) as exc:
                raise IndexCorrupt(f"lexical index of {files.manifest.version} cannot be read ({exc})") from exc
        return cls(files.manifest, files.passages, files.dense, lexical, files.path)
