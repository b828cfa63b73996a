"""Incremental builds equal full builds: same passages, vectors, BM25 files and rankings; reuse is by rows."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import bm25s
import faiss
import numpy as np

import rolesearch.ingest.sources.folder as folder
from rolesearch.ingest import articles
from rolesearch.ingest.access import AccessMap
from rolesearch.ingest.pipeline import build_index
from rolesearch.search.evaluation import load_questions
from rolesearch.search.index import SearchIndex
from rolesearch.search.searcher import MODES, Searcher
from rolesearch.store import ann
from rolesearch.store.ann import AnnParams
from rolesearch.store.lexical import LEXICAL_PARAMS, analyze, analyze_terms, build_lexical, lexical_scores
from rolesearch.store.versions import load_version
from tests.conftest import CORPUS, DATA, DRIFT_ARTICLE


def _edit(corpus: Path) -> None:
    """One article added, one changed in one sentence, one removed."""
    (corpus / "drift.md").write_text(DRIFT_ARTICLE, encoding="utf-8")
    path = corpus / "tenyks-ml-vs-mlops-engineer.txt"
    text = path.read_text(encoding="utf-8")
    assert "rollback" in text
    path.write_text(text.replace("rollback", "roll-back", 1), encoding="utf-8")
    (corpus / "mle-vs-mlops-fine-line.md").unlink()


def _full_build_beside(corpus: Path, incremental: Path, target: Path, embedder, **kw) -> Path:
    """A full build of corpus into target, its vectors from a copy of incremental's cache (so the encoder
    cannot make them differ by a rounding, and every difference is the build's)."""
    shutil.copytree(incremental / "cache", target / "cache")
    summary = build_index(corpus, target, embedder, **kw)
    assert summary.full_rebuild and summary.passages["embedded"] == 0 and summary.sentences["embedded"] == 0
    return target


def _same_lexical(a: Path, b: Path) -> None:
    for field in ("text", "section", "title"):
        for name in ("data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy",
                     "doc_terms.indptr.npy", "doc_terms.indices.npy", "doc_terms.counts.npy"):
            assert np.array_equal(np.load(a / "lexical" / field / name), np.load(b / "lexical" / field / name)), name
        for name in ("vocab.index.json", "doc_terms.vocab.json"):
            assert (a / "lexical" / field / name).read_text() == (b / "lexical" / field / name).read_text(), name


def test_incremental_build_ranks_exactly_like_a_full_build(copy_corpus, tmp_path, embedder):
    inc = tmp_path / "inc"
    build_index(copy_corpus, inc, embedder)
    _edit(copy_corpus)
    summary = build_index(copy_corpus, inc, embedder)
    assert not summary.full_rebuild
    assert summary.articles == {"added": 1, "changed": 1, "removed": 1, "unchanged": 3, "skipped": 0}
    # only the edited passage and the new article's passages (and their new sentences) were embedded
    assert 0 < summary.passages["embedded"] <= 4
    full = _full_build_beside(copy_corpus, inc, tmp_path / "full", embedder)

    a, b = load_version(inc), load_version(full)
    assert [p.to_dict() for p in a.passages] == [p.to_dict() for p in b.passages]
    # the reused rows' bytes and columns were copied from the previous table, not encoded again: same files
    for name in ("passages.jsonl", "passages.offsets.npy", "passages.article.npy", "passages.articles.json",
                 "passages.hash.npy", "passages.roles.npy"):
        assert (a.path / name).read_bytes() == (b.path / name).read_bytes(), name
    assert np.array_equal(a.embeddings, b.embeddings)
    assert np.array_equal(a.sentence_embeddings, b.sentence_embeddings)
    assert np.array_equal(a.sentence_starts, b.sentence_starts)
    assert np.array_equal(np.load(a.path / "sentence_keys.npy"), np.load(b.path / "sentence_keys.npy"))
    _same_lexical(a.path, b.path)
    assert a.manifest.articles == b.manifest.articles

    ours, theirs = (Searcher(SearchIndex.load(d), embedder) for d in (inc, full))
    for q in load_questions(DATA / "questions.jsonl")[:40]:
        for mode in MODES:
            x, y = ours.search(q.question, 10, mode).hits, theirs.search(q.question, 10, mode).hits
            assert [(h.passage.id, h.score) for h in x] == [(h.passage.id, h.score) for h in y], (q.question, mode)


def test_unchanged_files_are_not_parsed_and_keep_their_mapped_groups(copy_corpus, tmp_path, embedder, monkeypatch):
    rules = tmp_path / "access.yaml"
    rules.write_text('- title: "*MLOps*"\n  groups: [staff]\n', encoding="utf-8")
    index = tmp_path / "index"
    build_index(copy_corpus, index, embedder, access=AccessMap.load(rules))
    before = load_version(index).manifest.articles
    assert any(e["access"] == ["staff"] for e in before.values())

    parsed = []

    def read_article(path, root):
        parsed.append(path.name)
        return articles.read_article(path, root)

    monkeypatch.setattr(folder, "read_article", read_article)
    (copy_corpus / "drift.md").write_text(DRIFT_ARTICLE, encoding="utf-8")
    build_index(copy_corpus, index, embedder, access=AccessMap.load(rules))
    assert parsed == ["drift.md"]  # the five unchanged files were only hashed
    after = load_version(index).manifest.articles
    assert {a: e["access"] for a, e in after.items() if a != "drift"} == {a: e["access"] for a, e in before.items()}

    # a changed access map applies to unchanged articles too, without parsing them
    rules.write_text('- title: "*"\n  groups: [everyone]\n', encoding="utf-8")
    # staff -> everyone widens who may read them: allowed explicitly (issue 21)
    build_index(copy_corpus, index, embedder, access=AccessMap.load(rules), allow_wider_access=True)
    assert {e["access"][0] for e in load_version(index).manifest.articles.values()} == {"everyone"}


def test_incremental_ivf_reuses_each_rows_list_and_equals_adding_every_row(copy_corpus, corpus_index, tmp_path,
                                                                         embedder):
    """The real corpus under a forced IVF (several lists: 2 for passages, 10 for sentences); then an article in
    the middle changes and the one before it is removed, so every later row moves up. Each kept row keeps its
    own list, new rows are assigned, and the index equals assigning every row with the same quantiser."""
    params = AnnParams(kind="ivf")
    index = tmp_path / "index"
    shutil.copytree(corpus_index / "cache", index / "cache")  # vectors from the session's build: no encoding
    build_index(copy_corpus, index, embedder, ann_params=params)
    first = load_version(index)
    path = copy_corpus / "peopleinai-ml-engineer-or-mlops-engineer.txt"  # third of five in row order
    text = path.read_text(encoding="utf-8")
    assert "deploy" in text
    path.write_text(text.replace("deploy", "ship", 1), encoding="utf-8")
    (copy_corpus / "mle-vs-mlops-fine-line.md").unlink()  # second: the rows after it shift
    summary = build_index(copy_corpus, index, embedder, ann_params=params)
    assert summary.articles == {"added": 0, "changed": 1, "removed": 1, "unchanged": 3, "skipped": 0}
    files = load_version(index)
    old_rows = {p.hash: i for i, p in enumerate(first.passages)}
    moved = [i for i, p in enumerate(files.passages) if old_rows.get(p.hash, i) != i]
    assert moved, "no kept passage changed row: the test would not see a shifted assignment"
    for name, which, vectors in (("dense", "passages", files.embeddings), ("sentences", "sentences",
                                                                          files.sentence_embeddings)):
        described = files.manifest.ann[which]
        assert described["kind"] == "ivf" and described["trained_reused"] is True
        assert 0 < described["assigned"] < described["rows"]  # only the changed article's rows met the quantiser
        trained = ann.load_trained(files.path, name)
        lists = ann.load_lists(files.path, name)
        assert len(np.unique(lists)) >= 2, name
        # Each row's list is its nearest centroid, as the quantiser says for its vector now...
        assert np.array_equal(lists, trained.quantizer.assign(np.ascontiguousarray(vectors), 1).ravel()), name
        # ...and the saved index is what adding every row afresh gives.
        rebuilt, _, _, again = ann.build(np.asarray(vectors), "ivf", params, trained)
        assert np.array_equal(again, lists)
        saved = faiss.read_index(str(files.path / f"{name}.faiss"))
        assert np.array_equal(faiss.serialize_index(saved), faiss.serialize_index(rebuilt)), name


def test_vectorised_bm25_equals_bm25s_on_the_corpus():
    texts = [p.text for p in _corpus_passages()] + ["", "the and of", "Café naïve résumé, MLOps's"]
    ours = build_lexical(texts)
    theirs = bm25s.BM25(method=LEXICAL_PARAMS["method"], k1=LEXICAL_PARAMS["k1"], b=LEXICAL_PARAMS["b"])
    tokens = analyze(texts)
    theirs.index(tokens, show_progress=False)
    assert set(ours.vocab_dict) == set(theirs.vocab_dict)
    terms = analyze_terms(texts)
    for i, row in enumerate(tokens):
        got = {terms.vocab[j]: int(c) for j, c in zip(terms.matrix[i].indices, terms.matrix[i].data)}
        assert got == dict(Counter(row))
    for q in [q.question for q in load_questions(DATA / "questions.jsonl")]:
        tk = analyze([q])[0]
        assert np.array_equal(lexical_scores(ours, tk), lexical_scores(theirs, tk)), q


def _corpus_passages():
    from rolesearch.ingest.chunking import ChunkingParams, TokenLimits, chunk_article
    from rolesearch.ingest.tokens import tiktoken_counter

    limits = TokenLimits(tiktoken_counter(), 200)
    return [p for path in articles.list_article_files(CORPUS)
            for p in chunk_article(articles.read_article(path, CORPUS), ChunkingParams(), limits)]


def test_chunking_in_worker_processes_gives_the_same_passages(monkeypatch, embedder):
    from rolesearch.ingest import chunk_pool
    from rolesearch.ingest.chunking import ChunkingParams, TokenLimits
    from rolesearch.ingest.tokens import tiktoken_counter

    docs = [articles.read_article(p, CORPUS) for p in articles.list_article_files(CORPUS)] * 3
    limits = TokenLimits(tiktoken_counter(), 200, embedder.count_tokens, embedder.max_tokens)
    serial = chunk_pool.chunk_articles(docs, ChunkingParams(), limits, workers=1)
    monkeypatch.setattr(chunk_pool, "MIN_ARTICLES_PER_WORKER", 1)
    assert chunk_pool.chunk_articles(docs, ChunkingParams(), limits, workers=2) == serial
    assert sum(len(p) for p in serial) > 100
