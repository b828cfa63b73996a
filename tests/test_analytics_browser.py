"""In headless Chromium: the search page's layout and feedback buttons, a click and a thumbs-down found on the
analytics page, and both pages checked by axe-core (no serious or critical violations)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rolesearch.api.app import create_app
from rolesearch.settings import Settings
from tests.app_server import AppServer
from tests.conftest import CORPUS, DATA, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.browser]

AXE = DATA / "axe" / "axe.min.js"
ADMIN = "browser-admin-token"
QUESTION = "who owns model rollback?"


@pytest.fixture(scope="module")
def served(corpus_index, embedder, tmp_path_factory):
    """A real uvicorn with analytics on (its file outside the shared index) and an admin token."""
    db = tmp_path_factory.mktemp("analytics") / "analytics.sqlite3"
    app = create_app(Settings(index_dir=corpus_index, corpus_dir=CORPUS, access_log=False, admin_token=ADMIN,
                              analytics_file=db), embedder=embedder)
    srv = AppServer(app)
    yield srv.url, app, db
    srv.stop()


def _page(browser, width=1280, height=900, **kw):
    context = browser.new_context(viewport={"width": width, "height": height}, **kw)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page


def _serious(page) -> list[str]:
    """axe-core's serious and critical violations on the page as loaded now (axe shipped in tests/data/axe)."""
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                               ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))")
    bad = [f"{v['id']} ({v['impact']}): {v['nodes'][:3]}" for v in violations if v["impact"] in ("serious", "critical")]
    return bad + [v["id"] for v in violations if v["id"] == "page-has-heading-one"]  # the page's finding before


def _search(page, base: str) -> None:
    page.goto(base + "/?q=" + QUESTION.replace(" ", "+").replace("?", "%3F"))
    page.locator("#results .hit").first.wait_for()
    page.locator("#answer").wait_for(state="visible")
    page.locator('#facets button[data-facet="article"]').first.wait_for(state="attached")


def test_answer_and_first_hits_above_the_fold_facets_beside_them(served, browser):
    base = served[0]
    context, page = _page(browser)
    try:
        _search(page, base)
        assert page.locator("h1").count() == 1
        box = page.evaluate("(sel) => { const r = document.querySelector(sel).getBoundingClientRect();"
                            " return {top: r.top, bottom: r.bottom, left: r.left, right: r.right}; }", "#hit-1")
        answer = page.locator("#answer").bounding_box()
        assert answer["y"] >= 0 and box["bottom"] <= 900, (answer, box)  # the answer and the first hit, no scrolling
        facets, results = page.locator("#facets").bounding_box(), page.locator("#results").bounding_box()
        assert facets["x"] >= results["x"] + results["width"] and facets["y"] < 900  # a side column, in view
        assert not page.locator("#facets-toggle").is_visible()
        assert not _serious(page)
    finally:
        context.close()


def test_on_a_phone_the_facets_wait_under_a_toggle(served, browser):
    context, page = _page(browser, 375, 740, is_mobile=True, has_touch=True)
    try:
        _search(page, served[0])
        toggle = page.locator("#facets-toggle")
        assert toggle.is_visible() and toggle.get_attribute("aria-expanded") == "false"
        assert not page.locator("#facets").is_visible()
        toggle.click()
        assert toggle.get_attribute("aria-expanded") == "true" and page.locator("#facets").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        context.close()


def _count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def test_a_click_and_a_thumbs_down_show_on_the_analytics_page(served, browser):
    base, app, db = served
    context, page = _page(browser)
    try:
        _search(page, base)
        # By keyboard, found by its label: the answer's thumbs down, then a comment.
        down = page.get_by_role("button", name="This answer is wrong")
        down.focus()
        page.keyboard.press("Enter")
        page.wait_for_function("document.getElementById('feedback-status').textContent.includes('recorded')")
        assert down.get_attribute("aria-pressed") == "true"
        page.fill("#comment-text", "Here the platform team rolls back")
        page.keyboard.press("Enter")
        page.wait_for_function("document.getElementById('feedback-status').textContent.includes('comment')")
        assert page.get_by_role("button", name="Result 1 is not helpful").is_visible()
        page.locator("#hit-1 .hit-link").click()  # reported by sendBeacon, the link opens at once
        page.wait_for_url("**/articles/**")
    finally:
        context.close()

    def written() -> bool:
        app.state.recording.recorder.flush()
        return _count(db, "SELECT COUNT(*) FROM clicks") >= 1 and _count(db, "SELECT COUNT(*) FROM feedback") >= 2

    wait_for(written, 10, "the click and the judgement in the analytics file")
    context, page = _page(browser, extra_http_headers={"Authorization": f"Bearer {ADMIN}"})
    try:
        page.goto(base + "/admin/analytics?since=1d")
        assert page.locator("h1").inner_text() == "Search analytics"
        assert QUESTION in page.locator("#top-queries").inner_text()
        assert page.locator("#total-ctr").inner_text() != "0.0%" and page.locator("#judgements").inner_text() == "0 / 1"
        wrong = page.locator("#wrong li.judged").first
        assert QUESTION in wrong.inner_text() and "Here the platform team rolls back" in wrong.inner_text()
        assert "the answer" in wrong.inner_text() and wrong.locator(".evidence a").count() >= 1
        assert page.locator("svg[role=img]").count() == 3
        days = page.locator("#days tbody tr").first.inner_text()
        assert days.split("\t")[1].strip() != "0", days
        assert not _serious(page)
    finally:
        context.close()
