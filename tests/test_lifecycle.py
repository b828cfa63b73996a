"""Incremental builds, the embedding cache, bad articles, failed builds, leftovers, swaps in the service."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from rolesearch.api.service import Service
from rolesearch.encoder.base import Encoder
from rolesearch.ingest.cache import EmbeddingCache, cache_path
from rolesearch.ingest.chunking import ChunkingParams
from rolesearch.ingest.pipeline import build_index
from rolesearch.search.index import SearchIndex
from rolesearch.search.searcher import Searcher
from rolesearch.settings import Settings
from rolesearch.store.manifest import current_version, version_dir
from rolesearch.store.sentences import sentence_units
from rolesearch.store.versions import load_version
from tests.conftest import DRIFT_ARTICLE


def _hashes(index_dir, version=None) -> set[str]:
    return {p.hash for p in load_version(index_dir, version).passages}


def test_summary_has_the_documented_shape(small_corpus, tmp_path, embedder):
    s = build_index(small_corpus, tmp_path / "index", embedder).to_dict()
    assert set(s) == {"version", "articles", "passages", "sentences", "seconds", "full_rebuild", "reason", "skipped",
                      "renamed", "sources", "published"}
    assert s["published"] is True
    assert s["sources"] == []  # the folder source counts nothing; a crawl or a live wiki says what it did
    assert s["articles"] == {"added": 2, "changed": 0, "removed": 0, "unchanged": 0, "skipped": 0}
    assert set(s["passages"]) == {"embedded", "reused", "total"}
    assert s["passages"]["embedded"] == s["passages"]["total"] == load_version(tmp_path / "index").manifest.passages
    assert s["sentences"]["total"] == load_version(tmp_path / "index").manifest.sentences > s["passages"]["total"]
    assert s["full_rebuild"] is True and s["reason"] == "full build because there is no index yet"
    assert s["seconds"] > 0


def test_only_changed_passages_are_embedded(small_corpus, small_index, embedder):
    before = load_version(small_index)
    text = (small_corpus / "rollback.md").read_text()
    (small_corpus / "rollback.md").write_text(text.replace("selects and builds", "chooses and builds"))
    (small_corpus / "drift.md").write_text(DRIFT_ARTICLE)
    (small_corpus / "salaries.txt").unlink()

    s = build_index(small_corpus, small_index, embedder)
    after = load_version(small_index)
    assert s.reason == "incremental build: only new or changed passages are embedded" and not s.full_rebuild
    assert s.articles == {"added": 1, "changed": 1, "removed": 1, "unchanged": 0, "skipped": 0}
    new = _hashes(small_index) - {p.hash for p in before.passages}
    # one passage of the edited article (its ML Engineer section) plus the new article's passages
    drift = [p for p in after.passages if p.article_id == "drift"]
    assert len(new) == 1 + len(drift)
    assert s.passages == {"embedded": len(new), "reused": after.manifest.passages - len(new),
                          "total": after.manifest.passages}
    # the untouched rollback passages kept their vectors bit for bit; the removed article is gone
    old_vec = {p.hash: before.embeddings[i] for i, p in enumerate(before.passages)}
    for i, p in enumerate(after.passages):
        if p.hash in old_vec:
            assert np.array_equal(after.embeddings[i], old_vec[p.hash])
    assert {p.article_id for p in after.passages} == {"rollback", "drift"}
    assert set(after.manifest.articles) == {"rollback", "drift"}
    hits = Searcher(SearchIndex.load(small_index), embedder).search("salary in New York", k=5).hits
    assert all(h.passage.article_id != "salaries" for h in hits)


def test_removed_then_restored_article_comes_back_from_the_cache(small_corpus, small_index, embedder):
    saved = (small_corpus / "salaries.txt").read_bytes()
    (small_corpus / "salaries.txt").unlink()
    assert build_index(small_corpus, small_index, embedder).articles["removed"] == 1
    build_index(small_corpus, small_index, embedder)  # the previous version no longer has it either
    (small_corpus / "salaries.txt").write_bytes(saved)
    s = build_index(small_corpus, small_index, embedder)
    assert s.articles["added"] == 1
    assert s.passages["embedded"] == 0 and s.passages["reused"] == s.passages["total"]
    hit = Searcher(SearchIndex.load(small_index), embedder).search("salary of an ML engineer in New York", 1, "dense").hits[0]
    assert hit.passage.article_id == "salaries"


def test_renamed_article_embeds_nothing(small_corpus, small_index, embedder):
    (small_corpus / "salaries.txt").rename(small_corpus / "pay.txt")
    s = build_index(small_corpus, small_index, embedder)
    assert s.renamed == [{"from": "salaries", "to": "pay"}]
    assert s.articles == {"added": 1, "changed": 0, "removed": 1, "unchanged": 1, "skipped": 0}
    assert s.passages["embedded"] == 0
    hit = Searcher(SearchIndex.load(small_index), embedder).search("salary of an ML engineer in New York", 1, "dense").hits[0]
    assert hit.passage.article_id == "pay" and hit.passage.id.startswith("pay:")


def test_model_change_is_a_full_rebuild_said_plainly(small_corpus, small_index, embedder):
    folder = version_dir(small_index, current_version(small_index))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["model"] = "another-model"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    s = build_index(small_corpus, small_index, embedder)
    assert s.full_rebuild
    assert s.reason == "full rebuild because the model changed (another-model -> all-MiniLM-L6-v2)"
    # the cache is keyed by model: these texts were embedded with the configured model before
    assert s.passages["embedded"] == 0
    assert load_version(small_index).manifest.model == embedder.name


def test_chunking_change_is_a_full_rebuild_said_plainly(small_corpus, small_index, embedder):
    s = build_index(small_corpus, small_index, embedder, ChunkingParams(max_tokens=100))
    assert s.full_rebuild
    assert s.reason == "full rebuild because the chunking parameters changed (max_tokens 200 -> 100)"
    assert s.articles["unchanged"] == 2
    assert load_version(small_index).manifest.chunking["max_tokens"] == 100


def test_full_flag_embeds_everything_again(small_corpus, small_index, embedder):
    s = build_index(small_corpus, small_index, embedder, full=True)
    assert s.full_rebuild and s.reason == "full rebuild because it was asked for (--full)"
    assert s.passages["embedded"] == s.passages["total"] > 0


def test_bad_articles_are_skipped_by_name_with_the_reason(small_corpus, tmp_path, embedder):
    (small_corpus / "empty.txt").write_text("  \n")
    (small_corpus / "binary.txt").write_bytes(b"PK\x03\x04\x00\x00binary")
    (small_corpus / "latin1.txt").write_bytes("Un caf\xe9 pour l'\xe9quipe".encode("latin-1"))
    (small_corpus / "huge.txt").write_text("word " * 400_001)
    (small_corpus / "badfm.md").write_text("---\ntitle: [unclosed\n---\n# Body\n\nSome text.\n")
    s = build_index(small_corpus, tmp_path / "index", embedder)
    assert s.articles == {"added": 2, "changed": 0, "removed": 0, "unchanged": 0, "skipped": 5}
    assert sorted(s.skipped, key=lambda d: d["path"]) == [
        {"path": "badfm.md", "reason": "front matter is not valid YAML (line 2)"},
        {"path": "binary.txt", "reason": "file is binary (contains NUL bytes)"},
        {"path": "empty.txt", "reason": "file is empty"},
        {"path": "huge.txt", "reason": "file is 2,000,005 bytes, over the 2,000,000-byte limit"},
        {"path": "latin1.txt", "reason": "file is not valid UTF-8 (byte 6)"},
    ]
    files = load_version(tmp_path / "index")
    assert set(files.manifest.articles) == {"rollback", "salaries"}
    assert {p.article_id for p in files.passages} == {"rollback", "salaries"}
    assert files.manifest.skipped["empty.txt"] == "file is empty"


class _DiesAfterFirstGroup:
    """The real model, but encoding fails after its first group of vectors (a crash mid-build)."""

    def __init__(self, real: Encoder):
        self.inner = replace(real.spec, batch_size=2).load()  # groups of 8, whatever the backend

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode(self, texts, progress=False, on_progress=None, on_vectors=None):
        def first_then_fail(idx, vectors):
            on_vectors(idx, vectors)
            raise RuntimeError("embedding died")
        return self.inner.encode(texts, progress, on_progress, first_then_fail)


def test_failed_build_leaves_the_published_index_untouched(copy_corpus, tmp_path, embedder):
    index = tmp_path / "index"
    (copy_corpus / "extra.md").write_text(DRIFT_ARTICLE)
    build_index(copy_corpus, index, embedder)
    published = current_version(index)
    text = (copy_corpus / "tenyks-ml-vs-mlops-engineer.txt").read_text()
    (copy_corpus / "tenyks-copy.txt").write_text("Tenyks, second edition\n\n" + text)
    with pytest.raises(RuntimeError, match="embedding died"):
        build_index(copy_corpus, index, _DiesAfterFirstGroup(embedder))
    assert current_version(index) == published
    assert [p.name for p in (index / "versions").iterdir()] == [published]
    assert Searcher(SearchIndex.load(index), embedder).search("who owns model rollback?", 3).index_version == published
    # the lock is free again, and the vectors made before the failure were kept
    old = load_version(index).passages
    s = build_index(copy_corpus, index, embedder)
    keys = lambda passages: {p.hash for p in passages} | {k for k, _ in sentence_units(passages)}  # noqa: E731
    assert s.passages["embedded"] + s.sentences["embedded"] == len(keys(load_version(index).passages) - keys(old)) - 8


def test_progress_bar_shows_rate_on_stderr(small_corpus, tmp_path, embedder, capsys):
    build_index(small_corpus, tmp_path / "index", embedder, progress=True)
    err = capsys.readouterr().err
    assert "embedding" in err and "passages/s" in err


def test_leftovers_of_killed_builds_are_cleaned_and_old_versions_pruned(small_corpus, small_index, embedder):
    (small_index / "versions" / ".tmp-20990101T000000000000Z-abcdef").mkdir()
    (small_index / "versions" / ".trash-20000101T000000000000Z-abcdef").mkdir()
    (small_index / ".CURRENT.12345.tmp").write_text("x\n")
    for _ in range(4):
        last = build_index(small_corpus, small_index, embedder)
    versions = sorted(p.name for p in (small_index / "versions").iterdir())
    assert len(versions) == 3 and versions[-1] == last.version == current_version(small_index)
    assert not list(small_index.glob(".CURRENT.*"))


def test_damaged_cache_is_set_aside_not_fatal(small_corpus, small_index, embedder):
    path = cache_path(small_index)
    for extra in path.parent.glob(path.name + "-*"):  # WAL side files of the good cache
        extra.unlink()
    path.write_bytes(b"this is not a database" * 100)
    (small_corpus / "drift.md").write_text(DRIFT_ARTICLE)
    s = build_index(small_corpus, small_index, embedder)
    assert s.articles["added"] == 1 and s.passages["embedded"] >= 1
    assert list(path.parent.glob("*.corrupt-*"))
    with EmbeddingCache(path, embedder.name, embedder.dimension) as cache:
        assert len(cache) == s.passages["embedded"] + s.sentences["embedded"]


def test_cache_prunes_least_recently_used(tmp_path):
    with EmbeddingCache(tmp_path / "c.sqlite3", "m", 4) as cache:
        cache.put_many({"a": np.ones(4), "b": np.ones(4)})
        cache.put_many({"c": np.zeros(4)})
        cache.touch(["a"])
        assert cache.prune(2) == 1
        assert set(cache.get_many(["a", "b", "c"])) == {"a", "c"}
    with EmbeddingCache(tmp_path / "c.sqlite3", "other-model", 4) as other:
        assert other.get_many(["a"]) == {}


def test_swap_keeps_old_searcher_working_after_its_files_are_pruned(small_corpus, small_index, embedder):
    service = Service(Settings(index_dir=small_index), embedder)
    service.load()
    old = service.current()
    assert service.reload() is False  # nothing new published
    (small_corpus / "drift.md").write_text(DRIFT_ARTICLE)
    for _ in range(4):
        build_index(small_corpus, small_index, embedder)
    assert not old.index.path.exists()
    assert service.reload() is True
    assert service.version == current_version(small_index) != old.index.version
    # a request that took the old searcher before the swap finishes on it
    result = old.search("who rolls back a bad model release?", 1)
    assert result.index_version == old.index.version and result.hits[0].passage.id == "rollback:0"
    assert service.current().search("population stability index alert", 1).hits[0].passage.article_id == "drift"


def test_unloadable_published_version_keeps_the_served_one(small_corpus, small_index, embedder):
    service = Service(Settings(index_dir=small_index), embedder)
    service.load()
    served = service.version
    build_index(small_corpus, small_index, embedder)
    broken = current_version(small_index)
    (version_dir(small_index, broken) / "dense.faiss").write_bytes(b"garbage")
    assert service.reload() is False
    assert service.version == served and broken in service.reload_error
    assert service.reload() is False  # not retried until something new is published
    good = build_index(small_corpus, small_index, embedder).version
    assert service.reload() is True and service.version == good and service.reload_error is None

