"""FAISS indexes over passage and sentence vectors: the type chosen by size, built, saved, opened memory-mapped.

Below a row threshold a query scores every row exactly (brute force is a few ms there, and the
ranking stays exactly the reference one). Above it, an approximate index returns candidates and
the searcher rescores them exactly against the stored vectors, so the approximation only decides
which rows are looked at, never their scores. IVF with 8-bit scalar quantisation is the default
large type: a quarter of float32's memory, memory-mappable, and its trained quantiser is kept
beside it so an incremental build adds vectors without training again. HNSW can be forced.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

KINDS = ("flat", "hnsw", "ivf")


@dataclass(frozen=True)
class AnnParams:
    """How dense indexes are chosen and searched (defaults from bench/scale.py, see docs/performance.md)."""

    kind: str = "auto"  # "auto" (by size), or force "flat", "hnsw" or "ivf"
    exact_below: int = 100_000  # rows: exact below, `large` at or above (IVF at nprobe 24 misses recall at 100k: docs/performance.md)
    large: str = "ivf"
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 128
    # A real 1M build (bench/scale.py --serve-only --nprobe 48,96): recall@10 0.9385 at 24, 0.9445 at 48, 0.955 at 96,
    # for hybrid CPU 23.6 / 27.1 / 27.1 ms a query: 96 is the smallest measured value meeting 0.95.
    ivf_nprobe: int = 96
    train_rows: int = 100_000  # IVF k-means sample

    def choose(self, rows: int) -> str:
        """The index type for rows vectors: the forced one, or exact below the threshold and `large` above."""
        if self.kind != "auto":
            if self.kind not in KINDS:
                raise ValueError(f"index kind must be auto or one of {', '.join(KINDS)}, not {self.kind!r}")
            return self.kind
        return "flat" if rows < self.exact_below else self.large


def ivf_lists(rows: int) -> int:
    """Inverted lists for rows vectors: about 4 sqrt(rows), with at least 39 training rows per list."""
    return max(1, min(int(4 * math.sqrt(max(rows, 1))), rows // 39))


_ADD_ROWS = 65_536  # rows assigned and added per FAISS call: bounds the copies of a memory-mapped input


def build(vectors: np.ndarray, kind: str, params: AnnParams, trained: faiss.Index | None = None,
          lists: np.ndarray | None = None) -> tuple[faiss.Index, faiss.Index | None, dict, np.ndarray | None]:
    """The index of kind over vectors, the trained empty IVF (kept for incremental builds), its description,
    and each row's inverted list (IVF only).

    trained, an empty trained IVF of the same dimension from the previous version, skips training;
    lists, with it, gives the rows' lists already known from that version (-1: not known), so only
    the other rows are assigned to a list. Rows are added in order either way: the index equals the
    one a build assigning every row gives.
    """
    d = vectors.shape[1]
    info: dict = {"kind": kind, "rows": len(vectors)}
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
        _in_chunks(vectors, index.add)
        return index, None, info, None
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params.hnsw_ef_construction
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return index, None, info | {"m": params.hnsw_m, "ef_construction": params.hnsw_ef_construction}, None
    if kind != "ivf":
        raise ValueError(f"unknown index kind {kind!r}")
    reused = trained is not None and trained.d == d and trained.is_trained
    if reused:
        empty = trained
    else:
        lists = None  # assignments belong to the quantiser they were made with
        nlist = ivf_lists(len(vectors))
        empty = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(d), d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = vectors if len(vectors) <= params.train_rows else \
            vectors[np.sort(rng.choice(len(vectors), params.train_rows, replace=False))]
        empty.train(np.ascontiguousarray(sample, dtype=np.float32))
    index = faiss.clone_index(empty)
    assigned = np.full(len(vectors), -1, dtype=np.int64) if lists is None else np.array(lists, dtype=np.int64)
    assigned_now = int((assigned < 0).sum())

    def add(lo: int, chunk: np.ndarray) -> None:
        part = assigned[lo:lo + len(chunk)]  # a view: the assignments are written back for saving
        todo = np.flatnonzero(part < 0)
        if len(todo):
            part[todo] = empty.quantizer.assign(np.ascontiguousarray(chunk[todo]), 1).ravel()
        ids = np.ascontiguousarray(part)
        index.add_core(len(chunk), faiss.swig_ptr(chunk), None, faiss.swig_ptr(ids))

    _in_chunks(vectors, add, with_offset=True)
    return index, empty, info | {"lists": int(index.nlist), "codec": "SQ8", "trained_reused": reused,
                                 "assigned": assigned_now}, assigned


def _in_chunks(vectors: np.ndarray, fn, with_offset: bool = False) -> None:
    """fn over contiguous float32 chunks of vectors (a memory-mapped array is read a chunk at a time)."""
    for lo in range(0, len(vectors), _ADD_ROWS):
        chunk = np.ascontiguousarray(vectors[lo:lo + _ADD_ROWS], dtype=np.float32)
        fn(lo, chunk) if with_offset else fn(chunk)


def save(folder: Path, name: str, index: faiss.Index, trained: faiss.Index | None,
         lists: np.ndarray | None = None) -> None:
    """Write <name>.faiss (and <name>.trained.faiss, the empty trained IVF, and <name>.lists.npy, each row's
    inverted list) into a version folder."""
    faiss.write_index(index, str(folder / f"{name}.faiss"))
    if trained is not None:
        faiss.write_index(trained, str(folder / f"{name}.trained.faiss"))
    if lists is not None:
        np.save(folder / f"{name}.lists.npy", lists.astype(np.int32))


def load_lists(folder: Path, name: str) -> np.ndarray | None:
    """Each row's inverted list in a version (the lists of its trained IVF), or None when not saved."""
    path = folder / f"{name}.lists.npy"
    return np.load(path).astype(np.int64) if path.exists() else None


def load(folder: Path, name: str, kind: str) -> faiss.Index:
    """Open <name>.faiss memory-mapped: IVF lists and flat/HNSW storage stay on disk, paged in on use."""
    flag = faiss.IO_FLAG_MMAP if kind == "ivf" else faiss.IO_FLAG_MMAP_IFC
    return faiss.read_index(str(folder / f"{name}.faiss"), flag | faiss.IO_FLAG_READ_ONLY)


def load_trained(folder: Path, name: str) -> faiss.Index | None:
    """The empty trained IVF of a version, or None when it has none."""
    path = folder / f"{name}.trained.faiss"
    return faiss.read_index(str(path)) if path.exists() else None


def search(index: faiss.Index, kind: str, params: AnnParams, query: np.ndarray, k: int,
           allow: np.ndarray | None = None) -> np.ndarray:
    """Ids of the (approximately) top k rows for one query, only rows allowed by the boolean mask."""
    k = min(k, index.ntotal)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    sel = None
    if allow is not None:
        bits = np.packbits(allow, bitorder="little")  # FAISS reads bit i of byte i >> 3, low bit first
        sel = faiss.IDSelectorBitmap(len(allow), faiss.swig_ptr(bits))
    if kind == "ivf":
        search_params = faiss.SearchParametersIVF(sel=sel, nprobe=params.ivf_nprobe)
    elif kind == "hnsw":
        search_params = faiss.SearchParametersHNSW(sel=sel, efSearch=max(params.hnsw_ef_search, k))
    else:
        search_params = faiss.SearchParameters(sel=sel) if sel is not None else None
    _, ids = index.search(np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1), k, params=search_params)
    ids = ids[0]
    return ids[ids >= 0]


def describe(params: AnnParams) -> dict:
    """The search-time parameters, for the manifest."""
    return asdict(params)
