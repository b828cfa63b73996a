"""Writing a version: a draft folder filled in place, fsynced, renamed into versions/, published by an atomic swap of CURRENT, under the build lock."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rolesearch.store import ann
from rolesearch.store.ann import AnnParams
from rolesearch.store.manifest import IndexBusy, IndexCorrupt, Manifest, current_version, version_dir
from rolesearch.store.passage import Passage
from rolesearch.store.passage_table import write_passages
from rolesearch.store.sentences import LEGACY, SentenceParams, passage_units

KEEP_VERSIONS = 3


def sentence_starts(passages: list[Passage], params: SentenceParams = LEGACY) -> np.ndarray:
    """First sentence row of each passage, plus the total: n + 1 entries (rows are stored passage by passage)."""
    counts = [len(passage_units(p.text, params)) for p in passages]
    return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)


@dataclass(frozen=True)
class RowSources:
    """Where a new version's rows come from in the version it follows (-1: a new row), so its IVF
    lists are reused; sentence_starts and sentence_keys, when known, spare splitting passages again."""

    passages: np.ndarray
    sentences: np.ndarray | None = None
    sentence_starts: np.ndarray | None = None
    sentence_keys: np.ndarray | None = None  # uint64 per sentence row (store.sentences.key_number)
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
            else sentence_starts(passages, SentenceParams.from_manifest(manifest.sentence_units))
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
