"""The memory-mapped passage table: rows decoded on access, its columns, old versions, corrupt files refused."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rolesearch.search.access import Reader, can_read
from rolesearch.search.filters import Filters
from rolesearch.search.index import SearchIndex
from rolesearch.search.scope import articles_in_scope, counts_in_scope, passage_mask
from rolesearch.search.searcher import Searcher
from rolesearch.store.manifest import IndexCorrupt, current_version, version_dir
from rolesearch.store.passage import Passage
from rolesearch.store.passage_table import ARTICLE, FILES, OFFSETS, ROWS, PassageTable
from rolesearch.store.versions import load_version

ROLLBACK = "Model versioning and rollback: The MLOps engineer needs to manage different versions"


def _parsed(folder: Path) -> list[Passage]:
    """passages.jsonl read the way versions were read before the table: every line parsed."""
    lines = (folder / ROWS).read_text(encoding="utf-8").splitlines()
    return [Passage.from_dict(json.loads(line)) for line in lines if line.strip()]


def _copy_version(index_dir: Path, target: Path) -> Path:
    """A copy of the published version of index_dir as the published version of target (a test may damage it)."""
    version = current_version(index_dir)
    shutil.copytree(version_dir(index_dir, version), version_dir(target, version))
    (target / "CURRENT").write_text(version + "\n")
    return version_dir(target, version)


def test_table_is_memory_mapped_and_equals_the_parsed_rows(corpus_index):
    files = load_version(corpus_index)
    folder = files.path
    assert all((folder / name).exists() for name in FILES)
    table = files.passages
    assert isinstance(table, PassageTable) and isinstance(table.article_codes, np.memmap)
    parsed = _parsed(folder)
    assert len(table) == len(parsed) == files.manifest.passages > 100
    assert list(table) == parsed and table[-1] == parsed[-1] and table[3:6] == parsed[3:6]
    assert [h.decode() for h in table.hashes] == [p.hash for p in parsed]
    assert list(table.article_ids) == [p.article_id for p in parsed]
    assert table.has_roles.tolist() == [bool(p.roles) for p in parsed]
    [row] = [i for i, p in enumerate(parsed) if ROLLBACK in p.text]
    assert table[row].id == parsed[row].id and table[row].article_id == "tenyks-ml-vs-mlops-engineer"
    with pytest.raises(IndexError):
        table[len(table)]


def test_searcher_over_the_table_returns_the_rollback_passage(corpus_searcher):
    hits = corpus_searcher.search("who owns model rollback?", k=3).hits
    [hit] = [h for h in hits if ROLLBACK in h.passage.text]
    parsed = {p.id: p for p in _parsed(corpus_searcher.index.path)}
    assert [h.passage for h in hits] == [parsed[h.passage.id] for h in hits]
    assert hit.passage.article_id == "tenyks-ml-vs-mlops-engineer"


def test_a_version_written_before_the_table_loads_and_ranks_alike(corpus_index, corpus_searcher, tmp_path):
    folder = _copy_version(corpus_index, tmp_path / "old")
    for name in FILES:
        if name != ROWS:
            (folder / name).unlink()
    # Old writers never wrote blank lines, but old readers skipped them: so does the table.
    (folder / ROWS).write_text((folder / ROWS).read_text(encoding="utf-8").replace("\n", "\n\n", 3), encoding="utf-8")
    old = SearchIndex.load(tmp_path / "old")
    assert list(old.passages) == list(corpus_searcher.index.passages)
    searcher = Searcher(old, corpus_searcher.embedder)
    for query in ("who owns model rollback?", "what does an ML platform engineer do?"):
        assert [h.passage.id for h in searcher.search(query, k=5).hits] == \
            [h.passage.id for h in corpus_searcher.search(query, k=5).hits]


@pytest.mark.parametrize("damage", ["truncate", "rewrite", "offsets", "missing", "columns"])
def test_a_damaged_passage_table_is_refused(corpus_index, tmp_path, damage):
    folder = _copy_version(corpus_index, tmp_path / "bad")
    rows = folder / ROWS
    data = rows.read_bytes()
    if damage == "truncate":
        rows.write_bytes(data[: len(data) // 2])
    elif damage == "rewrite":  # same length, one row's bytes shifted: the sampled rows no longer decode alike
        cut = data.index(b"\n") + 1
        rows.write_bytes(data[cut:] + data[:cut])
    elif damage == "offsets":
        offsets = np.load(folder / OFFSETS)
        offsets[1:-1] = offsets[1:-1] + 3
        np.save(folder / OFFSETS, offsets)
    elif damage == "missing":
        rows.unlink()
    else:
        np.save(folder / ARTICLE, np.load(folder / ARTICLE)[:-1])
    with pytest.raises(IndexCorrupt, match="cannot be read"):
        load_version(tmp_path / "bad")


def test_an_old_version_with_a_broken_line_is_refused(corpus_index, tmp_path):
    folder = _copy_version(corpus_index, tmp_path / "old")
    for name in FILES:
        if name != ROWS:
            (folder / name).unlink()
    (folder / ROWS).write_text((folder / ROWS).read_text(encoding="utf-8")[:-40] + "\n", encoding="utf-8")
    with pytest.raises(IndexCorrupt, match="line .* is not a passage"):
        load_version(tmp_path / "old")


def test_scope_masks_agree_with_the_per_passage_computation(corpus_searcher):
    index = corpus_searcher.index
    articles = {aid: dict(meta) for aid, meta in index.articles.items()}
    names = sorted(articles)
    articles[names[0]]["access"] = ["hr"]
    articles[names[1]]["access"] = ["finance", "hr"]
    articles[names[2]]["tags"] = ["Platform"]
    # Another version id: passage_mask caches by version, and the real manifest's masks may be cached already.
    scoped = replace(index, manifest=replace(index.manifest, articles=articles, version=index.version + "-scoped"))
    cases = [(Reader.of([]), Filters()), (Reader.of(["hr"]), Filters()), (Reader.of(["finance"]), Filters()),
             (Reader(everything=True), Filters.of(article=[names[3], names[0]])),
             (Reader.of(["hr"]), Filters.of(tag=["platform"])), (Reader.of([]), Filters.of(source=["folder"])),
             (Reader.of([]), Filters.of(article=["no-such-article"]))]
    seen = set()
    for reader, filters in cases:
        ids = articles_in_scope(articles, reader, filters)
        expected = np.array([p.article_id in ids for p in scoped.passages])
        mask = passage_mask(scoped, reader, filters)
        got = np.ones(len(expected), dtype=bool) if mask is None else mask
        assert got.tolist() == expected.tolist(), (reader, filters)
        seen.add(int(got.sum()))
    assert len(seen) >= 4  # the cases really differ: everything, nothing, and parts


def test_counts_in_scope_are_cached_per_version_and_reader_and_agree(corpus_searcher):
    """The cached counts equal the walk over the articles, per reader, and a new version's dict is counted afresh."""
    articles = {aid: dict(meta) for aid, meta in corpus_searcher.index.articles.items()}
    names = sorted(articles)
    articles[names[0]]["access"] = ["hr"]
    readers = [Reader.of([]), Reader.of(["hr"]), Reader(everything=True)]

    def walk(arts, reader):
        ids = [a for a, meta in arts.items() if can_read(meta.get("access"), reader)]
        return len(ids), sum(int(arts[a].get("passages", 0)) for a in ids)

    for _ in range(2):  # the second round answers from the cache
        got = [counts_in_scope(articles, r) for r in readers]
        assert got == [walk(articles, r) for r in readers]
    assert got[0][0] == len(articles) - 1 and got[1][0] == len(articles) and got[0][1] < got[1][1]
    newer = {aid: meta for aid, meta in articles.items() if aid != names[1]}  # the next version: one article less
    assert [counts_in_scope(newer, r) for r in readers] == [walk(newer, r) for r in readers]
    assert counts_in_scope(newer, readers[1])[0] == len(articles) - 1
