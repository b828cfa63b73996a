"""Reading a few rows of a large .npy vector file with pread, not through a memory mapping.

Exact rescoring reads a few hundred scattered rows per query. Through a mapping, the kernel maps
whole page-cache folios (up to megabytes each) into the process for every row touched, so after a
few hundred queries the resident size counts most of the file (clean, reclaimable, but reported as
the server's memory). pread copies just the rows' bytes; the file stays in the page cache, shared.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def vector_rows(array: np.ndarray) -> "VectorRows | ArrayRows":
    """The row reader for an array: pread for a memory-mapped .npy, plain indexing for one in memory."""
    return VectorRows(array) if isinstance(array, np.memmap) and array.ndim == 2 and array.filename else ArrayRows(array)


def row_ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The rows starts[0]:ends[0], starts[1]:ends[1], ... concatenated (without a Python loop)."""
    lengths = ends - starts
    firsts = np.cumsum(lengths) - lengths
    return np.arange(int(lengths.sum())) - np.repeat(firsts, lengths) + np.repeat(starts, lengths)


class ArrayRows:
    """The VectorRows interface over an array in memory."""

    def __init__(self, array: np.ndarray):
        self.array = array

    def ranges(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        return np.asarray(self.array[row_ranges(starts, ends)])

    def take(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.array[rows])


class VectorRows:
    """Rows of a 2-d .npy file read on demand (the array's own memmap gives its shape, dtype and offset)."""

    def __init__(self, array: np.memmap):
        self.path = Path(array.filename)
        self.offset, self.dtype = int(array.offset), array.dtype
        self.width = int(array.shape[1])
        self.row_bytes = self.width * self.dtype.itemsize
        self.rows = int(array.shape[0])
        self._fd = os.open(self.path, os.O_RDONLY)

    def __del__(self):
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)

    def ranges(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Rows starts[0]:ends[0], starts[1]:ends[1], ... one after another, with one pread per range."""
        total = int(np.sum(ends - starts))
        out = np.empty((total, self.width), dtype=self.dtype)
        buffer = memoryview(out.reshape(-1).view(np.uint8))
        at = 0
        for a, b in zip(starts.tolist(), ends.tolist()):
            n = (b - a) * self.row_bytes
            if n:
                if not 0 <= a <= b <= self.rows:
                    raise IndexError(f"rows {a}:{b} of {self.rows}")
                if os.preadv(self._fd, [buffer[at:at + n]], self.offset + a * self.row_bytes) != n:
                    raise OSError(f"{self.path} is shorter than its header says")
                at += n
        return out

    def take(self, rows: np.ndarray) -> np.ndarray:
        """array[rows] (any order; neighbouring rows are read together)."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return np.empty((0, self.width), dtype=self.dtype)
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        breaks = np.flatnonzero(np.diff(sorted_rows) > 1) + 1
        firsts = sorted_rows[np.concatenate([[0], breaks])]
        lasts = sorted_rows[np.concatenate([breaks - 1, [len(rows) - 1]])] + 1
        block = self.ranges(firsts, lasts)
        # Position of each sorted row inside the block of ranges read.
        lengths = lasts - firsts
        base = np.repeat(np.cumsum(lengths) - lengths - firsts, np.diff(np.concatenate([[0], breaks, [len(rows)]])))
        out = np.empty((len(rows), self.width), dtype=self.dtype)
        out[order] = block[sorted_rows + base]
        return out
