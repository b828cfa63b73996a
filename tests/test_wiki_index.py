"""Wiki sources through the whole build: one index from several sources, hits linking back to the wiki,
`rolesearch ingest --source`, and a broken export that publishes nothing."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from rolesearch.api.app import create_app
from rolesearch.cli.main import app as cli
from rolesearch.ingest.pipeline import build_index
from rolesearch.ingest.sources import SourceError
from rolesearch.ingest.sources.confluence import ConfluenceSource
from rolesearch.ingest.sources.crawl import CrawlSource
from rolesearch.ingest.sources.mediawiki import MediaWikiSource
from rolesearch.settings import Settings
from rolesearch.store.manifest import current_version
from rolesearch.store.versions import load_version
from tests.conftest import DATA
from tests.site_server import fixture_site, serve

EXPORT = DATA / "mediawiki" / "export-0.11.xml"


@pytest.fixture
def site():
    s = fixture_site(DATA / "crawl", "http://127.0.0.2:9")
    server, _ = serve(s)
    yield s
    server.shutdown()
    server.server_close()


def test_one_index_from_every_source_kind_links_back_to_the_wiki(tmp_path, site, embedder):
    index = tmp_path / "index"
    sources = [
        MediaWikiSource(str(EXPORT)),
        ConfluenceSource(str(DATA / "confluence" / "ROLES"), base_url="https://confluence.example.com"),
        CrawlSource(f"{site.url}/docs/index.html", state_dir=index / "cache", rate=0),
    ]
    summary = build_index(None, index, embedder, sources=sources)
    manifest = load_version(index).manifest
    assert {a["source"] for a in manifest.articles.values()} == {"mediawiki", "confluence", "crawl"}
    assert manifest.articles["MLOps_Engineer"]["url"] == "https://wiki.example.org/wiki/MLOps_Engineer"
    assert {s["path"].removeprefix(site.url) for s in summary.skipped} == {"/docs/missing.html", "/docs/elsewhere.html"}
    assert (index / "cache" / "crawl.sqlite3").is_file()  # the crawl's validators, beside the embedding cache

    app = create_app(Settings(index_dir=index, access_log=False), embedder=embedder)
    with TestClient(app) as c:
        r = c.get("/search", params={"q": "who rolls back a bad model release?", "k": 10, "mode": "hybrid"})
        assert r.status_code == 200
        hits = r.json()["hits"]
        by_source = {manifest.articles[h["article_id"]]["source"]: h for h in reversed(hits)}
        assert set(by_source) == {"mediawiki", "confluence", "crawl"}
        for h in hits:
            # Every hit links to its page in the wiki, at the passage's words, never to this service.
            base = manifest.articles[h["article_id"]]["url"]
            assert h["url"].startswith(base + "#:~:text=") and not h["url"].startswith("/")
            # The fragment quotes words the wiki shows: no list marker or table bar, which it draws instead.
            assert not re.search(r":~:text=(-|%7C|\d+\.)", h["url"]), h["url"]
        assert by_source["mediawiki"]["url"].startswith("https://wiki.example.org/wiki/MLOps_Engineer#:~:text=")
        assert by_source["confluence"]["section_path"][:2] == ["ML Roles Home", "Engineering Roles"]
        # The article list links wiki pages where they live; their page here says where to go.
        assert 'href="https://wiki.example.org/wiki/MLOps_Engineer"' in c.get("/articles").text
        r = c.get("/articles/MLOps_Engineer")
        assert r.status_code == 404 and "https://wiki.example.org/wiki/MLOps_Engineer" in r.json()["detail"]


def test_broken_export_fails_the_build_and_publishes_nothing(tmp_path, embedder):
    index = tmp_path / "index"
    export = tmp_path / "dump.xml"
    shutil.copy(EXPORT, export)
    good = build_index(None, index, embedder, sources=[MediaWikiSource(str(export))]).version
    data = EXPORT.read_bytes()
    export.write_bytes(data[:len(data) // 2])  # a download cut short
    with pytest.raises(SourceError, match=r"dump\.xml is malformed or truncated at line \d+"):
        build_index(None, index, embedder, sources=[MediaWikiSource(str(export))])
    assert current_version(index) == good
    assert sorted(p.name for p in (index / "versions").iterdir()) == [good]


def test_cli_ingest_sources_incrementally(tmp_path, monkeypatch):
    """`rolesearch ingest --source ...` (repeatable); a page gone from its export is removed at the next ingest."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    export = tmp_path / "dump.xml"
    shutil.copy(EXPORT, export)
    args = ["ingest", "--index", str(tmp_path / "index"), "--json", "--source", f"mediawiki:{export}",
            "--source", f"confluence:{DATA / 'confluence' / 'ROLES'}"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    first = json.loads(r.stdout)
    assert first["articles"]["added"] == 6 and first["skipped"] == []
    text = export.read_text(encoding="utf-8")
    start = text.index("  <page>\n    <title>Data Scientist</title>")
    export.write_text(text[:start] + text[text.index("</page>", start) + len("</page>\n"):], encoding="utf-8")
    r = CliRunner().invoke(cli, args)
    second = json.loads(r.stdout)
    assert second["articles"] == {"added": 0, "changed": 0, "removed": 1, "unchanged": 5, "skipped": 0}
    assert second["passages"]["embedded"] == 0
    r = CliRunner().invoke(cli, ["ingest", "--index", str(tmp_path / "index"), "--source", "wiki:dump.xml"])
    assert r.exit_code == 2 and "KIND:LOCATION" in r.output
