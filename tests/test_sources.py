"""The mediawiki and confluence sources on their fixtures, down to sections and passages; bad input."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from rolesearch.ingest.chunking import ChunkingParams, TokenLimits, chunk_article
from rolesearch.ingest.sources import load_sources_file, parse_source
from rolesearch.ingest.sources.base import Skipped, SourceError
from rolesearch.ingest.sources.confluence import ConfluenceSource
from rolesearch.ingest.sources.mediawiki import MediaWikiSource
from rolesearch.ingest.tokens import tiktoken_counter
from tests.conftest import DATA

EXPORTS = {
    "0.10": ("export-0.10.xml", "https://intranet.example.org/w/index.php?title=MLOps_Engineer"),
    "0.11": ("export-0.11.xml", "https://wiki.example.org/wiki/MLOps_Engineer"),
}
CONFLUENCE = DATA / "confluence" / "ROLES"
LIMITS = TokenLimits(tiktoken_counter("cl100k_base"), 200)


def _passages(article):
    passages = chunk_article(article, ChunkingParams(), LIMITS)
    for p in passages:
        assert p.text == article.text[p.start:p.end]  # a passage is a slice of the article's text
    return passages


def _read(source):
    items = list(source.read())
    return {i.id: i for i in items if not isinstance(i, Skipped)}, [i for i in items if isinstance(i, Skipped)]


@pytest.mark.parametrize("schema", sorted(EXPORTS))
def test_mediawiki_export_pages_sections_and_passages(schema):
    name, url = EXPORTS[schema]
    articles, skipped = _read(MediaWikiSource(str(DATA / "mediawiki" / name)))
    # The redirect (MLOps), the template and the talk page are not articles.
    assert sorted(articles) == ["Data_Scientist", "MLOps_Engineer"] and skipped == []
    a = articles["MLOps_Engineer"]
    assert (a.title, a.url, a.source, a.date) == ("MLOps Engineer", url, "mediawiki", "2026-02-01T09:30:00Z")
    assert "Old draft" not in a.text  # the latest revision, not the first
    for dropped in ("Infobox", "Platform", "Internal role survey", "Pipeline.png", "release pipeline]",
                    "Category", "reviewers", "{{", "[["):
        assert dropped not in a.text
    assert "owns the release pipeline and the model registry." in a.text  # links become their text
    assert "See the MLOps guide and data scientists for the modelling side." in a.text
    lines = a.text.split("\n")
    assert "- Model versioning and rollback: keeps every released model version and rolls back a bad release." in lines
    assert "- Alerts go to the on-call rota." in lines
    assert ["1. Review the release checklist.", "2. Promote the model."] == [x for x in lines if x[:2] in ("1.", "2.")]
    assert ["| Tool | Used for |", "| MLflow | the model registry |", "| Prometheus | serving metrics |"] == \
        [x for x in lines if x.startswith("|")]

    passages = _passages(a)
    assert list(dict.fromkeys(p.section for p in passages)) == [(), ("Duties",), ("Tools",), ("Tools", "Further reading")]
    rollback = next(p for p in passages if "rolls back a bad release" in p.text)
    assert rollback.section == ("Duties",) and rollback.title == "MLOps Engineer"
    table = next(p for p in passages if "| MLflow |" in p.text)
    assert table.section == ("Tools",)


def test_both_schemas_give_the_same_passages():
    by_schema = {s: _read(MediaWikiSource(str(DATA / "mediawiki" / n)))[0] for s, (n, _) in EXPORTS.items()}
    assert [(p.section, p.text) for p in _passages(by_schema["0.10"]["MLOps_Engineer"])] == \
        [(p.section, p.text) for p in _passages(by_schema["0.11"]["MLOps_Engineer"])]


@pytest.mark.parametrize("cut", [0.3, 0.7, 0.95])
def test_truncated_export_fails_saying_where(tmp_path, cut):
    data = (DATA / "mediawiki" / "export-0.11.xml").read_bytes()
    bad = tmp_path / "dump.xml"
    bad.write_bytes(data[:int(len(data) * cut)])
    with pytest.raises(SourceError, match=r"dump\.xml is malformed or truncated at line \d+, column \d+"):
        list(MediaWikiSource(str(bad)).read())


def test_malformed_export_and_unknown_schema(tmp_path):
    bad = tmp_path / "bad.xml"
    text = (DATA / "mediawiki" / "export-0.11.xml").read_text(encoding="utf-8")
    bad.write_text(text.replace("</title>", "</titel>", 1), encoding="utf-8")
    with pytest.raises(SourceError, match=r"bad\.xml is malformed or truncated at line 17, column"):
        list(MediaWikiSource(str(bad)).read())
    old = tmp_path / "old.xml"
    old.write_text(text.replace("export-0.11", "export-0.9").replace('version="0.11"', 'version="0.9"'))
    with pytest.raises(SourceError, match="schema 0.9 is not supported"):
        list(MediaWikiSource(str(old)).read())


def test_page_over_the_size_limit_is_skipped_and_reported(tmp_path):
    text = (DATA / "mediawiki" / "export-0.11.xml").read_text(encoding="utf-8")
    big = "A data scientist explores data. " * 70_000  # 2.2 MB of wikitext
    dump = tmp_path / "big.xml"
    dump.write_text(text.replace("A '''data scientist''' explores data and builds models.", big), encoding="utf-8")
    articles, skipped = _read(MediaWikiSource(str(dump)))
    assert list(articles) == ["MLOps_Engineer"]
    assert skipped == [Skipped("big.xml: Data Scientist", skipped[0].reason)]
    assert "over the 2,000,000-byte limit" in skipped[0].reason


def _confluence_checks(articles, skipped):
    assert skipped == []
    assert sorted(articles) == ["Engineering-Roles_65539", "ML-Engineer_65541", "ML-Roles-Home_65538",
                                "MLOps-Engineer_65540"]
    a = articles["MLOps-Engineer_65540"]
    assert (a.title, a.url, a.source) == (
        "MLOps Engineer", "https://confluence.example.com/pages/viewpage.action?pageId=65540", "confluence")
    passages = _passages(a)
    # Breadcrumbs start the section path; the page's own headings follow.
    assert list(dict.fromkeys(p.section for p in passages)) == [
        ("ML Roles Home", "Engineering Roles", "Duties"), ("ML Roles Home", "Engineering Roles", "Duties", "On-call")]
    rollback = next(p for p in passages if "- Model versioning and rollback: keeps" in p.text)
    assert rollback.section[-1] == "Duties"
    assert "| Odd | MLOps engineer |" in a.text
    everything = " ".join(x.text for x in articles.values())
    for chrome in ("zebra-attachment-marker", "Attachments", "Document generated", "Created by", "ML Roles :"):
        assert chrome not in everything
    home = _passages(articles["ML-Roles-Home_65538"])
    assert [p.section for p in home] == [()]


def test_confluence_folder_export():
    _confluence_checks(*_read(ConfluenceSource(str(CONFLUENCE), base_url="https://confluence.example.com/")))


def _zip(folder: Path, dest: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, f"ROLES/{p.relative_to(folder).as_posix()}")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return dest


def test_confluence_zip_export(tmp_path):
    zipped = _zip(CONFLUENCE, tmp_path / "ROLES.zip")
    _confluence_checks(*_read(ConfluenceSource(str(zipped), base_url="https://confluence.example.com")))


def test_zip_entries_outside_the_folder_are_refused(tmp_path):
    page = (CONFLUENCE / "ML-Engineer_65541.html").read_bytes()
    zipped = _zip(CONFLUENCE, tmp_path / "evil.zip", {"ROLES/../../escape_1.html": page, "/etc/abs_2.html": page})
    articles, skipped = _read(ConfluenceSource(str(zipped)))
    assert len(articles) == 4 and "escape_1" not in " ".join(articles)
    assert sorted(s.path for s in skipped) == ["evil.zip//etc/abs_2.html", "evil.zip/ROLES/../../escape_1.html"]
    assert all("outside the export folder" in s.reason for s in skipped)
    assert articles["ML-Engineer_65541"].url is None  # no base_url given: no link into the wiki


def test_confluence_bad_input(tmp_path):
    (tmp_path / "notzip.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(SourceError, match="notzip.zip is not a readable zip"):
        list(ConfluenceSource(str(tmp_path / "notzip.zip")).read())
    with pytest.raises(SourceError, match="has no index.html"):
        list(ConfluenceSource(str(tmp_path)).read())
    big = _zip(CONFLUENCE, tmp_path / "big.zip", {"ROLES/Huge_9.html": b"<p>x</p>" * 300_000})
    articles, skipped = _read(ConfluenceSource(str(big)))
    assert len(articles) == 4 and [s.path for s in skipped] == ["big.zip/ROLES/Huge_9.html"]
    assert "over the 2,000,000-byte limit" in skipped[0].reason


def test_source_specs_and_sources_file(tmp_path):
    assert parse_source("mediawiki:dump.xml").location == "dump.xml"
    assert parse_source("crawl:https://wiki.example/Main_Page").location == "https://wiki.example/Main_Page"
    for bad in ("dump.xml", "ftp:x", "mediawiki:"):
        with pytest.raises(SourceError, match="KIND:LOCATION"):
            parse_source(bad)
    (tmp_path / "sources.yaml").write_text(
        "sources:\n"
        f"  - kind: mediawiki\n    location: {DATA / 'mediawiki' / 'export-0.11.xml'}\n"
        "  - kind: confluence\n    location: space\n    base_url: https://confluence.example.com\n"
        "  - kind: crawl\n    location: http://127.0.0.1:9/docs/\n    max_pages: 10\n    rate: 2\n")
    sources = load_sources_file(tmp_path / "sources.yaml", tmp_path / "state")
    assert [s.kind for s in sources] == ["mediawiki", "confluence", "crawl"]
    assert sources[1].location == str(tmp_path / "space") and sources[1].base_url == "https://confluence.example.com"
    assert (sources[2].max_pages, sources[2].rate) == (10, 2)
    (tmp_path / "bad.yaml").write_text("sources:\n  - kind: crawl\n    location: http://x/\n    speed: 3\n")
    with pytest.raises(SourceError, match="entry 1: .*speed"):
        load_sources_file(tmp_path / "bad.yaml")
