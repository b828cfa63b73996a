"""A published index loaded for searching: passages, dense vectors, the lexical index, article metadata."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import faiss
import numpy as np

from rolesearch.store.ann import AnnParams
from rolesearch.store.lexical import LexicalIndex, ScopedLexical, load_lexical, scoped_lexical
from rolesearch.store.lexical_terms import DocTerms, load_terms
from rolesearch.store.manifest import IndexCorrupt, Manifest
from rolesearch.store.passage_table import PassageTable
from rolesearch.store.sentences import SentenceParams, sentence_owners
from rolesearch.store.vector_rows import ArrayRows, VectorRows, vector_rows
from rolesearch.store.versions import load_version

_SCOPES_KEPT = 16  # scoped lexical indexes kept per version (one per group set in use)
CENTROID_ROWS = 65_536  # SearchIndex.centroid: a strided sample this large estimates the mean closely enough


class ScopeCache:
    """Values built once per reader scope (a boolean mask over passages), the least recently used dropped
    past `kept`; a value is built under the lock, so concurrent readers of a new scope build it once."""

    def __init__(self, kept: int):
        self.kept = kept
        self._items: OrderedDict[bytes, object] = OrderedDict()
        self._lock = threading.Lock()

    def values(self) -> list:
        with self._lock:
            return list(self._items.values())

    def get_or_build(self, scope: np.ndarray, build: Callable[[], object]):
        """The value for this scope, built now if it is not kept; a None from build is returned, not kept."""
        key = hashlib.blake2b(np.packbits(scope).tobytes(), digest_size=16).digest()
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            value = build()
            if value is not None:
                self._items[key] = value
                while len(self._items) > self.kept:
                    self._items.popitem(last=False)
            return value


@dataclass
class SearchIndex:
    """One index version, read-only once loaded, so it can be shared by concurrent requests."""

    manifest: Manifest
    passages: PassageTable  # a Sequence[Passage] decoded on access, with row-order columns
    dense: faiss.Index
    lexical: LexicalIndex | None
    path: Path
    embeddings: np.ndarray | None = None  # passage vectors, row i <-> passage i
    sentences: np.ndarray | None = None  # sentence vectors (store.sentences), None when not built
    sentence_owner: np.ndarray | None = None  # passage index of each sentence row
    sentence_index: faiss.Index | None = None  # approximate types only
    kinds: tuple[str, str] = ("flat", "flat")  # index type of passages and of sentences (manifest "ann")
    ann_params: AnnParams = AnnParams()
    sentence_start: np.ndarray | None = None  # first sentence row of passage i (n + 1 entries)
    _lexical_scopes: ScopeCache = field(default_factory=lambda: ScopeCache(_SCOPES_KEPT), repr=False, compare=False)
    _centroids: ScopeCache = field(default_factory=lambda: ScopeCache(_SCOPES_KEPT), repr=False, compare=False)
    _saved_terms: dict | None = field(default=None, repr=False, compare=False)

    def lexical_for(self, scope: np.ndarray | None) -> LexicalIndex | ScopedLexical | None:
        """The lexical index whose BM25 statistics cover exactly the passages in scope (a reader's readable
        passages; None: all). Built from the version's saved term counts, once per scope (a few group sets)."""
        if scope is None or self.lexical is None:
            return self.lexical
        for scoped in self._lexical_scopes.values():  # the same mask object as last time (search.scope caches
            if scoped.mask is scope:  # them): no hashing
                return scoped

        def build() -> ScopedLexical | None:
            terms = self._terms()
            return None if terms is None else scoped_lexical(terms, np.flatnonzero(scope), scope)

        scoped = self._lexical_scopes.get_or_build(scope, build)
        # None: a version written before term counts were saved, so whole-index statistics
        return scoped if scoped is not None else self.lexical

    def _terms(self) -> dict[str, DocTerms] | None:
        if self._saved_terms is None:
            names = list(self.lexical.fields)
            terms = {n: load_terms(self.path / "lexical" / n, len(self.passages)) for n in names}
            self._saved_terms = terms if all(t is not None for t in terms.values()) else {}
        return self._saved_terms or None

    @cached_property
    def passage_rows(self) -> VectorRows | ArrayRows:
        """Candidates' passage vectors, read by pread (store.vector_rows)."""
        return vector_rows(self.embeddings)

    @cached_property
    def sentence_rows(self) -> VectorRows | ArrayRows:
        """Candidates' sentence vectors, read by pread."""
        return vector_rows(self.sentences)

    @cached_property
    def centroid(self) -> np.ndarray:
        """The mean passage vector: its dot product with a query vector is the query's mean cosine to the
        passages, how close it is to what the corpus is about."""
        return self._mean_of(None)

    def centroid_for(self, scope: np.ndarray | None) -> np.ndarray:
        """The centroid of the passages in scope (a reader's readable passages; None: all), so a restricted
        passage never moves the mean cosine a reader's /ask weighs. Once per scope, as lexical_for."""
        if scope is None or self.embeddings is None:
            return self.centroid
        return self._centroids.get_or_build(scope, lambda: self._mean_of(np.flatnonzero(scope)))

    def _mean_of(self, rows: np.ndarray | None) -> np.ndarray:
        """The mean of these passage rows (None: all), over at most CENTROID_ROWS evenly spaced ones."""
        vectors = self.embeddings
        n = 0 if vectors is None else (len(vectors) if rows is None else len(rows))
        if not n:
            return np.zeros(self.dense.d, dtype=np.float32)
        step = max(1, n // CENTROID_ROWS)
        sample = vectors[::step] if rows is None else vectors[rows[::step]]
        return np.asarray(sample, dtype=np.float32).mean(axis=0)

    @property
    def exact(self) -> bool:
        """True when every dense score is computed against all rows (no approximate index)."""
        return self.kinds == ("flat", "flat")

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def articles(self) -> dict:
        return self.manifest.articles

    @classmethod
    def load(cls, index_dir: Path, model: str | None = None, version: str | None = None,
             nprobe: int | None = None) -> "SearchIndex":
        """Load the published version (or the one named), refusing one built with another model.

        nprobe overrides the IVF lists a query visits (the version's own, from its manifest, otherwise).
        """
        files = load_version(Path(index_dir), version, model)
        lexical = None
        if files.manifest.lexical is not None:
            try:
                lexical = load_lexical(files.path, files.manifest.lexical.get("fields", ["text"]))
            except (OSError, ValueError, KeyError) as exc:
                raise IndexCorrupt(f"lexical index of {files.manifest.version} cannot be read ({exc})") from exc
        owners = starts = None
        if files.sentence_starts is not None:
            starts = files.sentence_starts
            # int32: 2.6M sentence rows at 1M passages cost 10 MB, not 21.
            owners = np.repeat(np.arange(len(files.passages), dtype=np.int32), np.diff(starts))
        elif files.sentence_embeddings is not None:  # a version written before sentence_starts.npy
            owners = sentence_owners(files.passages, SentenceParams.from_manifest(files.manifest.sentence_units))
            if len(owners) != len(files.sentence_embeddings):
                raise IndexCorrupt(f"sentence vectors of {files.manifest.version} do not match its passages "
                                   f"({len(files.sentence_embeddings)} vectors, {len(owners)} sentences): "
                                   "run `rolesearch ingest`")
        if owners is not None and starts is None:
            # Sentence rows are stored passage by passage, so each passage owns one contiguous range.
            starts = np.concatenate([[0], np.cumsum(np.bincount(owners, minlength=len(files.passages)))])
        return cls(files.manifest, files.passages, files.dense, lexical, files.path, files.embeddings,
                   files.sentence_embeddings, owners, files.sentence_index,
                   (files.kind("passages"), files.kind("sentences")),
                   replace(files.ann_params(), ivf_nprobe=nprobe) if nprobe else files.ann_params(), starts)
