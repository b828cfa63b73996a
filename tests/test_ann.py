"""Dense index types: chosen by size, approximate ones agreeing with exact ranking, memory-mapped versions."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

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


def test_incremental_ivf_build_reuses_the_trained_quantiser(small_corpus, tmp_path, embedder):
    params = AnnParams(kind="ivf")
    build_index(small_corpus, tmp_path / "index", embedder, ann_params=params)
    (small_corpus / "more.md").write_text("# More\n\n## Data Engineer\n\nThe data engineer owns the pipelines.\n")
    summary = build_index(small_corpus, tmp_path / "index", embedder, ann_params=params)
    manifest = json.loads((tmp_path / "index" / "versions" / summary.version / "manifest.json").read_text())
    assert manifest["ann"]["sentences"]["trained_reused"] is True
    assert manifest["ann"]["sentences"]["rows"] == summary.sentences["total"]
    hits = Searcher(SearchIndex.load(tmp_path / "index"), embedder).search("who owns the pipelines?", k=3).hits
    assert any("data engineer owns the pipelines" in h.passage.text for h in hits)
