"""Crash safety: real `rolesearch ingest` processes SIGKILLed at named points and at timed moments.

After each kill the last published version must load and answer, and the next build must
complete, publish, and clean up what the killed one left.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rolesearch.ingest.cache import EmbeddingCache, cache_path
from rolesearch.ingest.pipeline import build_index
from rolesearch.search.index import SearchIndex
from rolesearch.search.searcher import Searcher
from rolesearch.store.manifest import current_version
from rolesearch.store.sentences import sentence_units
from rolesearch.store.versions import load_version
from tests.conftest import CORPUS, ROOT

pytestmark = pytest.mark.slow

HELPER = Path(__file__).resolve().parent / "crash_build.py"
NEW_ARTICLE = "tenyks-second-edition"
BATCH = 4  # the build encodes groups of 4 * BATCH passages: several groups for the new article


def _env() -> dict:
    return os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                         "ROLESEARCH_BATCH_SIZE": str(BATCH)}


def _ingest_args(corpus: Path, index: Path) -> list[str]:
    return ["ingest", "--corpus", str(corpus), "--index", str(index), "--json"]


@pytest.fixture(scope="module")
def template(embedder, tmp_path_factory) -> Path:
    """A corpus copy and its published index (with cache), built once and copied by each test."""
    root = tmp_path_factory.mktemp("crash-template")
    shutil.copytree(CORPUS, root / "corpus")
    build_index(root / "corpus", root / "index", embedder)
    return root


@pytest.fixture
def site(template, tmp_path) -> tuple[Path, Path]:
    """This test's corpus (with one new article to embed) and index."""
    shutil.copytree(template / "corpus", tmp_path / "corpus")
    shutil.copytree(template / "index", tmp_path / "index")
    text = (CORPUS / "tenyks-ml-vs-mlops-engineer.txt").read_text(encoding="utf-8")
    (tmp_path / "corpus" / f"{NEW_ARTICLE}.txt").write_text("Tenyks, second edition\n\n" + text, encoding="utf-8")
    return tmp_path / "corpus", tmp_path / "index"


def _assert_serves(index: Path, version: str, embedder) -> None:
    idx = SearchIndex.load(index, embedder.name)
    assert idx.version == version
    hits = Searcher(idx, embedder).search("who owns model rollback?", 3).hits
    assert any("Model versioning and rollback" in h.passage.text for h in hits)


def _assert_clean(index: Path) -> None:
    assert not [p.name for p in (index / "versions").iterdir() if p.name.startswith(".")]
    assert not list(index.glob(".CURRENT.*"))


def _keys(index: Path, version: str | None = None) -> set[str]:
    """Cache keys of a version's vectors: passage hashes and sentence keys."""
    passages = load_version(index, version).passages
    return {p.hash for p in passages} | {k for k, _ in sentence_units(passages)}


@pytest.mark.parametrize("point", ["embedding", "writing", "publishing", "pointer"])
def test_killed_build_leaves_last_version_served_and_next_build_completes(site, embedder, point):
    corpus, index = site
    published = current_version(index)
    run = subprocess.run([sys.executable, str(HELPER), point, *_ingest_args(corpus, index)],
                         env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == -signal.SIGKILL, run.stderr[-2000:]

    # what the kill left behind, point by point
    versions = sorted(p.name for p in (index / "versions").iterdir())
    assert current_version(index) == published
    if point == "writing":
        [tmp] = [v for v in versions if v.startswith(".tmp-")]
        assert (index / "versions" / tmp / "embeddings.npy").exists()
        assert not (index / "versions" / tmp / "manifest.json").exists()
    elif point == "publishing":
        assert len([v for v in versions if not v.startswith(".")]) == 2
    elif point == "pointer":
        [pointer] = index.glob(".CURRENT.*.tmp")
        assert pointer.read_text().strip() in versions and pointer.read_text().strip() != published
    else:
        # the build's draft (its vectors preallocated in place) is all it left besides the cache
        [draft] = [v for v in versions if v != published]
        assert draft.startswith(".tmp-") and not (index / "versions" / draft / "manifest.json").exists()
        with EmbeddingCache(cache_path(index), embedder.name, embedder.dimension) as cache:
            assert len(cache) == len(_keys(index)) + 4 * BATCH  # the first group was committed before the kill
    _assert_serves(index, published, embedder)

    summary = build_index(corpus, index, embedder)
    assert current_version(index) == summary.version != published
    assert summary.articles["added"] == 1
    # vectors committed to the cache before the kill are not embedded again
    embedded = summary.passages["embedded"] + summary.sentences["embedded"]
    if point == "embedding":
        assert embedded == len(_keys(index) - _keys(index, published)) - 4 * BATCH
    else:
        assert embedded == 0
    _assert_serves(index, summary.version, embedder)
    _assert_clean(index)


def test_build_killed_while_pruning_has_already_published(site, embedder):
    corpus, index = site
    first = current_version(index)
    build_index(corpus, index, embedder)
    build_index(corpus, index, embedder)  # three versions now: the next publish prunes the oldest
    run = subprocess.run([sys.executable, str(HELPER), "pruning", *_ingest_args(corpus, index)],
                         env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == -signal.SIGKILL, run.stderr[-2000:]
    published = current_version(index)
    done = sorted(p.name for p in (index / "versions").iterdir() if not p.name.startswith("."))
    assert len(done) == 3 and published == done[-1] and first not in done
    assert (index / "versions" / f".trash-{first}").is_dir()
    _assert_serves(index, published, embedder)

    summary = build_index(corpus, index, embedder)
    assert summary.passages["embedded"] == 0 and current_version(index) == summary.version
    _assert_clean(index)


@pytest.mark.parametrize("delay", [0.0, 0.6])
def test_build_killed_at_a_timed_moment(site, embedder, delay):
    corpus, index = site
    published = current_version(index)
    proc = subprocess.Popen([sys.executable, "-m", "rolesearch", *_ingest_args(corpus, index)],
                            env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        # the child writes its pid into the lock file once it holds the lock: the build proper has begun
        while (index / ".lock").read_text().strip() != str(proc.pid):
            assert proc.poll() is None and time.monotonic() < deadline, "the build never took the lock"
            time.sleep(0.01)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    now = current_version(index)
    # killed before or (rarely) after publishing: either way CURRENT names a complete version
    assert now == published or now in {p.name for p in (index / "versions").iterdir()}
    _assert_serves(index, now, embedder)

    summary = build_index(corpus, index, embedder)
    assert current_version(index) == summary.version
    assert NEW_ARTICLE in load_version(index).manifest.articles
    _assert_serves(index, summary.version, embedder)
    _assert_clean(index)
