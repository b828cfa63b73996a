"""The crawl honours robots meta tags, X-Robots-Tag and rel="nofollow": what a site marks as not for indexing
or following is neither indexed nor followed (the start page's links excepted), and counted."""

from __future__ import annotations

import pytest

from rolesearch.ingest.sources.base import Skipped
from rolesearch.ingest.sources.crawl import CrawlSource
from tests.site_server import Site, serve


def _html(title: str, body: str, meta: str = "") -> str:
    return f"<html><head><title>{title}</title>{meta}</head><body><h1>{title}</h1>{body}</body></html>"


NOINDEX = '<meta name="robots" content="noindex,nofollow">'


@pytest.fixture
def site():
    s = Site()
    s.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow:\n")
    # The start page is noindex,nofollow (as MediaWiki's Special:AllPages): its links are followed all the same.
    s.page("/w/start.html", _html("All pages", '<a href="a.html">A</a> <a href="hub.html">Hub</a> '
                                              '<a href="header.html">Header</a> <a href="special.html">S</a>', NOINDEX))
    s.page("/w/a.html", _html("Article A", '<p>The MLOps engineer rolls back a bad release.</p>'
                                           '<a href="b.html">B</a> <a rel="nofollow" href="spam.html">spam</a>'))
    s.page("/w/b.html", _html("Article B", "<p>The data scientist designs experiments.</p>"))
    # Follow-able but not indexable: its links count, it does not.
    s.page("/w/hub.html", _html("Hub", '<a href="c.html">C</a>', '<meta name="robots" content="noindex">'))
    s.page("/w/c.html", _html("Article C", "<p>The ML engineer builds features.</p>"))
    # Indexable but not to be followed, said in a header this time.
    s.routes["/w/header.html"] = (200, {"Content-Type": "text/html", "X-Robots-Tag": "nofollow"},
                                  _html("Header page", '<p>Kept.</p><a href="never.html">x</a>').encode())
    # Both, in a header naming this crawler; a header for another crawler is not for us.
    s.routes["/w/special.html"] = (200, {"Content-Type": "text/html", "X-Robots-Tag": "rolesearch-crawler: none"},
                                   _html("Special", '<a href="never.html">x</a>').encode())
    s.routes["/w/c.html"] = (200, {"Content-Type": "text/html", "X-Robots-Tag": "otherbot: noindex"},
                             _html("Article C", "<p>The ML engineer builds features.</p>").encode())
    s.page("/w/spam.html", _html("Spam", "<p>never fetched</p>"))
    s.page("/w/never.html", _html("Never", "<p>never fetched</p>"))
    server, _ = serve(s)
    yield s
    server.shutdown()
    server.server_close()


def test_robots_meta_and_headers_decide_what_is_indexed_and_followed(site, tmp_path):
    crawl = CrawlSource(f"{site.url}/w/start.html", state_dir=tmp_path / "state", rate=0)
    items = list(crawl.read())
    assert not [i for i in items if isinstance(i, Skipped)]
    assert sorted(i.id for i in items) == ["a.html", "b.html", "c.html", "header.html"]
    assert site.fetched("/w/spam.html") == [] and site.fetched("/w/never.html") == []
    stats = crawl.stats
    assert (stats["noindex"], stats["nofollow"], stats["nofollow_links"]) == (3, 2, 1)  # start, hub, special
    # A second crawl answered 304 remembers what the pages said.
    again = CrawlSource(f"{site.url}/w/start.html", state_dir=tmp_path / "state", rate=0)
    assert sorted(i.id for i in again.read()) == ["a.html", "b.html", "c.html", "header.html"]
    assert again.stats["not_modified"] == 7 and again.stats["noindex"] == 3
    assert site.fetched("/w/never.html") == []
