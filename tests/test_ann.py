"""Dense index types: chosen by size, approximate ones agreeing with exact ranking, memory-mapped versions."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np
import pytest

from rolesearch.ingest.pipeline import build_index
from rolesearch.search.evaluation import evaluate_questions, load_questions
from rolesearch.search.index import SearchIndex
from rolesearch.search.searcher import Searcher
from rolesearch.store import ann
from rolesearch.store.ann import AnnParams
from rolesearch.store.manifest import new_version_id
from rolesearch.store.publish import publish, write_version
from rolesearch.store.versions import load_version
from tests.conftest import DATA


def test_size_rule_picks_the_index_type():
    params = AnnParams(exact_below=1000)
    assert params.choose(999) == "flat"
    assert params.choose(1000) == "ivf"
    assert replace(params, large="hnsw").choose(5000) == "hnsw"
    assert replace(params, kind="hnsw").choose(10) == "hnsw"
    with pytest.raises(ValueError, match="index kind"):
        replace(params, kind="annoy").choose(10)


def test_the_default_build_is_exact_and_says_so(corpus_index):
    manifest = json.loads(next((corpus_index / "versions").iterdir()).joinpath("manifest.json").read_text())
    assert manifest["ann"]["passages"]["kind"] == "flat"
    assert manifest["ann"]["sentences"]["kind"] == "flat"


def _forced(corpus_index: Path, target: Path, kind: str) -> SearchIndex:
    """The corpus index's vectors and passages written again as a version of the forced kind."""
    files = load_version(corpus_index)
    manifest = replace(files.manifest, version=new_version_id())
    write_version(target, manifest, files.passages, np.asarray(files.embeddings),
                  [lambda folder: shutil.copytree(files.path / "lexical", folder / "lexical")],
                  np.asarray(files.sentence_embeddings), AnnParams(kind=kind))
    publish(target, manifest.version)
    return SearchIndex.load(target)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_forced_approximate_index_agrees_with_exact_on_the_question_set(corpus_index, corpus_searcher, tmp_path, kind):
    index = _forced(corpus_index, tmp_path / kind, kind)
    assert index.kinds == (kind, kind) and index.sentence_index is not None
    searcher = Searcher(index, corpus_searcher.embedder)
    questions = load_questions(DATA / "questions.jsonl")
    recall = [len(set(searcher.dense_scores(q.question, 10)) & set(corpus_searcher.dense_scores(q.question, 10))) / 10
              for q in questions]
    assert np.mean(recall) >= 0.95, recall
    exact = evaluate_questions(corpus_searcher, questions, "hybrid")
    served = evaluate_questions(searcher, questions, "hybrid")
    one = 1 / len(questions)
    assert served["hit@3"] >= exact["hit@3"] - one and served["mrr@10"] >= exact["mrr@10"] - one, (served, exact)


def test_memory_mapped_ivf_version_answers_and_filters(corpus_index, corpus_searcher, tmp_path):
    index = _forced(corpus_index, tmp_path / "ivf", "ivf")
    assert isinstance(index.embeddings, np.memmap) and isinstance(index.sentences, np.memmap)
    searcher = Searcher(index, corpus_searcher.embedder)
    hits = searcher.search("who owns model rollback?", k=3).hits
    assert any("Model versioning and rollback" in h.passage.text for h in hits)
    # The allow mask still applies before ranking through the approximate index: k allowed hits come back.
    article = hits[0].passage.article_id
    others = np.array([p.article_id != article for p in index.passages])
    filtered = searcher.search("who owns model rollback?", k=5, allow=others).hits
    assert len(filtered) == 5 and all(h.passage.article_id != article for h in filtered)


def test_nprobe_set_at_load_overrides_the_versions_own(corpus_index, corpus_searcher, tmp_path):
    _forced(corpus_index, tmp_path / "ivf", "ivf")
    own = SearchIndex.load(tmp_path / "ivf")
    narrow = SearchIndex.load(tmp_path / "ivf", nprobe=1)
    assert own.ann_params.ivf_nprobe == AnnParams().ivf_nprobe and narrow.ann_params.ivf_nprobe == 1
    assert own.dense.nlist > 1  # so one list is not all of them
    query = corpus_searcher.embedder.encode_query("who owns model rollback?")[0]
    n = len(own.passages)
    # The version's own nprobe visits every list of this small index; nprobe 1 only the nearest one.
    assert len(ann.search(own.dense, "ivf", own.ann_params, query, n)) == n
    assert 0 < len(ann.search(narrow.dense, "ivf", narrow.ann_params, query, n)) < n


# --- recall where the approximation can fail: generated vectors, thousands of rows, no model -----------------


def _generated(rows: int, seed: int) -> np.ndarray:
    """Unit vectors around 60 centres in 64 dimensions, like embeddings of a few dozen topics; deterministic."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((60, 64))
    x = centres[rng.integers(0, 60, rows)] + 0.7 * rng.standard_normal((rows, 64))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def generated():
    """6,000 rows and 200 queries near some of them, with each query's exact top 10."""
    x = _generated(6000, 0)
    rng = np.random.default_rng(1)
    q = x[rng.choice(len(x), 200, replace=False)] + 0.3 * rng.standard_normal((200, 64)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x, q, np.argsort(-(q @ x.T), axis=1)[:, :10]


def _recall(index, kind: str, params: AnnParams, generated) -> float:
    _, queries, exact = generated
    return float(np.mean([len(set(ann.search(index, kind, params, q, 10)) & set(top)) / 10
                          for q, top in zip(queries, exact)]))


@pytest.mark.parametrize("kind, field, served, starved", [("ivf", "ivf_nprobe", 16, 1), ("hnsw", "hnsw_ef_search", 128, 16)])
def test_approximate_recall_on_generated_vectors_with_a_partial_search(generated, tmp_path, kind, field, served,
                                                                       starved):
    """Saved and opened memory-mapped as a version serves it; IVF visits 16 of its 153 lists (a tenth), HNSW
    explores 128 candidates of 6,000: recall@10 >= 0.95 is earned, and a starved search shows it could fail."""
    x, _, _ = generated
    index, trained, info, lists = ann.build(x, kind, AnnParams(kind=kind))
    ann.save(tmp_path, "dense", index, trained, lists)
    index = ann.load(tmp_path, "dense", kind)
    if kind == "ivf":
        assert info["lists"] == index.nlist == 153 and served * 8 < index.nlist
    high = _recall(index, kind, replace(AnnParams(kind=kind), **{field: served}), generated)
    low = _recall(index, kind, replace(AnnParams(kind=kind), **{field: starved}), generated)
    assert high >= 0.95 and low < 0.85, (high, low)


def test_reused_ivf_lists_after_rows_shift_equal_assigning_every_row(generated):
    """An incremental build's IVF over many lists: the rows of a removed block gone, later rows shifted up,
    new rows appended; their kept lists (by old row) plus fresh assignments give the index of a build that
    assigns every row with the same quantiser."""
    x, _, _ = generated
    _, trained, _, old_lists = ann.build(x[:5000], "ivf", AnnParams(kind="ivf"))
    assert len(np.unique(old_lists)) > 100  # many lists in use: a row given its neighbour's list shows
    kept = np.r_[0:2000, 2500:5000]  # a block in the middle removed
    new = np.vstack([x[kept], x[5000:]])  # and 1,000 new rows at the end
    rows = np.r_[kept, np.full(1000, -1)]  # each new row's old row, -1 for the new ones
    reused = np.where(rows >= 0, old_lists[np.maximum(rows, 0)], -1)
    index, _, info, lists = ann.build(new, "ivf", AnnParams(kind="ivf"), trained, reused)
    assert info["trained_reused"] and info["assigned"] == 1000
    assert np.array_equal(lists, trained.quantizer.assign(new, 1).ravel())  # every row in its own nearest list
    fresh, _, _, _ = ann.build(new, "ivf", AnnParams(kind="ivf"), trained)
    assert np.array_equal(faiss.serialize_index(index), faiss.serialize_index(fresh))


def test_incremental_ivf_build_reuses_the_trained_quantiser(small_corpus, tmp_path, embedder):
    params = AnnParams(kind="ivf")
    first = build_index(small_corpus, tmp_path / "index", embedder, ann_params=params).version
    (small_corpus / "more.md").write_text("# More\n\n## Data Engineer\n\nThe data engineer owns the pipelines.\n")
    summary = build_index(small_corpus, tmp_path / "index", embedder, ann_params=params)
    manifest = json.loads((tmp_path / "index" / "versions" / summary.version / "manifest.json").read_text())
    assert manifest["ann"]["sentences"]["trained_reused"] is True
    # The very quantiser of the first build, not one trained again on the new rows (which would move it).
    versions = tmp_path / "index" / "versions"
    for name in ("dense", "sentences"):
        before, after = (ann.load_trained(versions / v, name) for v in (first, summary.version))
        assert np.array_equal(faiss.serialize_index(before), faiss.serialize_index(after)), name
    assert manifest["ann"]["sentences"]["rows"] == summary.sentences["total"]
    hits = Searcher(SearchIndex.load(tmp_path / "index"), embedder).search("who owns the pipelines?", k=3).hits
    assert any("data engineer owns the pipelines" in h.passage.text for h in hits)
