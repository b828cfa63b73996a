"""The index on disk: versioned, self-describing, published by an atomic pointer swap.

    index/
      CURRENT                 the published version id (replaced by rename, never edited)
      versions/<id>/          one complete build
        manifest.json         build parameters, articles and their hashes, counts
        passages.jsonl        passage metadata, one per line, row i <-> vector i
        passages.*.npy|json   its row offsets and row-order columns (ingest.passage_table; older versions lack them)
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

import datetime as dt
import fcntl
import json
import mmap
import os
import secrets
import shutil
from contextlib import contextmanager
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from ingest import ann
from ingest.ann import AnnParams
from ingest.chunking import Passage
from ingest.passage_table import PassageTable, write_passages

# 2: sentences.npy (sentence vectors of every passage) and manifest "sentences".
FORMAT = 2
KEEP_VERSIONS = 3


class StoreError(Exception):
    """Base for index problems the caller can report to a user."""


class IndexNotFound(StoreError):
    """No published index at that folder."""


class IndexMismatch(StoreError):
    """The index was built with other settings than the ones configured."""


class IndexCorrupt(StoreError):
    """A published index whose files do not agree with its manifest."""


class IndexBusy(StoreError):
    """Another build holds the lock."""


@dataclass
class Manifest:
    """What a build was made from and with; checked on load."""

    version: str
    built_at: str
    model: str
    dimension: int
    max_model_tokens: int
    chunking: dict
    articles: dict  # id -> {"path", "hash", "title", "url", "publisher", "date", "tags", "passages"}
    passages: int
    format: int = FORMAT
    skipped: dict = field(default_factory=dict)  # path -> reason
    lexical: dict | None = None
    sentences: int = 0  # rows of sentences.npy (0: no sentence vectors)
    ann: dict | None = None  # {"passages": {kind, rows, ...}, "sentences": {...}, "params": AnnParams}; None: flat
    vectors: str = ""  # the vector space: model, plus "#int8-f<export format>" for the quantised encoder ("": same as model)
    roles: str = ""  # fingerprint of the role configuration the passages' roles come from ("": unknown)

    def to_json(self) -> str:
        # Field by field: asdict deep-copies every article entry first (seconds at 100k articles).
        return json.dumps({f: getattr(self, f) for f in self.__dataclass_fields__}, indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict) -> "Manifest":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


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


def new_version_id() -> str:
    """Sortable and unique: UTC time to the microsecond plus a random suffix."""
    now = dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def current_version(index_dir: Path) -> str | None:
    """The published version id, or None when nothing is published."""
    try:
        vid = (Path(index_dir) / "CURRENT").read_text().strip()
    except FileNotFoundError:
        return None
    return vid or None


def version_dir(index_dir: Path, version: str) -> Path:
    return Path(index_dir) / "versions" / version


def sentence_starts(passages: list[Passage]) -> np.ndarray:
    """First sentence row of each passage, plus the total: n + 1 entries (rows are stored passage by passage)."""
    from ingest.sentence_vectors import passage_sentences

    counts = [len(passage_sentences(p.text)) for p in passages]
    return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)


@dataclass(frozen=True)
class RowSources:
    """Where a new version's rows come from in the version it follows (-1: a new row), so its IVF
    lists are reused; sentence_starts and sentence_keys, when known, spare splitting passages again."""

    passages: np.ndarray
    sentences: np.ndarray | None = None
    sentence_starts: np.ndarray | None = None
    sentence_keys: np.ndarray | None = None  # uint64 per sentence row (ingest.sentence_vectors.key_number)
    passage_bytes: tuple | None = None  # (previous PassageTable, row there or -1): rows copied, not encoded again


class VersionDraft:
    """A version being written into versions/.tmp-<id>/: vectors can be preallocated there and filled in
    place (no copy of them in memory); write_version finishes it. A failure removes the folder."""

    def __init__(self, index_dir: Path, version: str):
        self.versions = Path(index_dir) / "versions"
        self.folder = self.versions / f".tmp-{version}"
        self.arrays: dict[str, np.ndarray] = {}

    def __enter__(self) -> "VersionDraft":
        self.versions.mkdir(parents=True, exist_ok=True)
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            # A failed write (disk full, ...) leaves nothing behind; a killed one is cleaned by the next prune.
            self.arrays.clear()
            shutil.rmtree(self.folder, ignore_errors=True)

    def vectors(self, name: str, rows: int, dimension: int) -> np.ndarray:
        """A float32 (rows, dimension) array that is the draft's <name>.npy, to fill in place."""
        if rows == 0:
            return np.zeros((0, dimension), dtype=np.float32)  # nothing to map; save() writes it
        array = np.lib.format.open_memmap(self.folder / f"{name}.npy", mode="w+", dtype=np.float32,
                                          shape=(rows, dimension))
        self.arrays[name] = array
        return array

    def save(self, name: str, array: np.ndarray) -> None:
        """<name>.npy as float32, unless array is the draft's own preallocated file (then it is flushed)."""
        own = self.arrays.get(name)
        if own is not None and array is own:
            own.flush()
        else:
            np.save(self.folder / f"{name}.npy", np.asarray(array, dtype=np.float32))


def write_dense(folder: Path, manifest: Manifest, embeddings: np.ndarray, sentence_embeddings: np.ndarray | None,
                params: AnnParams, previous: Path | None = None, sources: RowSources | None = None) -> None:
    """The FAISS indexes of a version, typed by size (params), described in manifest.ann.

    Inner product on normalised vectors is cosine similarity. previous, the folder of the version
    this build follows, lends its trained IVF quantisers, so an incremental build does not train again,
    and with sources (each row's row there) the inverted lists of the rows it had, so they are not
    assigned again.
    """
    described = {"params": ann.describe(params)}
    for name, which, vectors in (("dense", "passages", embeddings), ("sentences", "sentences", sentence_embeddings)):
        if vectors is None:
            continue
        kind = params.choose(len(vectors))
        if kind == "flat" and which == "sentences":
            described[which] = {"kind": "flat", "rows": len(vectors)}  # exact scoring reads sentences.npy
            continue
        trained = ann.load_trained(previous, name) if previous is not None and kind == "ivf" else None
        lists = _reused_lists(previous, name, getattr(sources, which, None)) if trained is not None else None
        index, empty, described[which], assigned = ann.build(vectors, kind, params, trained, lists)
        ann.save(folder, name, index, empty, assigned)
    manifest.ann = described


def _reused_lists(previous: Path, name: str, rows: np.ndarray | None) -> np.ndarray | None:
    """The previous version's inverted list of each row it had (rows: its row, -1 for a new one), else -1."""
    if rows is None:
        return None
    old = ann.load_lists(previous, name)
    if old is None or (len(rows) and rows.max() >= len(old)):
        return None
    return np.where(rows >= 0, old[np.maximum(rows, 0)], -1)


def write_version(index_dir: Path, manifest: Manifest, passages: Sequence[Passage], embeddings: np.ndarray,
                  extra_writers=(), sentence_embeddings: np.ndarray | None = None,
                  ann_params: AnnParams = AnnParams(), previous: Path | None = None,
                  draft: VersionDraft | None = None, sources: RowSources | None = None) -> Path:
    """Write a complete version into a temporary folder (draft's, when the build preallocated its vectors
    there), fsync it, and rename it into versions/."""
    if len(passages) != len(embeddings):
        raise ValueError(f"{len(passages)} passages but {len(embeddings)} embeddings")
    if manifest.sentences != (0 if sentence_embeddings is None else len(sentence_embeddings)):
        raise ValueError(f"manifest says {manifest.sentences} sentences but the vectors disagree")
    if draft is None:
        with VersionDraft(index_dir, manifest.version) as own:
            return write_version(index_dir, manifest, passages, embeddings, extra_writers, sentence_embeddings,
                                 ann_params, previous, own, sources)
    tmp = draft.folder
    write_passages(tmp, passages, sources.passage_bytes if sources is not None else None)
    draft.save("embeddings", embeddings)
    if sentence_embeddings is not None:
        draft.save("sentences", sentence_embeddings)
        # Passage i owns sentence rows starts[i]:starts[i + 1]; saved so loading needs no sentence splitting.
        starts = sources.sentence_starts if sources is not None and sources.sentence_starts is not None \
            else sentence_starts(passages)
        np.save(tmp / "sentence_starts.npy", np.asarray(starts, dtype=np.int64))
        if sources is not None and sources.sentence_keys is not None:
            np.save(tmp / "sentence_keys.npy", np.asarray(sources.sentence_keys, dtype=np.uint64))
    write_dense(tmp, manifest, embeddings, sentence_embeddings, ann_params, previous, sources)
    for write in extra_writers:
        write(tmp)
    # The manifest goes last: a folder without one was never finished.
    (tmp / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    draft.arrays.clear()  # no writes through the maps after this point
    _fsync_tree(tmp)
    final = draft.versions / manifest.version
    os.rename(tmp, final)
    _fsync_dir(draft.versions)
    return final


def publish(index_dir: Path, version: str, keep: int = KEEP_VERSIONS) -> None:
    """Point CURRENT at version by an atomic rename, then prune old versions and leftovers."""
    index_dir = Path(index_dir)
    if not (version_dir(index_dir, version) / "manifest.json").exists():
        raise IndexCorrupt(f"version {version} is not complete; refusing to publish it")
    tmp = index_dir / f".CURRENT.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(version + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, index_dir / "CURRENT")
    _fsync_dir(index_dir)
    prune(index_dir, keep)


def prune(index_dir: Path, keep: int = KEEP_VERSIONS) -> list[str]:
    """Delete all but the newest `keep` versions (never the published one) and what killed builds left.

    Only call it holding the build lock: a `.tmp-` folder is otherwise another build's work in progress.
    """
    index_dir = Path(index_dir)
    versions = index_dir / "versions"
    for p in index_dir.glob(".CURRENT.*.tmp"):
        p.unlink(missing_ok=True)
    if not versions.exists():
        return []
    current = current_version(index_dir)
    done = sorted(p.name for p in versions.iterdir() if p.is_dir() and not p.name.startswith("."))
    stale = [v for v in done[:-keep] if v != current] if keep > 0 else []
    for name in stale:
        # Renamed out of the way first, so a kill mid-delete never leaves a half version under its own name.
        os.rename(versions / name, versions / f".trash-{name}")
    for p in versions.iterdir():
        if p.name.startswith((".tmp-", ".trash-")):
            shutil.rmtree(p, ignore_errors=True)
    return stale


def read_manifest(index_dir: Path, version: str | None = None) -> Manifest:
    """The manifest of a version (default: the published one)."""
    version = version or current_version(index_dir)
    if version is None:
        raise IndexNotFound(f"no index at {index_dir}: run `rolesearch ingest` to build one")
    path = version_dir(index_dir, version) / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexCorrupt(f"published version {version} has no manifest: run `rolesearch ingest`") from exc
    except json.JSONDecodeError as exc:
        raise IndexCorrupt(f"manifest of {version} is not valid JSON: run `rolesearch ingest`") from exc
    if data.get("format") != FORMAT:
        raise IndexMismatch(
            f"index format {data.get('format')} is not {FORMAT}: run `rolesearch ingest` to rebuild"
        )
    return Manifest.from_dict(data)


def check_model(manifest: Manifest, model: str) -> None:
    """Refuse an index whose vectors come from another model than the one configured."""
    if manifest.model != model:
        raise IndexMismatch(
            f"the index was built with model {manifest.model!r} but {model!r} is configured: "
            "run `rolesearch ingest` to rebuild it with the configured model"
        )


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


@contextmanager
def build_lock(index_dir: Path, wait: bool = False):
    """Hold index/.lock for the length of a build; a second build waits or fails with IndexBusy."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(index_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as exc:
            raise IndexBusy(f"another build is running on {index_dir} (lock {index_dir / '.lock'})") from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the flock, and so does the process dying


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def rollback(index_dir: Path, version: str, model: str | None = None) -> str | None:
    """Publish a kept version again (CURRENT swapped atomically); returns the version it replaces.

    The version must exist and load whole (manifest, passages, vectors agree; built with `model` if given);
    a build in progress is not overtaken (IndexBusy).
    """
    index_dir = Path(index_dir)
    if not version or "/" in version or version.startswith(".") or not version_dir(index_dir, version).is_dir():
        kept = ", ".join(v.version for v in list_versions(index_dir)) or "none"
        raise IndexNotFound(f"no version {version!r} in {index_dir / 'versions'} (kept: {kept})")
    with build_lock(index_dir):
        if not (version_dir(index_dir, version) / "manifest.json").exists():
            raise IndexCorrupt(f"version {version} is incomplete (no manifest.json); refusing to publish it")
        load_version(index_dir, version, model)  # refuses an inconsistent version, or one of another model
        previous = current_version(index_dir)
        publish(index_dir, version)
    return previous
