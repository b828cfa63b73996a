"""Rows of a memory-mapped vector file read by pread equal the array's own rows."""

from __future__ import annotations

import numpy as np
import pytest

from rolesearch.store.vector_rows import ArrayRows, VectorRows, row_ranges, vector_rows


def test_pread_rows_equal_the_mapped_rows(tmp_path):
    data = np.random.default_rng(0).normal(size=(1000, 7)).astype(np.float32)
    np.save(tmp_path / "v.npy", data)
    mapped = np.load(tmp_path / "v.npy", mmap_mode="r")
    reader = vector_rows(mapped)
    assert isinstance(reader, VectorRows) and isinstance(vector_rows(data), ArrayRows)
    rows = np.array([999, 3, 4, 5, 3, 0, 500, 501, 2])  # unordered, repeated, runs, both ends
    assert np.array_equal(reader.take(rows), data[rows])
    assert reader.take(np.array([], dtype=np.int64)).shape == (0, 7)
    starts, ends = np.array([10, 0, 998, 5]), np.array([13, 0, 1000, 6])
    assert np.array_equal(reader.ranges(starts, ends), data[row_ranges(starts, ends)])
    assert np.array_equal(vector_rows(data).ranges(starts, ends), reader.ranges(starts, ends))
    with pytest.raises(IndexError):
        reader.ranges(np.array([999]), np.array([1001]))
