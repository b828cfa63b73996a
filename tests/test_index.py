"""The index on disk: round trip, manifest checks, publishing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rolesearch.ingest.pipeline import build_index
from rolesearch.search.index import SearchIndex
from rolesearch.store.manifest import IndexCorrupt, IndexMismatch, IndexNotFound, current_version, version_dir
from rolesearch.store.versions import load_version


def test_round_trip(small_index, embedder):
    files = load_version(small_index, model=embedder.name)
    m = files.manifest
    assert m.model == embedder.name and m.dimension == 384
    assert m.chunking == {"max_tokens": 200, "min_item_tokens": 40, "encoding": "cl100k_base"}
    assert set(m.articles) == {"rollback", "salaries"}
    assert m.articles["rollback"]["title"] == "Who does what in ML"
    assert m.articles["rollback"]["url"] == "https://wiki.example/ml-roles"
    assert len(m.articles["rollback"]["hash"]) == 32
    assert m.passages == len(files.passages) == files.dense.ntotal
    # stored vectors are normalised and are the ones the dense index searches
    assert np.allclose(np.linalg.norm(files.embeddings, axis=1), 1.0, atol=1e-4)
    scores, ids = files.dense.search(files.embeddings[:1], 1)
    assert ids[0][0] == 0 and scores[0][0] == pytest.approx(1.0, abs=1e-4)
    [p] = [p for p in files.passages if "rollback" in p.text.lower()]
    assert p.section == ("MLOps Engineer",)


def test_model_mismatch_is_refused(small_index):
    with pytest.raises(IndexMismatch, match="rolesearch ingest"):
        SearchIndex.load(small_index, model="some-other-model")


def test_missing_and_inconsistent_index(tmp_path, small_index):
    with pytest.raises(IndexNotFound):
        load_version(tmp_path / "nothing-here")
    folder = version_dir(small_index, current_version(small_index))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["passages"] += 1
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorrupt, match="inconsistent"):
        load_version(small_index)


def test_rebuild_publishes_new_version_and_reuses_vectors(small_corpus, small_index, embedder):
    first = current_version(small_index)
    summary = build_index(small_corpus, small_index, embedder)
    assert summary.passages["embedded"] == 0 and summary.passages["reused"] == summary.passages["total"]
    assert summary.articles["unchanged"] == 2
    assert current_version(small_index) != first
    assert load_version(small_index).manifest.version == summary.version
