"""The passages of a version as a memory-mapped table: row i is decoded from disk when it is asked for.

    passages.jsonl          row i: one JSON object per line (the format versions have always had)
    passages.offsets.npy    int64 (n + 1): row i is bytes offsets[i]:offsets[i + 1] of passages.jsonl
    passages.article.npy    int32 (n): row i's article, as a position in passages.articles.json
    passages.articles.json  the article ids, in code order
    passages.hash.npy       bytes (n): row i's passage hash (ASCII)
    passages.roles.npy      bool (n): row i attributes its duties to a role

Parsing a million rows into `Passage` objects took seconds and ~7 KB a passage of resident memory;
a query only reads the few rows it returns, and whole-index work (scope masks, the role prior,
an incremental build's reuse) reads the columns, which stay on disk until touched. A version
written before the columns existed is parsed once at open and served from the same columns.
"""

from __future__ import annotations

import json
import mmap
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from rolesearch.store.passage import Passage

ROWS = "passages.jsonl"
OFFSETS = "passages.offsets.npy"
ARTICLE = "passages.article.npy"
ARTICLES = "passages.articles.json"
HASH = "passages.hash.npy"
ROLES = "passages.roles.npy"
FILES = (ROWS, OFFSETS, ARTICLE, ARTICLES, HASH, ROLES)
_SAMPLE = 32  # rows decoded at open to check that offsets and columns agree with the rows


class PassageTableError(ValueError):
    """The passages files do not agree with each other (truncated, corrupt or missing)."""


def write_passages(folder: Path, passages: Sequence[Passage],
                   reuse: tuple["PassageTable", np.ndarray] | None = None) -> int:
    """Write the rows and their columns into folder; returns the number of rows.

    reuse, (a previous version's table, each row's row there or -1), copies those rows' bytes and
    columns from it instead of encoding them (runs of consecutive rows in one piece): a build that
    keeps most passages writes them without decoding any. Rows not reused are read from passages.
    """
    folder = Path(folder)
    n = len(passages)
    rows = np.full(n, -1, dtype=np.int64) if reuse is None else np.asarray(reuse[1], dtype=np.int64)
    table = reuse[0] if reuse is not None else None
    lengths = np.zeros(n, dtype=np.int64)
    codes = np.zeros(n, dtype=np.int32)
    hashes: list[bytes] = [b""] * n
    roles = np.zeros(n, dtype=bool)
    names: dict[str, int] = {}
    # Runs: consecutive rows that are consecutive rows of the previous table, stored back to back there.
    starts_at = np.flatnonzero(np.r_[True, (rows[1:] != rows[:-1] + 1) | (rows[1:] < 0) | (rows[:-1] < 0)]) \
        if n else np.zeros(0, dtype=np.int64)
    bounds = np.r_[starts_at, n].astype(np.int64)
    with open(folder / ROWS, "wb") as f:
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            first = rows[lo]
            if first < 0:
                for i in range(lo, hi):
                    p = passages[i]
                    line = (json.dumps(p.to_dict(), ensure_ascii=False) + "\n").encode("utf-8")
                    f.write(line)
                    lengths[i] = len(line)
                    codes[i] = names.setdefault(p.article_id, len(names))
                    hashes[i] = p.hash.encode("ascii")
                    roles[i] = bool(p.roles)
                continue
            old = np.arange(first, first + hi - lo)
            begin, end = np.asarray(table._starts[old]), np.asarray(table._ends[old])
            if len(old) > 1 and np.any(begin[1:] != end[:-1]):  # rows not back to back (a parsed old file)
                for b, e in zip(begin, end):
                    f.write(table._rows[int(b):int(e)])
            else:
                f.write(table._rows[int(begin[0]):int(end[-1])])
            lengths[lo:hi] = end - begin
            article = np.asarray(table.article_codes[old])
            for j in np.flatnonzero(np.r_[True, article[1:] != article[:-1]]):  # codes in order of appearance
                names.setdefault(table.article_names[int(article[j])], len(names))
            uniq, inverse = np.unique(article, return_inverse=True)
            codes[lo:hi] = np.array([names[table.article_names[int(c)]] for c in uniq], dtype=np.int32)[inverse]
            hashes[lo:hi] = [bytes(h) for h in np.asarray(table.hashes[old])]
            roles[lo:hi] = np.asarray(table.has_roles[old])
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    np.save(folder / OFFSETS, offsets)
    np.save(folder / ARTICLE, codes)
    np.save(folder / HASH, np.asarray(hashes, dtype=f"S{max((len(h) for h in hashes), default=1)}"))
    np.save(folder / ROLES, roles)
    (folder / ARTICLES).write_text(json.dumps(list(names), ensure_ascii=False), encoding="utf-8")
    return n


class PassageTable(Sequence[Passage]):
    """Passages by row, decoded on access, with the row-order columns whole-index work needs."""

    def __init__(self, rows: bytes | mmap.mmap, starts: np.ndarray, ends: np.ndarray, article_codes: np.ndarray,
                 article_names: Sequence[str], hashes: np.ndarray, has_roles: np.ndarray):
        self._rows = rows
        self._starts, self._ends = starts, ends  # row i is bytes starts[i]:ends[i] of passages.jsonl
        self.article_codes = article_codes  # int32 (n): position of row i's article in article_names
        self.article_names = tuple(article_names)
        self.hashes = hashes  # bytes (n): row i's Passage.hash, ASCII
        self.has_roles = has_roles  # bool (n): row i's Passage.roles is not empty

    @classmethod
    def open(cls, folder: Path) -> "PassageTable":
        """The table of a version folder: memory-mapped when its columns exist, parsed once when they do not.

        Raises PassageTableError when the files disagree (FileNotFoundError when passages.jsonl is missing).
        """
        folder = Path(folder)
        if not (folder / OFFSETS).exists():
            return cls.parse(folder / ROWS)
        rows = _map(folder / ROWS)
        try:
            offsets = np.load(folder / OFFSETS, mmap_mode="r")
            codes = np.load(folder / ARTICLE, mmap_mode="r")
            hashes = np.load(folder / HASH, mmap_mode="r")
            roles = np.load(folder / ROLES, mmap_mode="r")
            names = json.loads((folder / ARTICLES).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PassageTableError(f"passage columns cannot be read ({exc})") from exc
        n = len(offsets) - 1
        if n < 0 or offsets[0] != 0 or int(offsets[-1]) != len(rows):
            raise PassageTableError(f"{ROWS} has {len(rows)} bytes but {OFFSETS} ends at "
                                    f"{int(offsets[-1]) if len(offsets) else 'nothing'} (truncated or rewritten)")
        if not (len(codes) == len(hashes) == len(roles) == n):
            raise PassageTableError(f"passage columns have {len(codes)}, {len(hashes)}, {len(roles)} rows, "
                                    f"offsets {n}")
        if n and (np.any(np.diff(offsets) <= 0) or int(codes.max()) >= len(names) or int(codes.min()) < 0):
            raise PassageTableError(f"{OFFSETS} or {ARTICLE} is corrupt")
        table = cls(rows, offsets[:-1], offsets[1:], codes, names, hashes, roles)
        table._check_sample()
        return table

    @classmethod
    def parse(cls, path: Path) -> "PassageTable":
        """The table of a passages.jsonl alone (a version written before the columns): every row parsed once."""
        data = Path(path).read_bytes()
        offsets, codes, hashes, roles = [], [], [], []
        names: dict[str, int] = {}
        position = 0
        for line in data.splitlines(keepends=True):
            if line.strip():
                try:
                    passage = Passage.from_dict(json.loads(line))
                except (ValueError, KeyError, TypeError) as exc:
                    raise PassageTableError(f"{path.name} line {len(offsets) + 1} is not a passage ({exc})") from exc
                offsets.append((position, position + len(line)))
                codes.append(names.setdefault(passage.article_id, len(names)))
                hashes.append(passage.hash.encode("ascii"))
                roles.append(bool(passage.roles))
            position += len(line)
        # Rows may be separated by blank lines here, so each row keeps its own span (start, end).
        spans = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
        return cls(data, spans[:, 0], spans[:, 1], np.asarray(codes, dtype=np.int32), list(names),
                    np.asarray(hashes, dtype=f"S{max((len(h) for h in hashes), default=1)}"),
                    np.asarray(roles, dtype=bool))

    def __len__(self) -> int:
        return len(self.article_codes)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"passage row {i} out of range ({n} rows)")
        try:
            return Passage.from_dict(json.loads(self._rows[int(self._starts[i]):int(self._ends[i])]))
        except (ValueError, KeyError, TypeError) as exc:
            raise PassageTableError(f"passage row {i} is corrupt ({exc})") from exc

    def __iter__(self) -> Iterator[Passage]:
        return (self[i] for i in range(len(self)))

    @property
    def article_ids(self) -> np.ndarray:
        """Row i's article id (an object array built from the codes; strings shared, not copied)."""
        return np.asarray(self.article_names, dtype=object)[np.asarray(self.article_codes)]

    def article_mask(self, ids: Iterable[str]) -> np.ndarray:
        """True for the rows whose article is in ids: one lookup per row in a table per article."""
        wanted = set(ids)
        lut = np.fromiter((a in wanted for a in self.article_names), dtype=bool, count=len(self.article_names))
        return lut[self.article_codes] if len(lut) else np.zeros(len(self), dtype=bool)

    def _check_sample(self) -> None:
        """Decode a few evenly spaced rows and compare them with the columns (a shifted offset shows here)."""
        n = len(self)
        for i in sorted({int(j) for j in np.linspace(0, n - 1, min(n, _SAMPLE))}) if n else ():
            p = self[i]
            if p.hash.encode("ascii") != bytes(self.hashes[i]) or \
                    p.article_id != self.article_names[self.article_codes[i]]:
                raise PassageTableError(f"passage row {i} does not match its columns")


def _map(path: Path) -> bytes | mmap.mmap:
    """The file's bytes, memory-mapped read-only (an empty file cannot be mapped: its bytes are b"")."""
    with open(path, "rb") as f:
        if f.seek(0, 2) == 0:
            return b""
        rows = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    rows.madvise(mmap.MADV_RANDOM)  # a query reads a few rows: no disk read-around (megabytes) for each
    return rows
