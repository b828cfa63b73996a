"""Where each row of a new version comes from: the previous version's rows (gathered by index), the
embedding cache, or the encoder; and the vectors written straight into the version's preallocated arrays.

A build lists its passages in order, each with its row in the previous version (-1 for a passage it
chunked). A chunked passage whose hash the previous version has takes that row's vectors. Sentence
rows follow their passages: a reused passage brings its sentence rows (the previous version's
sentence_starts say which), a new passage's sentences are split once and looked up by key among the
previous version's sentence keys (sentence_keys.npy), then in the cache, and only the rest is
embedded. Nothing is keyed by hash or re-split for the rows that are reused, so the work follows
the change, not the corpus.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

import numpy as np

from rolesearch.encoder.base import Encoder
from rolesearch.ingest.cache import EmbeddingCache
from rolesearch.ingest.chunking import embed_text
from rolesearch.store.passage import Passage
from rolesearch.store.sentences import LEGACY, SentenceParams, key_number, split_sentences
from rolesearch.store.versions import IndexFiles

ENCODE_ROWS = 65_536  # texts per encoder call: bounds the encoder's output array, not its batching
_GATHER_ROWS = 65_536


@dataclass(frozen=True)
class RowPlan:
    """Each row's source in the previous version (-1: none), and what the new rows need embedded."""

    passages: np.ndarray  # previous row of each passage's vector
    sentences: np.ndarray  # previous row of each sentence row's vector
    sentence_starts: np.ndarray  # n + 1: passage i owns sentence rows starts[i]:starts[i + 1]
    sentence_numbers: np.ndarray  # uint64 key of every sentence row (sentence_keys.npy)
    new_sentence_rows: np.ndarray  # sentence rows without a source, with their keys and texts
    new_sentence_keys: list[str]
    new_sentence_texts: list[str]

    def missing(self, passages: list[Passage]) -> list[tuple[int, int, str, str]]:
        """(array, row, key, text) of every row whose vector the previous version has not: array 0 is the
        passages', 1 the sentences'."""
        out = [(0, int(i), passages[i].hash, embed_text(passages[i].title, passages[i].section, passages[i].text))
               for i in np.flatnonzero(self.passages < 0)]
        out += [(1, int(r), k, t) for r, k, t in zip(self.new_sentence_rows, self.new_sentence_keys,
                                                     self.new_sentence_texts)]
        return out


class PassageRows(Sequence[Passage]):
    """A build's passages in row order: a row taken from the previous version is decoded only when asked
    for; the others are the chunked passages, in order."""

    def __init__(self, previous: Sequence[Passage] | None, reused: np.ndarray, chunked: list[Passage]):
        self.previous, self.reused, self.chunked = previous, reused, chunked
        self.position = np.cumsum(reused < 0) - 1  # row i's place in chunked, where reused[i] < 0
        if int((reused < 0).sum()) != len(chunked):
            raise ValueError(f"{int((reused < 0).sum())} new rows but {len(chunked)} chunked passages")

    def __len__(self) -> int:
        return len(self.reused)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        r = int(self.reused[i])
        return self.previous[r] if r >= 0 else self.chunked[int(self.position[i])]


def sequential(previous: IndexFiles | None, name: str) -> np.ndarray | None:
    """A previous version's <name>.npy mapped for reading in order (the served mapping reads at random)."""
    if previous is None or not (previous.path / f"{name}.npy").exists():
        return None
    return np.load(previous.path / f"{name}.npy", mmap_mode="r")


def article_rows(previous: IndexFiles) -> dict[str, tuple[int, int]]:
    """(first row, passages) of each article of a version: its passages are consecutive rows, articles in
    manifest order (checked; an article that does not line up is left out and chunked again)."""
    out: dict[str, tuple[int, int]] = {}
    row = 0
    for aid, entry in previous.manifest.articles.items():
        n = int(entry.get("passages") or 0)
        out[aid] = (row, n)
        row += n
    ids = _article_ids(previous.passages)
    if row == len(ids) and all(n == 0 or ids[first] == aid == ids[first + n - 1] for aid, (first, n) in out.items()):
        return out
    runs: dict[str, list[int]] = {}
    for i, aid in enumerate(ids):
        runs.setdefault(aid, []).append(i)
    return {aid: (rows[0], len(rows)) for aid, rows in runs.items() if rows[-1] - rows[0] + 1 == len(rows)}


def _article_ids(passages: Sequence[Passage]) -> Sequence[str]:
    """Each row's article id: the passage table's column when there is one (no row decoded)."""
    ids = getattr(passages, "article_ids", None)
    return ids if ids is not None else [p.article_id for p in passages]


def plan_rows(passages: list[Passage], reused: np.ndarray, previous: IndexFiles | None,
              moved: np.ndarray | None = None, params: SentenceParams = LEGACY) -> RowPlan:
    """The sources of every passage and sentence row (reused: each passage's previous row, -1 if chunked;
    moved: for each chunked passage, in order, a previous row whose vectors it takes, -1 for none).

    previous must have been built with the same sentence params and sentence vector space (ingest.changes
    checks it), since a reused passage brings its sentence rows as they are."""
    src = np.array(reused, dtype=np.int64, copy=True)
    prev_starts = prev_numbers = None
    if previous is not None:
        todo = np.flatnonzero(src < 0)
        if len(todo):  # a chunked passage the previous version has under the same hash: same text, same vectors
            src[todo] = _rows_of_hashes(previous.passages, [passages[i].hash for i in todo])
            if moved is not None and len(moved) == len(todo):  # a moved page: its old title's vectors
                src[todo] = np.where(src[todo] >= 0, src[todo], moved)
        if previous.sentence_embeddings is not None:
            prev_starts, prev_numbers = previous_sentences(previous)
    has = (src >= 0) if prev_starts is not None else np.zeros(len(passages), dtype=bool)
    counts = np.zeros(len(passages), dtype=np.int64)
    counts[has] = prev_starts[src[has] + 1] - prev_starts[src[has]] if has.any() else 0
    need = np.flatnonzero(~has)
    split = split_sentences((passages[i] for i in need), params)
    counts[need] = split.counts
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    sentence_src = np.full(int(starts[-1]), -1, dtype=np.int64)
    numbers = np.zeros(int(starts[-1]), dtype=np.uint64)
    lengths = counts[has]
    if lengths.sum():
        within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        rows = np.repeat(starts[:-1][has], lengths) + within
        sentence_src[rows] = np.repeat(prev_starts[src[has]], lengths) + within
        numbers[rows] = prev_numbers[sentence_src[rows]]
    new_rows = (np.repeat(starts[:-1][need], split.counts) +
                np.arange(len(split.keys)) - np.repeat(np.cumsum(split.counts) - split.counts, split.counts))
    new_numbers = np.fromiter((key_number(k) for k in split.keys), dtype=np.uint64, count=len(split.keys))
    numbers[new_rows] = new_numbers
    if prev_numbers is not None and len(new_rows):  # sentences the previous version has elsewhere
        order = np.argsort(prev_numbers, kind="stable")
        at = np.minimum(np.searchsorted(prev_numbers[order], new_numbers), len(order) - 1)
        hit = prev_numbers[order[at]] == new_numbers
        sentence_src[new_rows[hit]] = order[at[hit]]
    still = sentence_src[new_rows] < 0
    return RowPlan(src, sentence_src, starts, numbers, new_rows[still],
                   [k for k, s in zip(split.keys, still) if s], [t for t, s in zip(split.texts, still) if s])


def _rows_of_hashes(table: Sequence[Passage], hashes: list[str]) -> np.ndarray:
    """The first row of table with each hash, or -1 (from the table's hash column when it has one)."""
    column = getattr(table, "hashes", None)
    if column is None:
        first: dict[str, int] = {}
        for r, p in enumerate(table):
            first.setdefault(p.hash, r)
        return np.array([first.get(h, -1) for h in hashes], dtype=np.int64)
    column = np.asarray(column)
    order = np.argsort(column, kind="stable")  # stable: the first of equal hashes comes first
    wanted = np.array([h.encode("ascii") for h in hashes], dtype=column.dtype)
    at = np.minimum(np.searchsorted(column[order], wanted), max(len(order) - 1, 0))
    found = (column[order[at]] == wanted) if len(order) else np.zeros(len(hashes), dtype=bool)
    return np.where(found, order[at] if len(order) else -1, -1).astype(np.int64)


def previous_sentences(previous: IndexFiles) -> tuple[np.ndarray, np.ndarray]:
    """A version's sentence_starts and per-row sentence keys (split from its passages when it predates them)."""
    path = previous.path / "sentence_keys.npy"
    starts = previous.sentence_starts
    numbers = np.load(path) if path.exists() else None
    rows = len(previous.sentence_embeddings)
    if starts is None or numbers is None or len(numbers) != rows:
        split = split_sentences(previous.passages, SentenceParams.from_manifest(previous.manifest.sentence_units))
        starts = np.concatenate([[0], np.cumsum(split.counts)]).astype(np.int64)
        numbers = np.fromiter((key_number(k) for k in split.keys), dtype=np.uint64, count=len(split.keys))
        if len(numbers) != rows:
            raise ValueError(f"{previous.path.name}: {rows} sentence vectors but {len(numbers)} sentences")
    return np.asarray(starts, dtype=np.int64), numbers


def gather(dst: np.ndarray, src: np.ndarray | None, rows: np.ndarray) -> None:
    """dst[i] = src[rows[i]] wherever rows[i] >= 0, a block of rows at a time."""
    if src is None:
        return
    for lo in range(0, len(rows), _GATHER_ROWS):
        part = rows[lo:lo + _GATHER_ROWS]
        take = np.flatnonzero(part >= 0)
        if len(take) == len(part) and len(part) and part[-1] - part[0] == len(part) - 1:
            dst[lo:lo + len(part)] = src[part[0]:part[-1] + 1]  # one run: a slice copy
        elif len(take):
            dst[lo + take] = src[part[take]]


def fill_missing(missing: list[tuple[int, int, str, str]], arrays: list[np.ndarray], cache: EmbeddingCache | None,
                 embedder: Encoder, progress: bool = False, on_progress: Callable[[int, int], None] | None = None,
                 read_cache: bool = True) -> set[str]:
    """Write a vector into every missing (array, row): from the cache, else embedded (each distinct key once).

    New vectors go into the cache group by group as they are made, so a build killed while embedding
    loses none of the work done. Returns the keys embedded now.
    """
    slot: dict[str, int] = {}
    texts: list[str] = []
    target = np.empty(len(missing), dtype=np.int64)
    for j, (_, _, key, text) in enumerate(missing):
        if key not in slot:
            slot[key] = len(texts)
            texts.append(text)
        target[j] = slot[key]
    keys = list(slot)
    found = cache.get_many(keys) if cache is not None and read_cache else {}
    if found:
        cache.touch(found)
    # Processing order: cached keys first, then the ones to embed; each array's rows sorted by it.
    is_found = np.fromiter((k in found for k in keys), dtype=bool, count=len(keys))
    order = np.concatenate([np.flatnonzero(is_found), np.flatnonzero(~is_found)])
    position = np.empty(len(keys), dtype=np.int64)
    position[order] = np.arange(len(keys))
    which = np.fromiter((m[0] for m in missing), dtype=np.int64, count=len(missing))
    rows = np.fromiter((m[1] for m in missing), dtype=np.int64, count=len(missing))
    per_array = []
    for a in range(len(arrays)):
        mine = np.flatnonzero(which == a)
        pos = position[target[mine]]
        srt = np.argsort(pos, kind="stable")
        per_array.append((pos[srt], rows[mine][srt]))

    def write(lo: int, vectors: np.ndarray) -> None:
        for array, (pos, dst) in zip(arrays, per_array):
            i0, i1 = np.searchsorted(pos, [lo, lo + len(vectors)])
            if i1 > i0:
                array[dst[i0:i1]] = vectors[pos[i0:i1] - lo]

    n_found = int(is_found.sum())
    if n_found:
        write(0, np.stack([found[keys[i]] for i in order[:n_found]]).astype(np.float32))
    todo = order[n_found:]
    for lo in range(0, len(todo), ENCODE_ROWS):
        part = todo[lo:lo + ENCODE_ROWS]

        def store(idx: list[int], vectors: np.ndarray, part=part) -> None:
            if cache is not None:
                cache.put_many({keys[part[i]]: v for i, v in zip(idx, vectors)})

        def progressed(done: int, total: int, lo=lo) -> None:
            if on_progress is not None:
                on_progress(lo + done, len(todo))

        vectors = embedder.encode([texts[i] for i in part], progress=progress, on_progress=progressed, on_vectors=store)
        write(n_found + lo, np.asarray(vectors, dtype=np.float32))
    return {keys[i] for i in todo}
