"""A published index loaded for searching: passages, dense vectors, the lexical index, article metadata."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from ingest.chunking import Passage
from ingest.lexical import LexicalIndex, load_lexical
from ingest.sentence_vectors import sentence_owners
from ingest.store import IndexCorrupt, Manifest, load_version


@dataclass
class SearchIndex:
    """One index version, read-only once loaded, so it can be shared by concurrent requests."""

    manifest: Manifest
    passages: list[Passage]
    dense: faiss.Index
    lexical: LexicalIndex | None
    path: Path
    embeddings: np.ndarray | None = None  # passage vectors, row i <-> passage i
    sentences: np.ndarray | None = None  # sentence vectors (ingest.sentence_vectors), None when not built
    sentence_owner: np.ndarray | None = None  # passage index of each sentence row

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
                lexical = load_lexical(files.path, files.manifest.lexical.get("fields", ["text"]))
            except (OSError, ValueError, KeyError) as exc:
                raise IndexCorrupt(f"lexical index of {files.manifest.version} cannot be read ({exc})") from exc
        owners = None
        if files.sentence_embeddings is not None:
            owners = sentence_owners(files.passages)
            if len(owners) != len(files.sentence_embeddings):
                raise IndexCorrupt(f"sentence vectors of {files.manifest.version} do not match its passages "
                                   f"({len(files.sentence_embeddings)} vectors, {len(owners)} sentences): "
                                   "run `rolesearch ingest`")
        return cls(files.manifest, files.passages, files.dense, lexical, files.path, files.embeddings,
                   files.sentence_embeddings, owners)
