"""BEIR-format evaluation on a tiny dataset made here (the SciFact figures are in the README, measured by the CLI)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from rolesearch.cli.beir import beir_index, evaluate_beir
from rolesearch.ingest.beir import BeirError, cached_encode, load_beir
from rolesearch.search.searcher import SearchConfig
from tests.conftest import ROOT

DOCS = [
    {"_id": "d1", "title": "Model rollback", "text": "Rolling back a model restores the previous version after a bad release."},
    {"_id": "d2", "title": "Drift monitoring", "text": "Drift monitoring alerts when production data shifts away from training data."},
    {"_id": "d3", "title": "Feature stores", "text": "A feature store keeps features consistent between training and serving."},
    {"_id": "d4", "title": "Salaries", "text": "Machine learning engineers earn competitive salaries in large cities."},
    {"_id": "d5", "title": "Kubernetes", "text": "Kubernetes schedules containers across a cluster of machines."},
]
QUERIES = [
    {"_id": "q1", "text": "rollback of a bad model release"},
    {"_id": "q2", "text": "alerting on drift in production data"},
    {"_id": "q3", "text": "consistent features for training and serving"},
    {"_id": "q9", "text": "a query no split judges"},
]


@pytest.fixture
def beir_dir(tmp_path):
    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in DOCS) + "\n", encoding="utf-8")
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in QUERIES) + "\n", encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t1\n")
    return folder


def test_load_keeps_the_judged_queries(beir_dir):
    data = load_beir(beir_dir, "test")
    assert [d[0] for d in data.docs] == ["d1", "d2", "d3", "d4", "d5"]
    assert set(data.queries) == {"q1", "q2", "q3"}
    assert data.qrels["q2"] == {"d2": 1}
    with pytest.raises(BeirError, match="train.tsv does not exist"):
        load_beir(beir_dir, "train")


def test_evaluate_beir_ranks_the_judged_documents_first(beir_dir, embedder, tmp_path):
    results = evaluate_beir(beir_dir, embedder, "test", cache_dir=tmp_path / "cache")
    assert list(results) == ["dense-passage", "dense", "lexical", "hybrid"]
    for figures in results.values():
        assert figures == {"ndcg@10": 1.0, "recall@100": 1.0, "mrr@10": 1.0}
    # one file of document vectors, one of their sentences' vectors
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2


def test_beir_index_has_a_vector_per_sentence(beir_dir, embedder, tmp_path):
    data = load_beir(beir_dir, "test")
    index = beir_index(data, tmp_path / "index", embedder, None)
    assert index.sentences.shape == (len(DOCS), embedder.dimension)  # each tiny document is one sentence
    assert list(index.sentence_owner) == [0, 1, 2, 3, 4]
    assert beir_index(data, tmp_path / "plain", embedder, None, sentences=False).sentences is None


def test_without_sentence_vectors_there_is_no_dense_passage_row(beir_dir, embedder):
    results = evaluate_beir(beir_dir, embedder, "test", SearchConfig(sentence_vectors=False))
    assert list(results) == ["dense", "lexical", "hybrid"]


def test_cached_embeddings_are_reused_by_model_and_text(embedder, tmp_path, monkeypatch):
    texts = ["model rollback", "drift monitoring"]
    first = cached_encode(embedder, texts, tmp_path)

    def no_encoding(*args, **kwargs):
        raise AssertionError("encoded again despite the cache")

    monkeypatch.setattr(embedder, "encode", no_encoding)
    assert np.array_equal(cached_encode(embedder, texts, tmp_path), first)
    with pytest.raises(AssertionError):
        cached_encode(embedder, texts + ["a new text"], tmp_path)


@pytest.mark.slow
def test_cli_eval_beir_json(beir_dir, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "rolesearch", "eval", "--beir", str(beir_dir), "--split", "test", "--json",
         "--cache", str(tmp_path / "cache")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    # --ranker all (the default): ours in every mode, then the baseline over the same index.
    assert list(body) == ["dense-passage", "dense", "lexical", "hybrid", "baseline"]
    assert set(body["hybrid"]) == set(body["baseline"]) == {"ndcg@10", "recall@100", "mrr@10"}
    bad = subprocess.run([sys.executable, "-m", "rolesearch", "eval", "--beir", str(tmp_path / "nowhere")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "corpus.jsonl does not exist" in bad.stderr
