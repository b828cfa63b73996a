"""End to end in headless Chromium: the search page, served by a real uvicorn, over the real corpus."""

from __future__ import annotations

import pytest

from rolesearch.api.app import create_app
from rolesearch.settings import Settings
from tests.app_server import AppServer
from tests.conftest import CORPUS

pytestmark = [pytest.mark.slow, pytest.mark.browser]

QUESTION = "who owns model rollback?"
ROLLBACK_TEXT = "Model versioning and rollback"
ROLLBACK_ARTICLE = "/articles/tenyks-ml-vs-mlops-engineer"


@pytest.fixture(scope="module")
def server(corpus_index, embedder):
    """A real uvicorn serving the app on a free loopback port, in a thread of this process."""
    settings = Settings(index_dir=corpus_index, corpus_dir=CORPUS, access_log=False)
    srv = AppServer(create_app(settings, embedder=embedder))
    yield srv.url
    srv.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


def _in_viewport(page, text: str) -> bool:
    return page.evaluate(
        """(text) => {
            const el = [...document.querySelectorAll('.body p')].find(p => p.textContent.includes(text));
            if (!el) return false;
            const r = el.getBoundingClientRect();
            return r.bottom > 0 && r.top < window.innerHeight;
        }""",
        text,
    )


def test_ask_see_the_rollback_passage_follow_it_to_the_article_section(server, page):
    page.goto(server + "/")
    # By keyboard: the box has focus on load, "/" brings it back from anywhere, Enter searches.
    assert page.evaluate("document.activeElement.id") == "q"
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q" and page.input_value("#q") == ""
    page.keyboard.type(QUESTION)
    page.keyboard.press("Enter")
    hits = page.locator("#results .hit")
    hits.first.wait_for()
    assert page.url == server + "/?q=who%20owns%20model%20rollback%3F"
    rollback = hits.filter(has_text=ROLLBACK_TEXT)
    assert rollback.count() >= 1
    top3 = [hits.nth(i).inner_text() for i in range(min(3, hits.count()))]
    assert any(ROLLBACK_TEXT in t for t in top3), top3
    assert rollback.first.locator(".hit-link").inner_text() == "ML vs MLOps Engineer — Key Differences & Similarities"
    assert "MLOps Engineer" in rollback.first.locator(".section").inner_text()
    # The answer card names the role: /ask answers on this server, so the card is always checked.
    page.locator("#answer").wait_for(state="visible")
    assert "MLOps Engineer" in page.locator("#answer-roles").inner_text()
    # Arrow keys reach the links.
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.tagName") == "A"

    rollback.first.locator(".hit-link").click()
    page.wait_for_url(f"**{ROLLBACK_ARTICLE}#3-differences--mlops-engineer*")
    assert page.evaluate("location.pathname") == ROLLBACK_ARTICLE
    assert page.evaluate("location.hash") == "#3-differences--mlops-engineer"
    assert page.locator('[id="3-differences--mlops-engineer"]').inner_text().endswith("MLOps Engineer")
    # The text fragment scrolled the sentence itself into view, far down the article.
    page.wait_for_function("window.scrollY > 500")
    assert _in_viewport(page, "5. " + ROLLBACK_TEXT)


def test_a_linked_search_runs_on_load_and_reads_on_a_phone(server, browser):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(server + "/?q=" + "who+sets+up+drift+monitoring%3F")
        page.locator("#results .hit").first.wait_for(timeout=15_000)
        assert page.input_value("#q") == "who sets up drift monitoring?"
        assert page.locator("#results .hit").count() == 5
        # Nothing wider than the screen: no sideways scrolling on a phone.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        font = page.evaluate("parseFloat(getComputedStyle(document.querySelector('.snippet')).fontSize)")
        assert font >= 16
    finally:
        context.close()


def test_results_are_text_not_markup(server, page):
    page.goto(server + "/?q=" + "%3Cimg%20src%3Dx%20onerror%3D%22window.__xss%3D1%22%3E%20rollback")
    page.locator("#results .hit").first.wait_for()
    assert page.evaluate("window.__xss") is None
    assert page.title() == '<img src=x onerror="window.__xss=1"> rollback · rolesearch'


def test_a_bad_query_shows_the_message(server, page):
    page.goto(server + "/")
    page.fill("#q", "x" * 1001)  # the box caps at 1,000; the API says why when it is bypassed
    assert len(page.input_value("#q")) == 1000
    page.goto(server + "/?q=" + "x" * 1001)
    page.wait_for_function("document.getElementById('status').textContent.includes('1000')")
    assert page.locator("#results .hit").count() == 0


def _hit_titles(page) -> list[str]:
    return page.eval_on_selector_all("#results .hit-link", "links => links.map(a => a.textContent)")


def test_facets_count_the_top_hits_and_filter_the_search(server, page):
    with page.expect_response(lambda r: "/ask?" in r.url) as first:
        page.goto(server + "/?q=" + "who+owns+model+rollback%3F")
    assert first.value.status == 200
    page.locator("#results .hit").first.wait_for()
    articles = page.locator('#facets button[data-facet="article"]')
    articles.first.wait_for()
    assert articles.count() >= 2  # the top hits come from several articles
    counts = [int(articles.nth(i).locator(".count").inner_text()) for i in range(articles.count())]
    assert counts == sorted(counts, reverse=True) and sum(counts) >= page.locator("#results .hit").count()
    # Choosing an article narrows the search to it: the request says so and succeeds, the URL says so, and
    # every hit (at least as many as the facet counted) is from it; hits from other articles are gone.
    chosen = articles.nth(1)
    value, title = chosen.get_attribute("data-value"), chosen.inner_text().rsplit(" ", 1)[0]
    before = _hit_titles(page)
    assert any(t != title for t in before) and counts[1] >= 1
    with page.expect_response(lambda r: "/ask?" in r.url and f"article={value}" in r.url) as filtered:
        chosen.click()
    assert filtered.value.status == 200, filtered.value.text()
    hits = filtered.value.json()["hits"]
    assert len(hits) >= counts[1] and {h["article_id"] for h in hits} == {value}, hits
    page.wait_for_url(f"**article={value}*")
    page.wait_for_function(
        "(t) => { const links = [...document.querySelectorAll('#results .hit-link')];"
        " return links.length > 0 && links.every(a => a.textContent === t); }", arg=title)
    after = _hit_titles(page)
    assert len(after) >= counts[1] and set(after) == {title}, after
    assert page.locator("#status").inner_text().startswith(f"{len(after)} passages")
    assert page.locator('#facets button[aria-pressed="true"]').get_attribute("data-value") == value
    # And back: the filter is dropped with a second click, and the other articles' hits return.
    page.locator('#facets button[aria-pressed="true"]').click()
    page.wait_for_function("!location.search.includes('article=')")
    page.wait_for_function(
        "(t) => [...document.querySelectorAll('#results .hit-link')].some(a => a.textContent !== t)", arg=title)
