"""An index built before the move into one `rolesearch` package (tests/data/index-before-move, written by the
code of commit 6e630ca over conftest's SMALL_ARTICLES) is served, ranked and built upon as one built today."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from rolesearch.api.app import create_app
from rolesearch.ingest.pipeline import build_index
from rolesearch.search.index import SearchIndex
from rolesearch.search.searcher import Searcher
from rolesearch.settings import Settings
from tests.conftest import DATA

BEFORE = DATA / "index-before-move"
QUESTIONS = ["who owns model rollback?", "what does an ML engineer earn in New York?", "drift monitoring alerts"]


@pytest.fixture
def old_index(tmp_path) -> Path:
    """A copy of the committed old index, safe to build on."""
    dest = tmp_path / "old-index"
    shutil.copytree(BEFORE, dest)
    return dest


def test_an_index_from_before_the_move_ranks_as_a_fresh_build(old_index, small_index, embedder):
    old = Searcher(SearchIndex.load(old_index, embedder.name), embedder)
    new = Searcher(SearchIndex.load(small_index, embedder.name), embedder)
    assert old.index.manifest.version != new.index.manifest.version
    for q in QUESTIONS:
        a, b = old.search(q, k=3), new.search(q, k=3)
        assert [h.passage.id for h in a.hits] == [h.passage.id for h in b.hits], q
        np.testing.assert_allclose([h.score for h in a.hits], [h.score for h in b.hits], atol=1e-5)
    assert old.search(QUESTIONS[0], k=1).hits[0].passage.article_id == "rollback"


def test_an_index_from_before_the_move_is_served(old_index, embedder):
    app = create_app(Settings(index_dir=old_index, reload_interval=0), embedder=embedder)
    with TestClient(app) as c:
        r = c.get("/search", params={"q": "who owns model rollback?", "k": 2})
        assert r.status_code == 200, r.text
        hits = r.json()["hits"]
        assert hits[0]["article_id"] == "rollback" and "rollback" in hits[0]["text"]
        assert c.get("/healthz").json()["passages"] == 3


def test_a_build_on_top_of_an_old_index_reuses_its_rows(old_index, small_corpus, embedder):
    summary = build_index(small_corpus, old_index, embedder).to_dict()
    assert summary["articles"]["unchanged"] == 2 and summary["passages"]["embedded"] == 0
    assert summary["passages"]["reused"] == 3
