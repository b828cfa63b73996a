"""Reading versions: one loaded whole and checked against its manifest, the kept ones listed, one published again
(rollback). The index on disk is versioned, self-describing and published by an atomic pointer swap:

    index/
      CURRENT                 the published version id (replaced by rename, never edited)
      versions/<id>/          one complete build
        manifest.json         build parameters, articles and their hashes, counts
        passages.jsonl        passage metadata, one per line, row i <-> vector i
        passages.*.npy|json   its row offsets and row-order columns (store.passage_table; older versions lack them)
        embeddings.npy        float32 (n, dim), normalised; reused by incremental builds
        sentences.npy         float32 (m, dim): every passage's sentences, passage by passage (format 2)
        sentence_starts.npy   int64 (n + 1): passage i owns sentence rows starts[i]:starts[i + 1]
        dense.faiss           FAISS index over the embeddings (type by size, manifest "ann")
        sentences.faiss       FAISS index over the sentence vectors (approximate types only)
        *.trained.faiss       the empty trained IVF, reused by the next build
        lexical/              bm25s index over the same passages (when built)
      .lock                   held by the build in progress
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from rolesearch.store import ann
from rolesearch.store.access_change import AccessWidened, audit, widened
from rolesearch.store.ann import AnnParams
from rolesearch.store.manifest import (
    IndexCorrupt,
    IndexMismatch,
    IndexNotFound,
    Manifest,
    StoreError,
    check_model,
    current_version,
    read_manifest,
    version_dir,
)
from rolesearch.store.passage_table import PassageTable
from rolesearch.store.publish import build_lock, publish


@dataclass
class IndexFiles:
    """A loaded version: manifest, passages and the dense index (vectors kept for reuse)."""

    path: Path
    manifest: Manifest
    passages: PassageTable  # a Sequence[Passage], rows decoded on access
    embeddings: np.ndarray
    dense: faiss.Index
    sentence_embeddings: np.ndarray | None = None
    sentence_index: faiss.Index | None = None  # approximate types only; exact scoring reads the vectors
    sentence_starts: np.ndarray | None = None  # passage i owns sentence rows starts[i]:starts[i + 1]

    def ann_params(self) -> AnnParams:
        """The search-time parameters the version was built with."""
        return AnnParams(**(self.manifest.ann or {}).get("params", {}))

    def kind(self, which: str) -> str:
        """The index type of "passages" or "sentences" in this version."""
        return ((self.manifest.ann or {}).get(which) or {}).get("kind", "flat")


def load_version(index_dir: Path, version: str | None = None, model: str | None = None) -> IndexFiles:
    """Load a published version and check it agrees with itself and with the configured model."""
    manifest = read_manifest(index_dir, version)
    if model is not None:
        check_model(manifest, model)
    path = version_dir(index_dir, manifest.version)
    try:
        passages = PassageTable.open(path)
        # Memory-mapped: a hot reload of a large version does not need twice the memory, and loads at once.
        embeddings = random_access(np.load(path / "embeddings.npy", mmap_mode="r"))
        kinds = manifest.ann or {}
        dense = ann.load(path, "dense", (kinds.get("passages") or {}).get("kind", "flat"))
        sentences = random_access(np.load(path / "sentences.npy", mmap_mode="r")) if manifest.sentences else None
        starts = np.load(path / "sentence_starts.npy") if sentences is not None and \
            (path / "sentence_starts.npy").exists() else None
        sentence_kind = (kinds.get("sentences") or {}).get("kind", "flat")
        sentence_index = ann.load(path, "sentences", sentence_kind) if sentences is not None and sentence_kind != "flat" \
            else None
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:  # PassageTableError is a ValueError
        raise IndexCorrupt(f"index version {manifest.version} cannot be read ({exc}): run `rolesearch ingest`") from exc
    if not (len(passages) == manifest.passages == dense.ntotal == len(embeddings)):
        raise IndexCorrupt(
            f"index version {manifest.version} is inconsistent ({len(passages)} passages, "
            f"{dense.ntotal} vectors, manifest says {manifest.passages}): run `rolesearch ingest`"
        )
    if dense.d != manifest.dimension:
        raise IndexMismatch(f"index vectors have dimension {dense.d}, manifest says {manifest.dimension}")
    if sentences is not None and sentences.shape != (manifest.sentences, manifest.dimension):
        raise IndexCorrupt(
            f"index version {manifest.version} has {sentences.shape[0]} sentence vectors, manifest says "
            f"{manifest.sentences}: run `rolesearch ingest`"
        )
    if sentence_index is not None and sentence_index.ntotal != manifest.sentences:
        raise IndexCorrupt(f"sentence index of {manifest.version} has {sentence_index.ntotal} rows, manifest says "
                           f"{manifest.sentences}: run `rolesearch ingest`")
    if starts is not None and (len(starts) != len(passages) + 1 or starts[-1] != manifest.sentences):
        raise IndexCorrupt(f"sentence_starts.npy of {manifest.version} does not match its passages and sentences: "
                           "run `rolesearch ingest`")
    return IndexFiles(path, manifest, passages, embeddings, dense, sentences, sentence_index, starts)


def random_access(array: np.ndarray) -> np.ndarray:
    """A memory-mapped array marked for random reads: on a cold page cache the kernel's read-around (8 MB on this
    machine) would otherwise read megabytes from disk around each scattered row a query touches."""
    mapped = getattr(array, "_mmap", None)
    if mapped is not None and hasattr(mapped, "madvise"):
        mapped.madvise(mmap.MADV_RANDOM)
    return array


@dataclass(frozen=True)
class VersionInfo:
    """One kept version as `rolesearch versions` lists it."""

    version: str
    built_at: str | None
    articles: int
    passages: int
    published: bool
    complete: bool
    problem: str | None = None  # why it cannot be published, when it cannot


def list_versions(index_dir: Path) -> list[VersionInfo]:
    """The kept versions, oldest first, from their manifests (vectors are not read)."""
    versions = Path(index_dir) / "versions"
    current = current_version(index_dir)
    if not versions.is_dir():
        return []
    out = []
    for p in sorted(versions.iterdir()):
        if not p.is_dir() or p.name.startswith("."):
            continue
        try:
            m = read_manifest(index_dir, p.name)
        except StoreError as exc:
            out.append(VersionInfo(p.name, None, 0, 0, p.name == current, False, str(exc)))
            continue
        out.append(VersionInfo(p.name, m.built_at, len(m.articles), m.passages, p.name == current, True))
    return out


def rollback(index_dir: Path, version: str, model: str | None = None, allow_wider_access: bool = False,
             forced_by: str | None = None) -> str | None:
    """Publish a kept version again (CURRENT swapped atomically); returns the version it replaces.

    The version must exist and load whole (manifest, passages, vectors agree; built with `model` if given);
    a build in progress is not overtaken (IndexBusy). A version that would let more readers see an article
    than the published one does (an older version's groups) is refused (AccessWidened) unless
    allow_wider_access; a forced one is recorded in the audit log with forced_by.
    """
    index_dir = Path(index_dir)
    if not version or "/" in version or version.startswith(".") or not version_dir(index_dir, version).is_dir():
        kept = ", ".join(v.version for v in list_versions(index_dir)) or "none"
        raise IndexNotFound(f"no version {version!r} in {index_dir / 'versions'} (kept: {kept})")
    with build_lock(index_dir):
        if not (version_dir(index_dir, version) / "manifest.json").exists():
            raise IndexCorrupt(f"version {version} is incomplete (no manifest.json); refusing to publish it")
        target = load_version(index_dir, version, model)  # refuses an inconsistent version, or one of another model
        previous = current_version(index_dir)
        unchecked = False
        try:
            now = read_manifest(index_dir, previous).articles if previous else {}
        except StoreError as exc:  # the published groups cannot be read: nothing says the target is not wider
            if not allow_wider_access:
                raise StoreError(f"the published version's manifest cannot be read ({exc}), so its access groups "
                                 "cannot be compared with the target's; pass --allow-wider-access to roll back "
                                 "anyway") from exc
            now, unchecked = {}, True
        wider = widened(now, target.manifest.articles)
        if wider and not allow_wider_access:
            raise AccessWidened(f"rolling back to {version}", wider, "--allow-wider-access")
        publish(index_dir, version)
        if wider or unchecked:
            audit(index_dir, "rollback", version=version, previous=previous, forced_by=forced_by or "unknown",
                  unchecked=unchecked, widened={aid: {"from": a, "to": b} for aid, (a, b) in wider.items()})
    return previous
