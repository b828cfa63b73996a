"""Shared fixtures: the model loaded once per session, small indexes built per test or module."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
DATA = Path(__file__).resolve().parent / "data"
SHARED = ROOT.parent / "shared"


# --- real parts: a test that needs one skips without it on a laptop, and fails in CI -------------------------


def _mediawiki_missing() -> str | None:
    if not Path("/usr/share/mediawiki/maintenance/install.php").is_file():
        return "MediaWiki is not installed (/usr/share/mediawiki/maintenance/install.php)"
    if shutil.which("php") is None:
        return "PHP is not installed"
    modules = subprocess.run(["php", "-m"], check=False, capture_output=True, text=True, timeout=30).stdout.split()
    return None if "pdo_sqlite" in modules else "PHP has no pdo_sqlite module"


def _chromium_missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed"
    path = os.environ.get("ROLESEARCH_CHROMIUM", "/usr/bin/chromium")
    return None if os.access(path, os.X_OK) else f"Chromium is not installed at {path}"


def _ray_missing() -> str | None:
    return None if importlib.util.find_spec("ray") is not None else "Ray is not installed"


# name -> (what is missing, or None; the command that installs it)
REAL_PARTS = {
    "mediawiki": (_mediawiki_missing, "make mediawiki"),
    "chromium": (_chromium_missing, "make chromium && .venv/bin/pip install -e '.[test]'"),
    "ray": (_ray_missing, ".venv/bin/pip install -e '.[scale]'"),
}


def in_ci() -> bool:
    """Whether the CI variable is set (as CI services and .ci/run set it), and not to 0 or false."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def require_part(name: str) -> None:
    """Go on only if the real part is installed: without it, skip (fail when the CI variable is set) with
    the command that installs it."""
    missing, install = REAL_PARTS[name]
    problem = missing()
    if problem is None:
        return
    message = f"{problem}: run `{install}`"
    if in_ci():
        pytest.fail(f"CI runs every test, and {message}", pytrace=False)
    pytest.skip(message)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (the CI variable set) a skip of any kind is a failure: a green run must have run every test."""
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """The same for a whole module skipped while it is collected (pytest.importorskip at the top, say)."""
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {reason}"


def free_port() -> int:
    """A loopback port free at the time of the call (for a server started in another process)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str):
    """Poll predicate every 0.1 s until it returns something true; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="session")
def embedder():
    """The default model on the default backend, loaded once for the whole run."""
    from rolesearch.encoder.spec import EncoderSpec

    return EncoderSpec().load()


@pytest.fixture(scope="session")
def corpus_index(embedder, tmp_path_factory) -> Path:
    """An index over the real five-article corpus, built once; tests must not modify it."""
    from rolesearch.ingest.pipeline import build_index

    index_dir = tmp_path_factory.mktemp("corpus-index")
    build_index(CORPUS, index_dir, embedder)
    return index_dir


@pytest.fixture(scope="session")
def corpus_searcher(corpus_index, embedder):
    from rolesearch.search.index import SearchIndex
    from rolesearch.search.searcher import Searcher

    return Searcher(SearchIndex.load(corpus_index, embedder.name), embedder)


SMALL_ARTICLES = {
    "rollback.md": """---
title: Who does what in ML
publisher: Test
url: https://wiki.example/ml-roles
---
# Who does what in ML

## MLOps Engineer

- Model versioning and rollback: the MLOps engineer manages model versions and rolls back a bad release.
- Monitoring: the MLOps engineer sets up drift monitoring and alerting for production models.

## ML Engineer

- Feature engineering: the ML engineer selects and builds the input features of a model.
""",
    "salaries.txt": """Salaries

Career Options

An ML engineer with four years of experience earns about $210,000 on average in New York.
""",
}


# An article to add to small_corpus: its passages are new, and a search for its words finds it.
DRIFT_ARTICLE = """---
title: Drift runbook
---
# Drift runbook

## Alerts

When the population stability index of a feature passes 0.2 the on-call MLOps engineer opens an incident.
"""


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    """A two-article corpus in a temporary folder, safe to edit in a test."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in SMALL_ARTICLES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    return corpus


@pytest.fixture
def small_index(small_corpus, tmp_path, embedder) -> Path:
    """A freshly built index over small_corpus."""
    from rolesearch.ingest.pipeline import build_index

    index_dir = tmp_path / "index"
    build_index(small_corpus, index_dir, embedder)
    return index_dir


@pytest.fixture
def copy_corpus(tmp_path) -> Path:
    """A copy of the real corpus that a test may change."""
    dest = tmp_path / "corpus-copy"
    shutil.copytree(CORPUS, dest)
    return dest


@pytest.fixture
def client(small_index, embedder):
    """The app over small_index, lifespan run, for one test (a module may define its own)."""
    from fastapi.testclient import TestClient

    from rolesearch.api.app import create_app
    from rolesearch.settings import Settings

    app = create_app(Settings(index_dir=small_index), embedder=embedder)
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def real_wiki(tmp_path_factory):
    """Debian's MediaWiki (tests/mediawiki.py) installed, filled with mediawiki.PAGES and served once per session;
    always stopped. Tests that change its pages put them back (or delete what they added) when done."""
    from tests import mediawiki

    require_part("mediawiki")
    w = mediawiki.install(tmp_path_factory.mktemp("mediawiki"))
    for title, text in mediawiki.PAGES.items():
        w.edit(title, text, "create")
    w.run_jobs()
    mediawiki.serve(w)
    try:
        yield w
    finally:
        w.stop()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium under Playwright. Per module, not per session: Playwright's sync API keeps an asyncio
    loop running in the test thread while it is open, which asyncio.run in other tests (the crawl) would hit."""
    require_part("chromium")
    from playwright.sync_api import sync_playwright

    from tests.app_server import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
