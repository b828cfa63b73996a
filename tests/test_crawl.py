"""The crawl source against a site on loopback: links, robots.txt, redirects, 404s, conditional GET, caps."""

from __future__ import annotations

import socket
import time

import pytest

from rolesearch.ingest.chunking import ChunkingParams, TokenLimits, chunk_article
from rolesearch.ingest.sources.base import Skipped, SourceError
from rolesearch.ingest.sources.crawl import CrawlSource
from rolesearch.ingest.tokens import tiktoken_counter
from tests.conftest import DATA, wait_for
from tests.site_server import Site, fixture_site, serve

CRAWL = DATA / "crawl"


@pytest.fixture
def sites():
    """The fixture site and a second host it redirects to, both on loopback, stopped after the test."""
    other = Site()
    other.page("/docs/elsewhere.html", "<html><body><h1>Elsewhere</h1><p>Must never be fetched.</p></body></html>")
    other_server, _ = serve(other)
    site = fixture_site(CRAWL, other.url)
    server, _ = serve(site)
    site.page("/docs/sitemap.xml", (CRAWL / "sitemap.xml").read_text().replace("BASE", site.url), "application/xml")
    yield site, other
    for s in (server, other_server):
        s.shutdown()
        s.server_close()


def _crawl(site: Site, tmp_path, **options):
    source = CrawlSource(f"{site.url}/docs/index.html", state_dir=tmp_path / "state", rate=0, **options)
    items = list(source.read())
    articles = {i.id: i for i in items if not isinstance(i, Skipped)}
    skipped = {i.path.removeprefix(site.url): i.reason for i in items if isinstance(i, Skipped)}
    return articles, skipped, source.stats


def test_crawl_stays_on_its_host_and_honours_robots(sites, tmp_path):
    site, other = sites
    articles, skipped, stats = _crawl(site, tmp_path)
    assert sorted(articles) == ["changing.html", "gone.html", "index.html", "mlops.html", "renamed.html"]
    assert skipped == {
        "/docs/missing.html": "HTTP 404",
        "/docs/elsewhere.html": f"redirects to another host ({other.url}/docs/elsewhere.html); not followed",
    }
    assert other.requests == []  # not even through a redirect
    assert site.fetched("/docs/private/salaries.html") == [] and stats["disallowed"] == 1
    assert site.fetched("/docs/runbook.pdf") == []
    # The redirect's target is the page; its URL is where it now lives.
    assert articles["renamed.html"].url == f"{site.url}/docs/renamed.html"
    # Two URLs, one page: the canonical link names it, and it is read once.
    assert len(site.fetched("/docs/mlops.html?utm=nav")) == 1
    mlops = articles["mlops.html"]
    assert (mlops.title, mlops.url, mlops.source) == ("MLOps Engineer", f"{site.url}/docs/mlops.html", "crawl")


def test_main_content_only_down_to_passages(sites, tmp_path):
    site, _ = sites
    articles, _, _ = _crawl(site, tmp_path)
    text = " ".join(a.text for a in articles.values())
    for chrome in ("zebra-nav-marker", "zebra-footer-marker", "documentation portal"):
        assert chrome not in text  # navigation, header and footer are not passages
    mlops = articles["mlops.html"]
    passages = chunk_article(mlops, ChunkingParams(), TokenLimits(tiktoken_counter("cl100k_base"), 200))
    assert [p.section for p in passages] == [(), ("Duties",), ("Tools",)]
    assert "- Model versioning and rollback: keeps every released model version" in passages[1].text
    assert passages[2].text.split("\n") == ["| Tool | Used for |", "| MLflow | the model registry |"]


def test_recrawl_uses_conditional_get_and_sees_changes_and_removals(sites, tmp_path):
    site, _ = sites
    first, _, _ = _crawl(site, tmp_path)
    site.requests.clear()
    again, _, stats = _crawl(site, tmp_path)
    # Every page sent its ETag back and got 304: nothing downloaded, the same articles.
    assert stats["not_modified"] == 5
    assert all(h.get("If-None-Match") for h in site.fetched("/docs/mlops.html"))
    assert {k: a.content_hash for k, a in again.items()} == {k: a.content_hash for k, a in first.items()}
    assert again["mlops.html"].text == first["mlops.html"].text

    changed = (CRAWL / "changing.html").read_text().replace("the data engineer answers", "the MLOps engineer answers")
    site.page("/docs/changing.html", changed)
    del site.routes["/docs/gone.html"]
    third, skipped, stats = _crawl(site, tmp_path)
    assert third["changing.html"].content_hash != first["changing.html"].content_hash
    assert "the MLOps engineer answers pipeline incidents" in third["changing.html"].text
    assert "gone.html" not in third and skipped["/docs/gone.html"] == "HTTP 404"
    assert third["mlops.html"].content_hash == first["mlops.html"].content_hash and stats["not_modified"] == 3


def test_page_cap_and_size_limit(sites, tmp_path):
    site, _ = sites
    articles, skipped, stats = _crawl(site, tmp_path, max_pages=2, concurrency=1)
    assert len(articles) == 2 and stats["pages"] == 2
    assert any(r.startswith("page cap of 2 reached;") for r in skipped.values())
    site.page("/docs/changing.html", "<html><body><p>" + "big " * 3000 + "</p></body></html>")
    articles, skipped, _ = _crawl(site, tmp_path / "2", max_bytes=5000)
    assert "changing.html" not in articles
    assert skipped["/docs/changing.html"] == "page is over the 5,000-byte limit (12,033 bytes declared)"


def test_a_page_of_unknown_length_is_cut_at_the_size_limit(sites, tmp_path):
    """Chunked, no Content-Length, 64 MB on offer: the download stops just past the limit, the page is skipped
    with the reason, and the crawl counts the bytes it read."""
    site, _ = sites
    piece = b"<p>" + b"big " * 4000 + b"</p>\n"  # 16,008 bytes a chunk
    site.chunked("/docs/changing.html", piece, 4000)
    articles, skipped, stats = _crawl(site, tmp_path, max_bytes=50_000)
    assert "changing.html" not in articles and "mlops.html" in articles
    assert skipped["/docs/changing.html"] == "page is over the 50,000-byte limit (more than 50,000 bytes sent)"
    assert len(site.fetched("/docs/changing.html")) == 1
    others = sum(len(body) for path, (status, _, body) in site.routes.items()
                 if status == 200 and isinstance(body, bytes) and site.fetched(path))
    # Read: every other page whole, and of this one the limit plus at most one network read (64 KiB).
    assert 50_000 < stats["bytes"] - others <= 50_000 + 65_536, stats
    # The server saw the client stop: it wrote far less than the 64 MB it offered (socket buffers aside).
    wait_for(lambda: site.sent.get("/docs/changing.html", 0) < 16_008 * 4000 and not site.in_flight, 10,
             "the server to notice the closed connection")
    assert site.sent["/docs/changing.html"] < 16_008 * 4000 // 4


def test_sitemap_start(sites, tmp_path):
    site, _ = sites
    source = CrawlSource(f"{site.url}/docs/sitemap.xml", state_dir=None, rate=0)
    ids = sorted(i.id for i in source.read() if not isinstance(i, Skipped))
    assert ids == ["changing.html", "mlops.html"]  # the sitemap's pages on this host; links not followed
    assert site.fetched("/docs/index.html") == []


def test_unreachable_site_fails_the_source(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(SourceError, match="cannot fetch"):
        list(CrawlSource(f"http://127.0.0.1:{port}/docs/", rate=0, timeout=2).read())
    with pytest.raises(SourceError, match="not an http"):
        list(CrawlSource("file:///etc/passwd").read())


def test_concurrency_and_rate_are_bounded(sites, tmp_path):
    site, _ = sites
    site.delay = 0.2
    source = CrawlSource(f"{site.url}/docs/index.html", state_dir=None, concurrency=2, rate=0)
    list(source.read())
    assert site.max_in_flight == 2  # pages are fetched two at a time, never more
    site.delay, site.max_in_flight = 0.0, 0
    start = time.monotonic()
    source = CrawlSource(f"{site.url}/docs/index.html", state_dir=None, concurrency=4, rate=10)
    list(source.read())
    # 10 requests a second at most: n requests take at least (n - 1) / 10 s, however fast the server is.
    assert time.monotonic() - start >= (source.stats["fetched"] - 1) / 10
    assert source.stats["fetched"] >= 9
