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

pytestmark = [pytest.mark.wiki, pytest.mark.slow]

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


XML_XSD = """<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="http://www.w3.org/XML/1998/namespace">
  <xs:attribute name="lang" type="xs:language"/>
  <xs:attribute name="space"><xs:simpleType><xs:restriction base="xs:NCName">
    <xs:enumeration value="default"/><xs:enumeration value="preserve"/></xs:restriction></xs:simpleType></xs:attribute>
</xs:schema>
"""


@pytest.mark.parametrize("schema", ["0.10", "0.11"])
def test_fixture_exports_follow_the_published_schema(schema, wiki, tmp_path):
    """The fixtures, and what this MediaWiki exports, validate against the XSD MediaWiki ships."""
    import gzip

    from lxml import etree

    xsd = mediawiki.DOCS / f"export-{schema}.xsd.gz"
    if not xsd.is_file():
        pytest.skip(f"{xsd} is not installed (this image leaves out /usr/share/doc)")
    # The schema imports xml.xsd from w3.org; a local copy keeps the test offline.
    (tmp_path / "xml.xsd").write_text(XML_XSD)
    text = gzip.decompress(xsd.read_bytes()).decode().replace("http://www.w3.org/2001/xml.xsd", "xml.xsd")
    (tmp_path / "export.xsd").write_text(text)
    validator = etree.XMLSchema(etree.parse(str(tmp_path / "export.xsd")))
    docs = [DATA / "mediawiki" / f"export-{schema}.xml"]
    if schema == "0.11":
        docs.append(wiki.export(tmp_path / "dump.xml"))  # MediaWiki 1.39 writes 0.11
    for doc in docs:
        assert validator.validate(etree.parse(str(doc))), (doc, validator.error_log)
