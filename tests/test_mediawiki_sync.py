"""The mediawiki source over the real wiki's Action API: a first sync, then each change made with the wiki's own
maintenance scripts (edit, new page, move, delete, restore) reflected by the next sync, with what was embedded;
a bot password; failures that publish nothing; pages that cannot be indexed; and the crawl reading the wiki as
a reader would (robots meta tags)."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from dataclasses import replace

import numpy as np
import pytest

from rolesearch.ingest import pipeline
from rolesearch.ingest.access import AccessMap, AccessRule
from rolesearch.ingest.chunking import ChunkingParams, TokenLimits, chunk_article
from rolesearch.ingest.pipeline import BuildOptions, build
from rolesearch.ingest.sources import load_sources_file
from rolesearch.ingest.sources.base import Skipped, SourceError
from rolesearch.ingest.sources.crawl import CrawlSource
from rolesearch.ingest.sources.mediawiki import MediaWikiSource
from rolesearch.ingest.sources.mediawiki_api import MediaWikiApiSource
from rolesearch.ingest.sources.mediawiki_state import SyncState
from rolesearch.ingest.tokens import tiktoken_counter
from rolesearch.store.manifest import read_manifest
from rolesearch.store.versions import load_version
from tests import mediawiki
from tests.wiki_proxy import WikiProxy

pytestmark = [pytest.mark.wiki, pytest.mark.slow]

ALPHA = """The '''sync alpha''' reviewer checks model cards before a launch.

== Duties ==
* Reviews every model card before a launch and signs off the evaluation report.

== Career ==
Reviewers often come from research teams and move into model governance later.
"""
BETA = """The '''sync beta''' operator runs the feature store.

== Duties ==
* Keeps the feature store's backfills on schedule and pages the data engineers when one fails.
"""
GAMMA = """The '''sync gamma''' analyst writes the weekly launch report.

== Duties ==
* Collects launch metrics every Monday and sends the report to the product leads.
"""
MINE = ["Sync Alpha", "Sync Beta", "Sync Delta", "Sync Gamma", "Sync Epsilon", "Sync Zeta", "Sync Eta", "Big Page", "Hidden Page", "Nested Page", "Secret:Plans"]


@pytest.fixture(scope="module")
def wiki(real_wiki):
    """The session's wiki with a `Secret` namespace; the pages this module adds are deleted when it is done."""
    with real_wiki.conf.open("a", encoding="utf-8") as f:
        f.write("\n$wgExtraNamespaces[3000] = 'Secret';\n$wgExtraNamespaces[3001] = 'Secret_talk';\n")
    yield real_wiki
    for title in MINE + ["Sync Beta"]:
        if real_wiki.page_id(title) is not None:
            real_wiki.delete(title)


def _api(wiki, tmp_path, **options) -> MediaWikiApiSource:
    # state where `rolesearch ingest` keeps it: beside the embedding cache; rate 0 keeps the test quick
    return MediaWikiApiSource(f"{wiki.url}/api.php", state_dir=tmp_path / "index" / "cache", rate=0, backoff=0.01,
                              **options)


def _sync(source, tmp_path, embedder, **options):
    summary = build([source], tmp_path / "index", embedder, BuildOptions(**options))
    return summary, load_version(tmp_path / "index")


def _stored(source: MediaWikiApiSource):
    """The source's sync state on disk: (cursor, pages)."""
    state = SyncState(source.state_dir / "mediawiki.sqlite3")
    try:
        return state.load(source.key)
    finally:
        state.close()


def _rows(version, article_id) -> list[int]:
    return [i for i, p in enumerate(version.passages) if p.article_id == article_id]


def test_each_wiki_change_reaches_the_next_sync(wiki, tmp_path, embedder):
    wiki.edit("Sync Alpha", ALPHA)
    wiki.edit("Sync Beta", BETA)
    source = _api(wiki, tmp_path)
    summary, v = _sync(source, tmp_path, embedder)
    assert source.stats["mode"] == "full"
    assert sorted(v.manifest.articles) == ["Data_Scientist", "MLOps_Engineer", "Main_Page", "Sync_Alpha", "Sync_Beta"]
    assert summary.sources == [{"kind": "mediawiki", "location": f"{wiki.url}/api.php", **source.stats}]

    # Nothing changed: two requests (the change feeds, and how far back recentchanges reaches), nothing embedded.
    summary, v = _sync(source, tmp_path, embedder)
    assert source.stats == {"mode": "changes", "requests": 2, "fetched": 0}
    assert summary.passages["embedded"] == 0 and summary.articles["unchanged"] == 5

    # An edit re-embeds only the changed passage of that page.
    alpha_rows = len(_rows(v, "Sync_Alpha"))
    wiki.edit("Sync Alpha", ALPHA.replace("move into model governance later", "lead the review board"))
    summary, v = _sync(source, tmp_path, embedder)
    assert summary.articles | {"skipped": 0} == {"added": 0, "changed": 1, "removed": 0, "unchanged": 4, "skipped": 0}
    assert summary.passages["embedded"] == 1 and len(_rows(v, "Sync_Alpha")) == alpha_rows >= 2
    assert source.stats["fetched"] == 1
    assert any("lead the review board" in v.passages[i].text for i in _rows(v, "Sync_Alpha"))

    # A new page: added, its passages embedded.
    wiki.edit("Sync Gamma", GAMMA)
    summary, v = _sync(source, tmp_path, embedder)
    assert summary.articles["added"] == 1 and summary.passages["embedded"] == len(_rows(v, "Sync_Gamma")) > 0

    # A move: the page under its new title and URL, its vectors kept (nothing embedded).
    before = {v.passages[i].text: np.array(v.embeddings[i]) for i in _rows(v, "Sync_Beta")}
    wiki.move("Sync Beta", "Sync Delta")
    summary, v = _sync(source, tmp_path, embedder)
    assert (summary.articles["added"], summary.articles["removed"], summary.passages["embedded"]) == (1, 1, 0)
    assert summary.renamed == [{"from": "Sync_Beta", "to": "Sync_Delta"}]
    assert "Sync_Beta" not in v.manifest.articles  # the redirect left behind is not a page
    entry = v.manifest.articles["Sync_Delta"]
    assert (entry["title"], entry["url"]) == ("Sync Delta", wiki.page_url("Sync Delta"))
    moved = _rows(v, "Sync_Delta")
    assert {v.passages[i].text for i in moved} == set(before) and {v.passages[i].title for i in moved} == {"Sync Delta"}
    for i in moved:
        assert np.array_equal(np.array(v.embeddings[i]), before[v.passages[i].text])

    # A deletion: gone from the index.
    gamma_rows = len(_rows(v, "Sync_Gamma"))
    wiki.delete("Sync Gamma")
    summary, v = _sync(source, tmp_path, embedder)
    assert (summary.articles["removed"], summary.passages["embedded"]) == (1, 0) and not _rows(v, "Sync_Gamma")

    # A restore: back, from the embedding cache (nothing embedded).
    wiki.undelete("Sync Gamma")
    summary, v = _sync(source, tmp_path, embedder)
    assert (summary.articles["added"], summary.passages["embedded"]) == (1, 0)
    assert len(_rows(v, "Sync_Gamma")) == gamma_rows

    # Pushed page ids: fetched besides the (empty) change feed; an id the wiki no longer has changes nothing.
    summary, v = _sync(source, tmp_path, embedder, notified_pages=frozenset({wiki.page_id("Sync Alpha"), 999999}))
    assert source.stats["fetched"] == 1 and summary.passages["embedded"] == 0 and summary.articles["unchanged"] == 6


def test_a_sources_file_names_the_api_and_the_cli_prints_the_requests(wiki, tmp_path, embedder):
    """`rolesearch ingest` through a sources file: the state lives beside the index and the summary counts requests."""
    from typer.testing import CliRunner

    from rolesearch.cli.main import app

    (tmp_path / "sources.yaml").write_text(f"sources:\n  - kind: mediawiki\n    location: {wiki.url}/api.php\n"
                                           "    contact: ops@example.com\n    rate: 20\n    full_every: 1d\n")
    (source,) = load_sources_file(tmp_path / "sources.yaml", tmp_path / "index" / "cache")
    assert isinstance(source, MediaWikiApiSource) and source.full_every == 86400 and source.contact == "ops@example.com"
    runner = CliRunner()
    env = {"ROLESEARCH_SOURCES_FILE": str(tmp_path / "sources.yaml"), "HF_HUB_OFFLINE": "1"}
    args = ["ingest", "--index", str(tmp_path / "index")]
    first = runner.invoke(app, args, env=env)
    assert first.exit_code == 0, first.output
    assert (tmp_path / "index" / "cache" / "mediawiki.sqlite3").is_file()
    again = runner.invoke(app, args, env=env)
    assert again.exit_code == 0, again.output
    assert f"mediawiki {wiki.url}/api.php: changes sync, 2 requests, 0 fetched" in again.output
    assert "0 embedded" in again.output


def test_a_pruned_change_feed_or_full_every_reconciles_against_the_page_list(wiki, tmp_path, embedder):
    wiki.edit("Sync Epsilon", ALPHA.replace("sync alpha", "sync epsilon"))
    wiki.edit("Sync Zeta", BETA.replace("sync beta", "sync zeta"))
    source = _api(wiki, tmp_path)
    _sync(source, tmp_path, embedder)
    wiki.edit("Sync Epsilon", ALPHA.replace("sync alpha", "sync epsilon").replace("governance", "policy"))
    wiki.delete("Sync Zeta")
    wiki.edit("Sync Eta", GAMMA.replace("sync gamma", "sync eta"))
    newest = wiki.api(list="recentchanges", rclimit=1)["query"]["recentchanges"][0]["rcid"]
    with sqlite3.connect(wiki.folder / "data" / "testwiki.sqlite") as db:  # what $wgRCMaxAge's pruning does
        db.execute("DELETE FROM recentchanges WHERE rc_id < ?", (newest,))
    summary, v = _sync(source, tmp_path, embedder)
    assert source.stats["mode"] == "reconcile"
    assert (summary.articles["added"], summary.articles["changed"], summary.articles["removed"]) == (1, 1, 1)
    assert summary.passages["embedded"] == 1 + len(_rows(v, "Sync_Eta"))  # the edited passage, the new page
    assert "Sync_Zeta" not in v.manifest.articles
    # full_every: every sync reconciles; a wiki that did not change costs the page list and nothing is embedded.
    every = _api(wiki, tmp_path, full_every=0)
    summary, v = _sync(every, tmp_path, embedder)
    assert every.stats == {"mode": "reconcile", "requests": 2, "fetched": 0}
    assert summary.passages["embedded"] == 0 and summary.articles["unchanged"] == len(v.manifest.articles)


def test_export_and_api_give_the_same_passages(wiki, tmp_path, embedder):
    limits = TokenLimits(tiktoken_counter("cl100k_base"), 200)
    export = {a.id: a for a in MediaWikiSource(str(wiki.export(tmp_path / "dump.xml"))).read()
              if not isinstance(a, Skipped)}
    api = {a.id: a for a in MediaWikiApiSource(f"{wiki.url}/api.php", rate=0).read() if not isinstance(a, Skipped)}
    assert sorted(api) == sorted(export) and {"MLOps_Engineer", "Data_Scientist", "Main_Page"} <= set(api)
    for aid, a in export.items():
        b = api[aid]
        assert (a.title, a.url, a.content_hash, a.namespace) == (b.title, b.url, b.content_hash, b.namespace)
        assert chunk_article(a, ChunkingParams(), limits) == chunk_article(b, ChunkingParams(), limits)
    # An index built from the export is already up to date for the API source: nothing is embedded.
    build([MediaWikiSource(str(tmp_path / "dump.xml"))], tmp_path / "index", embedder)
    summary = build([_api(wiki, tmp_path)], tmp_path / "index", embedder)
    assert summary.passages["embedded"] == 0 and summary.articles["unchanged"] == len(export)


def test_render_parse_expands_templates_through_the_html_reader(wiki, tmp_path, embedder):
    limits = TokenLimits(tiktoken_counter("cl100k_base"), 200)
    source = _api(wiki, tmp_path, render="parse")
    articles = {a.id: a for a in source.read() if not isinstance(a, Skipped)}
    # A listing request, and one action=parse per page (plus siteinfo).
    assert source.stats["requests"] == 2 + len(articles)
    mlops = articles["MLOps_Engineer"]
    assert "| Role | MLOps Engineer |" in mlops.text  # the template's table, which wikitext mode drops
    assert "Internal role survey" not in mlops.text and "[edit]" not in mlops.text
    sections = list(dict.fromkeys(p.section for p in chunk_article(mlops, ChunkingParams(), limits)))
    assert sections == [(), ("Duties",), ("Tools",), ("Tools", "Further reading")]
    # The next sync of an unchanged wiki renders nothing again.
    _sync(_api(wiki, tmp_path, render="parse"), tmp_path, embedder)
    again = _api(wiki, tmp_path, render="parse")
    summary, _ = _sync(again, tmp_path, embedder)
    assert again.stats == {"mode": "changes", "requests": 2, "fetched": 0} and summary.passages["embedded"] == 0


@contextlib.contextmanager
def _private(wiki):
    """The wiki closed to anonymous readers for a while (LocalSettings.php is read on every request)."""
    original = wiki.conf.read_text(encoding="utf-8")
    wiki.conf.write_text(original + "\n$wgGroupPermissions['*']['read'] = false;\n", encoding="utf-8")
    try:
        yield
    finally:
        wiki.conf.write_text(original, encoding="utf-8")


def test_a_bot_password_reads_a_private_wiki_and_a_wrong_one_publishes_nothing(wiki, tmp_path, embedder,
                                                                               monkeypatch):
    login = wiki.bot_password("Admin", "rolesearch", "rolesearchrolesearchrolesearch12")
    monkeypatch.setenv("WIKI_BOT_PASSWORD", "rolesearchrolesearchrolesearch12")
    monkeypatch.setenv("WRONG_PASSWORD", "not-the-password-at-all-00000000")
    with _private(wiki):
        with pytest.raises(SourceError, match="refuses anonymous reading"):
            build([_api(wiki, tmp_path)], tmp_path / "index", embedder)
        _, v = _sync(_api(wiki, tmp_path, user=login, password_env="WIKI_BOT_PASSWORD"), tmp_path, embedder)
        assert "MLOps_Engineer" in v.manifest.articles
        published = v.manifest.version
        wrong = _api(wiki, tmp_path, user=login, password_env="WRONG_PASSWORD")
        with pytest.raises(SourceError, match=r"login as 'Admin@rolesearch' .* failed .*WRONG_PASSWORD \(password_env\)"
                           ) as exc:
            build([wrong], tmp_path / "index", embedder)
        assert "not-the-password" not in str(exc.value)
        missing = _api(wiki, tmp_path, user=login, password_env="NO_SUCH_VARIABLE")
        with pytest.raises(SourceError, match="NO_SUCH_VARIABLE"):
            build([missing], tmp_path / "index", embedder)
    assert read_manifest(tmp_path / "index").version == published
    assert "rolesearchrolesearch" not in (tmp_path / "index" / "versions" / published / "manifest.json").read_text()


def test_a_wiki_that_fails_mid_sync_publishes_nothing_and_the_next_sync_catches_up(wiki, tmp_path, embedder,
                                                                                   monkeypatch):
    proxy = WikiProxy(wiki.url)
    try:
        source = MediaWikiApiSource(f"{proxy.url}/api.php", state_dir=tmp_path / "index" / "cache", rate=0,
                                    backoff=0.01, retries=2, contact="ops@example.com")
        _sync(source, tmp_path, embedder)
        published, stored = read_manifest(tmp_path / "index").version, _stored(source)
        wiki.edit("Data Scientist", mediawiki.PAGES["Data Scientist"].replace("statistics", "astronomy"))
        # The page fetch answers 503 every time: the sync fails after its retries, nothing is published.
        proxy.rule = lambda target: (503, {"Retry-After": "0"}, b"busy") if "pageids=" in target else None
        with pytest.raises(SourceError, match="HTTP 503 3 times"):
            build([source], tmp_path / "index", embedder)
        assert read_manifest(tmp_path / "index").version == published
        # A build that read the change but failed before publishing: the sync state must not move either.
        proxy.rule = lambda target: None
        with monkeypatch.context() as m:
            m.setattr(pipeline, "publish", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
            with pytest.raises(OSError, match="disk full"):
                build([source], tmp_path / "index", embedder)
        assert read_manifest(tmp_path / "index").version == published
        assert _stored(source) == stored
        # A wiki too slow to answer: the request times out, is retried, and the sync fails.
        def slow(target):
            if "pageids=" in target:
                time.sleep(0.6)  # then forwarded (None)

        proxy.rule = slow
        slow_source = replace(source, timeout=0.3)
        with pytest.raises(SourceError, match="ReadTimeout after 3 attempts"):
            build([slow_source], tmp_path / "index", embedder)
        assert read_manifest(tmp_path / "index").version == published and _stored(source) == stored
        # An HTML error page where JSON should be: named as such.
        proxy.rule = lambda target: (200, {"Content-Type": "text/html"}, b"<html>Gateway error</html>")
        with pytest.raises(SourceError, match="is not a MediaWiki API: it answered HTTP 200 \\(text/html\\)"):
            build([source], tmp_path / "index", embedder)
        # A 503 once, then a maxlag error (the wiki's replicas lag), then the wiki answers: each retried after the
        # Retry-After it gave, and the edit is picked up from the last published state.
        failed = []
        lagged = b'{"error": {"code": "maxlag", "info": "Waiting for a database server: 7 seconds lagged."}}'
        answers = [(503, {"Retry-After": "0"}, b""), (200, {"Content-Type": "application/json", "Retry-After": "0"},
                                                        lagged)]
        proxy.rule = lambda target: failed.append(target) or answers.pop(0) if answers else None
        summary, v = _sync(source, tmp_path, embedder)
        assert summary.articles["changed"] == 1 and any("astronomy" in p.text for p in v.passages)
        assert len(failed) == 2 and source.stats["requests"] == 5  # 3 + the 2 retries
        assert all("maxlag=5" in t for t in proxy.seen if "api.php" in t)
        assert set(proxy.agents) == {"rolesearch/0.1.0 (ops@example.com)"}
    finally:
        proxy.stop()
        wiki.edit("Data Scientist", mediawiki.PAGES["Data Scientist"])
    # Not an API at all: the wiki's index.php answers an HTML page.
    with pytest.raises(SourceError, match="is not a MediaWiki API"):
        list(MediaWikiApiSource(f"{wiki.url}/w/api.php", rate=0).read())
    with pytest.raises(SourceError, match="not an http\\(s\\) URL ending in api.php"):
        MediaWikiApiSource(f"{wiki.url}/index.php")


def test_crawling_the_wiki_from_all_pages_yields_its_content_pages_only(wiki, tmp_path):
    """MediaWiki marks special, history and edit pages noindex,nofollow: the crawl indexes the articles only."""
    robots = wiki.folder / "robots.txt"
    original = robots.read_text()
    robots.write_text("User-agent: *\nDisallow:\n")  # nothing forbidden: the meta tags alone must keep it clean
    try:
        crawl = CrawlSource(wiki.page_url("Special:AllPages"), state_dir=tmp_path / "state", rate=0, concurrency=2,
                            max_pages=400)
        items = list(crawl.read())
    finally:
        robots.write_text(original)
    articles = {i.id for i in items if not isinstance(i, Skipped)}
    content = {p["title"].replace(" ", "_") for p in wiki.api(list="allpages", apfilterredir="nonredirects",
                                                              aplimit=500)["query"]["allpages"]}
    assert articles == content
    assert crawl.stats["noindex"] > 0 and crawl.stats["nofollow"] > 0


def test_pages_that_cannot_be_indexed_are_skipped_with_their_reason(wiki, tmp_path, embedder):
    wiki.edit("Big Page", "A big page.\n\n" + "word " * 1_300)  # over the source's max_bytes (2 MB by default)
    wiki.edit("Nested Page", "{{" * 1000 + "x" + "}}" * 1000)  # MediaWiki saves it; mwparserfromhell gives up
    wiki.edit("Hidden Page", "Text an oversighter hid.")
    wiki.edit("Secret:Plans", "== Plans ==\nThe launch plan for the next model is kept here.")
    (tmp_path / "access.yaml").write_text("- namespace: secret\n  groups: [security]\n")
    access = AccessMap.load(tmp_path / "access.yaml")
    assert access.rules == (AccessRule(("security",), namespace="secret"),)
    # What MediaWiki answers for a revision whose text was hidden (revision deletion): no content, texthidden.
    proxy = WikiProxy(wiki.url)
    proxy.rewrite = lambda target, body: body.replace(
        b'"content":"Text an oversighter hid."', b'"texthidden":true') if b"Hidden Page" in body else body
    source = MediaWikiApiSource(f"{proxy.url}/api.php", state_dir=tmp_path / "index" / "cache", rate=0,
                                namespaces=["main", "Secret"], max_bytes=5_000)
    try:
        summary, v = _sync(source, tmp_path, embedder, access=access)
        _check_skips_and_namespaces(wiki, source, summary, v, tmp_path, embedder, access)
    finally:
        proxy.stop()
        for title in ("Big Page", "Nested Page", "Hidden Page", "Secret:Plans"):
            wiki.delete(title)


def _check_skips_and_namespaces(wiki, source, summary, v, tmp_path, embedder, access):
    host = source.location.removeprefix("http://").removesuffix("/api.php")
    reasons = {s["path"]: s["reason"] for s in summary.skipped}
    assert reasons[f"{host}: Big Page"] == "page is 6,512 bytes, over the 5,000-byte limit"
    assert reasons[f"{host}: Hidden Page"] == "the latest revision's text is hidden (revision deleted)"
    # mwparserfromhell gives up past Python's recursion limit (which the process may have raised): either way the
    # page is skipped with its reason and the sync goes on.
    assert reasons[f"{host}: Nested Page"].startswith(("wikitext cannot be parsed (RecursionError", "page has no text"))
    assert {"MLOps_Engineer", "Secret-Plans"} <= set(v.manifest.articles)
    # namespace: rules give groups; an unchanged page keeps them at the next sync (from its manifest entry).
    for _ in range(2):
        assert v.manifest.articles["Secret-Plans"]["access"] == ["security"]
        assert v.manifest.articles["MLOps_Engineer"]["access"] == []
        summary, v = _sync(source, tmp_path, embedder, access=access)
    assert source.stats["fetched"] == 0 and len(summary.skipped) == 3  # skips are remembered, not fetched again


def test_wikitext_the_parser_chokes_on_skips_the_page(wiki, tmp_path, monkeypatch):
    import mwparserfromhell

    def choke(text):
        if "sync alpha" in text:
            raise mwparserfromhell.parser.ParserError("tokenizer exited with a non-empty token stack")
        return parse(text)

    parse = mwparserfromhell.parse
    wiki.edit("Sync Alpha", ALPHA)
    monkeypatch.setattr(mwparserfromhell, "parse", choke)
    items = list(MediaWikiApiSource(f"{wiki.url}/api.php", rate=0).read())
    skipped = {i.path.rsplit(": ", 1)[1]: i.reason for i in items if isinstance(i, Skipped)}
    assert skipped == {"Sync Alpha": "wikitext cannot be parsed (ParserError: This is a bug and should be reported. "
                                     "Info: tokenizer exited with a non-empty token stack.)"}
    assert {"MLOps_Engineer", "Data_Scientist"} <= {i.id for i in items if not isinstance(i, Skipped)}


def test_requests_keep_to_the_rate(wiki):
    from rolesearch.ingest.sources.mediawiki_client import WikiApi

    api = WikiApi(f"{wiki.url}/api.php", rate=10)
    try:
        start = time.monotonic()
        for _ in range(4):
            api.call({"action": "query", "meta": "siteinfo"})
        assert time.monotonic() - start >= 0.3 and api.requests == 4  # one request every 0.1 s at most
    finally:
        api.close()
