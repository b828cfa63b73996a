"""The pages for people: the search page, OpenSearch, the article list and article pages with anchors."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from rolesearch.api.app import create_app
from rolesearch.api.links import section_anchor
from rolesearch.settings import Settings
from tests.conftest import CORPUS

MARKUP_ARTICLE = """Markup Test

Escaping Rules

Some text with <script>alert("x")</script> and <b>bold</b> & an ampersand.
"""


class _Ids(HTMLParser):
    """Collects element ids and the text of <script> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.ids += [v for k, v in attrs if k == "id"]
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def _parse(html: str) -> _Ids:
    p = _Ids()
    p.feed(html)
    return p


@pytest.fixture
def client(small_corpus, tmp_path, embedder):
    from rolesearch.ingest.pipeline import build_index

    (small_corpus / "markup.txt").write_text(MARKUP_ARTICLE, encoding="utf-8")
    index_dir = tmp_path / "index"
    build_index(small_corpus, index_dir, embedder)
    app = create_app(Settings(index_dir=index_dir, corpus_dir=small_corpus), embedder=embedder)
    with TestClient(app) as c:
        yield c


def test_search_page_is_served_with_its_assets(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert 'id="q"' in page and 'role="search"' in page and 'name="viewport"' in page
    assert 'href="/opensearch.xml"' in page
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page):
        a = client.get(asset)
        assert a.status_code == 200, asset
    js = client.get("/static/app.js").text
    # The page reads ?q= on load and never builds HTML from response data.
    assert "location.search" in js and "innerHTML" not in js
    # The same page answers /?q=..., so results can be linked.
    assert client.get("/", params={"q": "who owns rollback?"}).text == page


def test_opensearch_description_points_at_this_server(client):
    r = client.get("/opensearch.xml")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/opensearchdescription+xml")
    assert 'template="http://testserver/?q={searchTerms}"' in r.text
    assert "<ShortName>rolesearch</ShortName>" in r.text


def test_articles_list_links_every_indexed_article(client):
    r = client.get("/articles")
    assert r.status_code == 200
    links = re.findall(r'href="/articles/([^"]+)"', r.text)
    assert sorted(links) == ["markup", "rollback", "salaries"]
    assert "Who does what in ML" in r.text


def test_article_page_has_section_anchors_that_hit_links_use(client):
    hit = client.get("/search", params={"q": "salary of an ML engineer in New York", "k": 1, "mode": "dense"}).json()["hits"][0]
    path, fragment = hit["url"].split("#", 1)
    anchor = fragment.split(":~:")[0]
    assert path == "/articles/salaries" and anchor == "career-options"
    r = client.get(path)
    assert r.status_code == 200
    assert anchor in _parse(r.text).ids
    # The passage's own words are on the page, so the text fragment finds them.
    assert "An ML engineer with four years of experience" in r.text


def test_article_text_is_escaped(client):
    r = client.get("/articles/markup")
    assert r.status_code == 200
    parsed = _parse(r.text)
    assert not any("alert" in s for s in parsed.scripts)
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in r.text
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; an ampersand." in r.text
    assert "escaping-rules" in parsed.ids


def test_unknown_article_is_404_json_for_scripts_and_a_page_for_people(client):
    r = client.get("/articles/no-such-thing")
    assert r.status_code == 404
    assert r.json() == {"detail": "no article 'no-such-thing' in the index; see /articles for the list"}
    r = client.get("/articles/<img src=x>", headers={"accept": "text/html,*/*;q=0.8"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "no article &#39;&lt;img src=x&gt;&#39; in the index" in r.text and "<img src=x>" not in r.text


def test_article_whose_file_is_gone_is_404_with_the_reason(client, small_corpus):
    (small_corpus / "salaries.txt").unlink()
    r = client.get("/articles/salaries")
    assert r.status_code == 404
    assert "indexed but its file cannot be read" in r.json()["detail"]


def test_changed_article_says_so(client, small_corpus):
    path = small_corpus / "salaries.txt"
    path.write_text(path.read_text() + "\nA new line.\n", encoding="utf-8")
    assert "changed since the index was built" in client.get("/articles/salaries").text
    assert "changed since the index was built" not in client.get("/articles/rollback").text


@pytest.mark.slow
def test_every_passage_section_has_its_anchor_on_the_real_articles(corpus_index, embedder):
    from rolesearch.search.index import SearchIndex

    index = SearchIndex.load(corpus_index, embedder.name)
    app = create_app(Settings(index_dir=corpus_index, corpus_dir=CORPUS), embedder=embedder)
    with TestClient(app) as c:
        ids = {aid: set(_parse(c.get(f"/articles/{aid}").text).ids) for aid in index.articles}
    missing = [(p.id, p.section[-1]) for p in index.passages if p.section and section_anchor(p.section) not in ids[p.article_id]]
    assert missing == []
    assert "3-differences--mlops-engineer" in ids["tenyks-ml-vs-mlops-engineer"]
    # Repeated headings ("Key Responsibilities:" under each role) still get anchors of their own.
    for aid in index.articles:
        sections = {p.section for p in index.passages if p.article_id == aid and p.section}
        assert len({section_anchor(s) for s in sections}) == len(sections), aid
    assert ("mlops-engineer-bridging-data-science-and-production--key-responsibilities"
            in ids["yardstick-mlops-vs-ml-platform-engineer"])
