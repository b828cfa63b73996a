"""Sentence rows of two settings (fp32 and int8 encoders, or other units) are never mixed by the cache or a build."""

from __future__ import annotations

import numpy as np
import pytest

from rolesearch.encoder.spec import EncoderSpec
from rolesearch.ingest.cache import EmbeddingCache, cache_path
from rolesearch.ingest.pipeline import build_index
from rolesearch.store.sentences import LEGACY, SentenceParams, passage_units, sentence_units
from rolesearch.store.versions import load_version


@pytest.fixture(scope="module")
def int8():
    """The int8 encoder of the same model (exported once into the default ONNX cache)."""
    return EncoderSpec(backend="onnx-int8").load()


def _sentences(index_dir):
    files = load_version(index_dir)
    return files, np.array(files.sentence_embeddings)


def test_int8_and_fp32_sentence_rows_are_never_mixed(small_corpus, tmp_path, embedder, int8):
    index = tmp_path / "index"
    first = build_index(small_corpus, index, embedder)
    fp32_files, fp32_rows = _sentences(index)
    assert fp32_files.manifest.sentence_space() == embedder.vectors and first.sentences["embedded"] > 0
    keys = [k for k, _ in sentence_units(fp32_files.passages)]

    # int8 sentence rows: the fp32 version lends no sentence row and the fp32 cache no vector.
    second = build_index(small_corpus, index, embedder, sentence_embedder=int8)
    assert second.full_rebuild and "sentence vectors changed" in second.reason
    assert second.passages["embedded"] == 0  # passages stay fp32: all from the cache
    assert second.sentences["embedded"] == len(set(keys))  # every sentence encoded again, by int8
    int8_files, int8_rows = _sentences(index)
    assert int8_files.manifest.sentence_vectors == int8.vectors != embedder.vectors
    assert np.array_equal(np.array(int8_files.embeddings), np.array(fp32_files.embeddings))
    assert int8_rows.shape == fp32_rows.shape
    assert np.abs(int8_rows - fp32_rows).max(axis=1).min() > 1e-4  # no row is an fp32 vector
    cosine = (int8_rows * fp32_rows).sum(axis=1)
    assert cosine.min() > 0.95  # ... but each is the same sentence's vector
    with EmbeddingCache(cache_path(index), int8.vectors, int8.dimension) as cache:
        assert set(cache.get_many(keys)) == set(keys)  # int8 vectors cached under int8's space only

    # Back to fp32: the int8 rows are not reused, and the cache gives back the fp32 vectors, not the int8 ones.
    third = build_index(small_corpus, index, embedder)
    assert third.full_rebuild and third.sentences["embedded"] == 0
    files, rows = _sentences(index)
    assert files.manifest.sentence_vectors == "" and np.array_equal(rows, fp32_rows)

    # The same setting twice: an incremental build that reuses every row.
    fourth = build_index(small_corpus, index, embedder)
    assert not fourth.full_rebuild and fourth.sentences["embedded"] == 0
    assert np.array_equal(_sentences(index)[1], fp32_rows)


def test_other_sentence_units_rebuild_the_rows(small_corpus, tmp_path, embedder):
    index = tmp_path / "index"
    build_index(small_corpus, index, embedder)
    merged = SentenceParams(skip_single=True, min_words=12)
    summary = build_index(small_corpus, index, embedder, sentence_params=merged)
    assert summary.full_rebuild and "sentence units changed" in summary.reason
    files = load_version(index)
    assert files.manifest.sentence_units == merged.to_dict()
    expected = [len(passage_units(p.text, merged)) for p in files.passages]
    assert list(np.diff(files.sentence_starts)) == expected
    assert len(files.sentence_embeddings) == sum(expected) < sum(len(passage_units(p.text)) for p in files.passages)


def test_passage_units_merge_short_sentences_and_skip_single_ones():
    text = "Short one. Another short one here. This third sentence is a good deal longer than both. Tail."
    assert passage_units(text, LEGACY) == ["Short one.", "Another short one here.",
                                           "This third sentence is a good deal longer than both.", "Tail."]
    # Units of at least 6 words; a short tail joins the unit before it.
    assert passage_units(text, SentenceParams(min_words=6)) == [
        "Short one. Another short one here.", "This third sentence is a good deal longer than both. Tail."]
    assert passage_units("Only one sentence here.", SentenceParams(skip_single=True)) == []
    assert passage_units("Only one sentence here.", LEGACY) == ["Only one sentence here."]
    # Merged into one unit, a passage is skipped too: that unit would be the passage itself.
    assert passage_units("Tiny. Also tiny.", SentenceParams(skip_single=True, min_words=10)) == []
    assert SentenceParams.from_manifest(None) == LEGACY
