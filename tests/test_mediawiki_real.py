"""Against a real MediaWiki: its own export ingested by the mediawiki source, the running wiki crawled,
the same sections from both, and an edit seen at the next ingest."""

from __future__ import annotations

import time

import pytest

from rolesearch.ingest.chunking import ChunkingParams, TokenLimits, chunk_article
from rolesearch.ingest.pipeline import build_index
from rolesearch.ingest.sources.base import Skipped
from rolesearch.ingest.sources.crawl import CrawlSource
from rolesearch.ingest.sources.mediawiki import MediaWikiSource
from rolesearch.ingest.tokens import tiktoken_counter
from rolesearch.store.versions import load_version
from tests import mediawiki
from tests.conftest import DATA

PAGES = mediawiki.PAGES
LIMITS = TokenLimits(tiktoken_counter("cl100k_base"), 200)


@pytest.fixture(scope="session")
def wiki(real_wiki):
    """The session's MediaWiki (tests/conftest.py `real_wiki`), filled with mediawiki.PAGES."""
    return real_wiki


def _sections(article) -> list[tuple[str, ...]]:
    return list(dict.fromkeys(p.section for p in chunk_article(article, ChunkingParams(), LIMITS)))


def _articles(source) -> dict:
    return {a.id: a for a in source.read() if not isinstance(a, Skipped)}


@pytest.mark.wiki
@pytest.mark.slow
def test_export_and_crawl_give_the_same_sections(wiki, tmp_path):
    exported = _articles(MediaWikiSource(str(wiki.export(tmp_path / "dump.xml"))))
    assert sorted(exported) == ["Data_Scientist", "MLOps_Engineer", "Main_Page"]  # no redirect, no template
    crawl = CrawlSource(wiki.page_url("Main Page"), state_dir=tmp_path / "state", rate=0)
    crawled = _articles(crawl)
    # The redirect's URL serves the target page with a canonical link to it: one article, not two.
    assert sorted(crawled) == sorted(exported)
    for aid in exported:
        assert exported[aid].url == crawled[aid].url == wiki.page_url(exported[aid].title)
        assert exported[aid].title == crawled[aid].title
        assert _sections(exported[aid]) == _sections(crawled[aid]), aid
    assert _sections(exported["MLOps_Engineer"]) == [(), ("Duties",), ("Tools",), ("Tools", "Further reading")]
    for text in (exported["MLOps_Engineer"].text, crawled["MLOps_Engineer"].text):
        assert "Model versioning and rollback: keeps every released model version" in text
        assert "| MLflow | the model registry |" in text
        assert "Internal role survey" not in text and "[edit]" not in text and "Navigation menu" not in text
    assert crawl.stats["not_modified"] == 0


@pytest.mark.wiki
@pytest.mark.slow
def test_an_edit_shows_up_at_the_next_ingest(wiki, tmp_path, embedder):
    index = tmp_path / "index"
    state = tmp_path / "crawl-index" / "cache"  # where `rolesearch ingest` keeps a crawl's validators
    export = lambda: MediaWikiSource(str(wiki.export(tmp_path / "dump.xml")))  # noqa: E731
    crawl = lambda: CrawlSource(wiki.page_url("Main Page"), state_dir=state, rate=0)  # noqa: E731

    build_index(None, index, embedder, sources=[export()])
    crawler = crawl()
    # Another index over the crawl, so both sources see the same edit.
    build_index(None, tmp_path / "crawl-index", embedder, sources=[crawler])
    second = crawl()
    build_index(None, tmp_path / "crawl-index", embedder, sources=[second])
    # Nothing changed: MediaWiki answered 304 (If-Modified-Since) for the three pages and the redirect's URL.
    assert second.stats["not_modified"] == 4 and crawler.stats["not_modified"] == 0

    time.sleep(1.1)  # Last-Modified has a one-second resolution
    wiki.edit("Data Scientist", PAGES["Data Scientist"].replace(
        "designs experiments and picks the metrics", "designs A/B tests and owns the experiment platform"), "edit")
    wiki.run_jobs()
    for idx, source in ((index, export()), (tmp_path / "crawl-index", crawl())):
        summary = build_index(None, idx, embedder, sources=[source])
        assert summary.articles["changed"] == 1 and summary.articles["unchanged"] == 2, summary
        texts = [p.text for p in load_version(idx).passages if p.article_id == "Data_Scientist"]
        assert any("owns the experiment platform" in t for t in texts)
        assert not any("picks the metrics" in t for t in texts)


SCHEMAS = DATA / "schema"  # MediaWiki's export XSDs, copied from its package (see the README there)


def _validator(schema: str):
    from lxml import etree

    return etree.XMLSchema(etree.parse(str(SCHEMAS / f"export-{schema}.xsd")))


def _errors(validator, doc) -> str:
    from lxml import etree

    return "" if validator.validate(etree.parse(str(doc))) else str(validator.error_log)


@pytest.mark.parametrize("schema", ["0.10", "0.11"])
def test_fixture_exports_follow_the_published_schema(schema, tmp_path):
    """The checked-in fixtures validate against the XSD MediaWiki publishes; no wiki needed."""
    validator = _validator(schema)
    assert _errors(validator, DATA / "mediawiki" / f"export-{schema}.xml") == ""
    # And the validator can say no: a revision without its required <timestamp> is refused.
    text = (DATA / "mediawiki" / f"export-{schema}.xml").read_text(encoding="utf-8")
    start, end = text.index("<timestamp>"), text.index("</timestamp>") + len("</timestamp>")
    bad = tmp_path / "no-timestamp.xml"
    bad.write_text(text[:start] + text[end:], encoding="utf-8")
    assert "timestamp" in _errors(validator, bad)


@pytest.mark.wiki
@pytest.mark.slow
def test_this_mediawiki_exports_the_published_schema(wiki, tmp_path):
    """What MediaWiki 1.39 itself writes (schema 0.11) validates against the same XSD."""
    dump = wiki.export(tmp_path / "dump.xml")
    assert 'xmlns="http://www.mediawiki.org/xml/export-0.11/"' in dump.read_text(encoding="utf-8")[:2000]
    assert _errors(_validator("0.11"), dump) == ""
