"""The RoleSearch MediaWiki extension in a real MediaWiki (Debian's 1.39), seen in headless Chromium: the answer
block on Special:Search, the wiki's own results when rolesearch is down or slow, a restricted namespace by the
wiki user's groups; and pages the wiki changes reaching /search by push (POST /admin/notify) or by the
periodic sync, with no command run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from rolesearch.api.app import create_app
from rolesearch.ingest.pipeline import build_index
from rolesearch.settings import Settings
from tests import mediawiki
from tests.conftest import ROOT, wait_for
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.wiki, pytest.mark.browser, pytest.mark.slow]

EXTENSION = ROOT / "integrations" / "mediawiki" / "RoleSearch"
SECRET = "wiki-to-rolesearch-secret"
QUESTION = "who owns model rollback?"
RESTRICTED_QUESTION = "who owns the emergency rollback drill?"
OPS_USER, OPS_PASSWORD = "Olga", "Olga-ops-password-1"
ADMIN_PASSWORD = "Rolesearch-test-1234"  # tests/mediawiki.py's install

PAGES = {
    "MLOps Engineer": """The '''MLOps Engineer''' keeps machine learning models running in production.

== Duties ==
The MLOps engineer owns the release pipeline and the model registry.
* Who owns model rollback: the MLOps engineer keeps every released model version and rolls back a bad release.
* Monitoring: the MLOps engineer sets up drift monitoring and alerting for production models.
""",
    "Data Scientist": """A '''data scientist''' explores data and builds models for the product teams.

== Duties ==
* Experiment design: the data scientist designs experiments and picks the metrics that decide them.
* Feature exploration: the data scientist finds the signals a model can learn from.
""",
    "Main Page": """Welcome to the roles wiki: who does what in machine learning.

== Roles ==
* [[MLOps Engineer]]
* [[Data Scientist]]
""",
    # Only the ops group may read the Ops namespace (LocalSettings below, as Lockdown would).
    "Ops:Rollback drill": """== Drill ==
The Data Engineer owns the emergency rollback drill: once a quarter the data engineer restores the payments
feature pipeline from yesterday's snapshot and times how long the rollback takes.
""",
}

# Lockdown's rule, written as its hook would: reading the Ops namespace (3000) needs the ops group.
LOCAL_SETTINGS = """
$wgExtraNamespaces[3000] = 'Ops';
$wgExtraNamespaces[3001] = 'Ops_talk';
$wgGroupPermissions['ops']['read'] = true;
$wgHooks['getUserPermissionsErrors'][] = static function ( $title, $user, $action, &$result ) {
	if ( $action === 'read' && $title->getNamespace() === 3000 && !in_array( 'ops',
		MediaWiki\\MediaWikiServices::getInstance()->getUserGroupManager()->getUserEffectiveGroups( $user ) ) ) {
		$result = [ 'badaccess-group0' ];
		return false;
	}
	return true;
};
$wgJobRunRate = 10;  // the notify job runs after the edit's response, not at some later request
wfLoadExtension( 'RoleSearch', '%(extension)s/extension.json' );
$wgDebugLogGroups['RoleSearch'] = __DIR__ . '/rolesearch.log';
// The three settings, from a file the tests rewrite (JSON: PHP's opcache would keep a rewritten .php for seconds).
$rs = json_decode( file_get_contents( __DIR__ . '/rolesearch-settings.json' ), true );
$wgRoleSearchUrl = $rs['url'];
$wgRoleSearchTimeout = $rs['timeout'];
$wgRoleSearchSecret = $rs['secret'];
"""


def point_wiki_at(wiki: mediawiki.Wiki, url: str, timeout: float = 1.5, secret: str = SECRET) -> None:
    """The extension's three settings, as an admin writes them into LocalSettings.php (read at every request)."""
    (wiki.folder / "rolesearch-settings.json").write_text(
        json.dumps({"url": url, "timeout": timeout, "secret": secret}), encoding="utf-8"
    )


@pytest.fixture(scope="module")
def ext_wiki(tmp_path_factory):
    """A MediaWiki with the extension loaded, the pages above and an ops user; served, always stopped."""
    w = mediawiki.install(tmp_path_factory.mktemp("mediawiki-ext"))
    with w.conf.open("a", encoding="utf-8") as f:
        f.write(LOCAL_SETTINGS % {"extension": EXTENSION})
    point_wiki_at(w, "")
    for title, text in PAGES.items():
        w.edit(title, text, "create")
    w.run("createAndPromote.php", "--custom-groups=ops", OPS_USER, OPS_PASSWORD)
    w.run_jobs()
    old = os.environ.get("PHP_CLI_SERVER_WORKERS")
    # Several PHP workers: the wiki answers the crawl of a sync while one of its own requests is still running.
    os.environ["PHP_CLI_SERVER_WORKERS"] = "4"
    try:
        mediawiki.serve(w)
    finally:
        os.environ.pop("PHP_CLI_SERVER_WORKERS") if old is None else os.environ.update(PHP_CLI_SERVER_WORKERS=old)
    workers = _children(w.server.pid)
    try:
        yield w
    finally:
        w.stop()
        for pid in workers:  # php -S leaves its workers running when the parent is terminated
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def _children(pid: int) -> list[int]:
    """The processes whose parent is pid (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(stat.parent.name))
    return out


def sources_file(wiki: mediawiki.Wiki, folder: Path) -> Path:
    """rolesearch's sources: the wiki read as its readers see it (a crawl from the Main Page, the anonymous
    view) and the restricted Ops page, with its URL in the wiki and the group that may read it."""
    ops = folder / "ops"
    ops.mkdir(parents=True)
    title = "Ops:Rollback drill"
    (ops / "rollback-drill.md").write_text(
        f"---\ntitle: {title}\nurl: {wiki.page_url(title)}\naccess: [ops]\n---\n"
        + PAGES[title].replace("== Drill ==", "## Drill"),
        encoding="utf-8",
    )
    path = folder / "sources.yaml"
    path.write_text(
        f"sources:\n  - kind: crawl\n    location: {wiki.page_url('Main Page')}\n    rate: 0\n"
        f"  - kind: folder\n    location: {ops}\n",
        encoding="utf-8",
    )
    return path


class Server:
    """rolesearch under a real uvicorn in a thread of this process, on a free loopback port; stop() ends it."""

    def __init__(self, settings: Settings, embedder):
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(
            uvicorn.Config(create_app(settings, embedder=embedder), log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started or not self.thread.is_alive(), 60, "uvicorn to start")
        assert self.server.started, "uvicorn did not start"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


def build(settings: Settings, embedder) -> None:
    """The first build, in a thread of its own: the crawl runs an asyncio loop, and Playwright's sync API
    keeps one running in this thread."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(
            build_index, None, settings.index_dir, embedder, sources=settings.sources(), access=settings.access_map()
        ).result()


def serve_settings(index: Path, sources: Path, **extra) -> Settings:
    return Settings(
        index_dir=index,
        sources_file=sources,
        auth="proxy",
        trusted_proxies="127.0.0.1",
        proxy_secret=SECRET,
        access_log=False,
        reload_interval=0.5,
        **extra,
    )


@pytest.fixture(scope="module")
def rolesearch(ext_wiki, embedder, tmp_path_factory):
    """rolesearch over the wiki, in proxy mode behind the extension's secret; the wiki pointed at it."""
    folder = tmp_path_factory.mktemp("rolesearch-ext")
    sources = sources_file(ext_wiki, folder)
    index = folder / "index"
    s = serve_settings(index, sources)
    build(s, embedder)
    server = Server(s, embedder)
    point_wiki_at(ext_wiki, server.url)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    yield pg
    context.close()


def search_page(wiki: mediawiki.Wiki, question: str) -> str:
    return f"{wiki.url}/index.php?title=Special:Search&search={quote(question)}&fulltext=1"


def log_in(page, wiki: mediawiki.Wiki, user: str, password: str) -> None:
    page.goto(f"{wiki.url}/index.php?title=Special:UserLogin")
    page.fill("#wpName1", user)
    page.fill("#wpPassword1", password)
    page.click("#wpLoginAttempt")
    page.wait_for_selector("#pt-logout, #pt-userpage")


def test_special_search_shows_the_answer_linking_to_the_wiki_page(ext_wiki, rolesearch, page):
    page.goto(search_page(ext_wiki, QUESTION))
    block = page.locator("#mw-rolesearch")
    block.wait_for()
    assert "Answer from RoleSearch" in block.locator(".mw-rolesearch-label").first.inner_text()
    assert "MLOps Engineer" in block.locator(".mw-rolesearch-role").inner_text()
    evidence = block.locator("a.mw-rolesearch-evidence")
    assert "rolls back a bad release" in evidence.inner_text()
    hits = block.locator("li.mw-rolesearch-hit")
    assert 1 <= hits.count() <= 3
    first = hits.first.locator("a.mw-rolesearch-hit-link")
    href = first.get_attribute("href")
    assert href.startswith(ext_wiki.page_url("MLOps Engineer") + "#:~:text="), href
    assert "from the wiki page MLOps Engineer" in hits.first.locator(".mw-rolesearch-source").inner_text()
    # The block sits above MediaWiki's own results, which are still there.
    page.locator(".mw-search-results").wait_for()
    assert page.evaluate("""() => {
        const block = document.getElementById('mw-rolesearch'), own = document.querySelector('.mw-search-results');
        return !!(block.compareDocumentPosition(own) & Node.DOCUMENT_POSITION_FOLLOWING);
    }""")
    # The style module is loaded (the block has its left border).
    assert page.evaluate("getComputedStyle(document.getElementById('mw-rolesearch')).borderLeftWidth") == "4px"
    page.screenshot(path=str(ROOT / "docs" / "wiki-search.png"), full_page=False)
    first.click()
    page.wait_for_url(ext_wiki.page_url("MLOps Engineer") + "**")
    assert page.locator("#firstHeading").inner_text() == "MLOps Engineer"


@pytest.mark.parametrize("down", ["stopped", "slow"])
def test_without_rolesearch_the_wiki_still_shows_its_own_results(ext_wiki, rolesearch, page, down):
    with socket.socket() as listener:
        # stopped: nothing listens on the port. slow: a peer that accepts and never answers (the 1.5 s timeout).
        listener.bind(("127.0.0.1", 0))
        if down == "slow":
            listener.listen(8)
        point_wiki_at(ext_wiki, f"http://127.0.0.1:{listener.getsockname()[1]}")
        try:
            t0 = time.monotonic()
            page.goto(search_page(ext_wiki, QUESTION))
            took = time.monotonic() - t0
            results = page.locator(".mw-search-results .mw-search-result-heading")
            results.first.wait_for()
            assert "MLOps Engineer" in results.all_inner_texts()
            assert page.locator("#mw-rolesearch").count() == 0
            assert page.locator(".error, .errorbox").count() == 0
            if down == "slow":
                assert 1.4 < took < 10, took
        finally:
            point_wiki_at(ext_wiki, rolesearch.url)
    assert "RoleSearch" in (ext_wiki.folder / "rolesearch.log").read_text()  # a debug line only


def test_a_restricted_namespace_answers_its_group_only(ext_wiki, rolesearch, page):
    page.goto(search_page(ext_wiki, RESTRICTED_QUESTION))
    page.locator(".mw-search-results, .mw-search-nonefound").first.wait_for()
    anonymous = page.locator("#mw-rolesearch").inner_text() if page.locator("#mw-rolesearch").count() else ""
    assert "emergency rollback drill" not in anonymous and "Ops:Rollback drill" not in anonymous
    assert page.locator('#mw-rolesearch a[href*="Ops:Rollback_drill"]').count() == 0

    log_in(page, ext_wiki, OPS_USER, OPS_PASSWORD)
    page.goto(search_page(ext_wiki, RESTRICTED_QUESTION))
    block = page.locator("#mw-rolesearch")
    block.wait_for()
    assert "Data Engineer" in block.locator(".mw-rolesearch-role").inner_text()
    assert block.locator('a.mw-rolesearch-hit-link[href*="Ops:Rollback_drill"]').count() == 1
    assert "from the wiki page Ops:Rollback drill" in block.inner_text()


def test_the_wiki_drops_hits_its_reader_cannot_read(ext_wiki, rolesearch, embedder, tmp_path, page):
    """Defence in depth: rolesearch with auth off returns the Ops page to anyone; the wiki still hides it."""
    server = Server(Settings(index_dir=rolesearch_index(rolesearch), access_log=False, reload_interval=0), embedder)
    point_wiki_at(ext_wiki, server.url)
    try:
        assert any(
            "Ops:Rollback_drill" in h["url"]
            for h in httpx.get(server.url + "/ask", params={"q": RESTRICTED_QUESTION}).json()["hits"]
        )
        page.goto(search_page(ext_wiki, RESTRICTED_QUESTION))
        block = page.locator("#mw-rolesearch")
        block.wait_for()
        assert block.locator('a[href*="Ops:Rollback_drill"]').count() == 0
        assert "emergency rollback drill" not in block.inner_text()
        assert block.locator("li.mw-rolesearch-hit").count() == 3  # filled from the extra hits asked for
    finally:
        point_wiki_at(ext_wiki, rolesearch.url)
        server.stop()


def rolesearch_index(server: Server) -> Path:
    return server.server.config.app.state.service.settings.index_dir


class WikiEditor:
    """Changes made the way a wiki user makes them, through the wiki's web API (api.php) as Admin: no
    maintenance script, no command; the wiki runs its own jobs after each request."""

    def __init__(self, wiki: mediawiki.Wiki):
        self.api = f"{wiki.url}/api.php"
        self.http = httpx.Client(timeout=60)
        token = self._get(meta="tokens", type="login")["query"]["tokens"]["logintoken"]
        r = self._post(
            action="clientlogin", username="Admin", password=ADMIN_PASSWORD, logintoken=token, loginreturnurl=wiki.url
        )
        assert r["clientlogin"]["status"] == "PASS", r
        self.csrf = self._get(meta="tokens")["query"]["tokens"]["csrftoken"]

    def _get(self, **params) -> dict:
        return self.http.get(self.api, params={"action": "query", "format": "json", **params}).json()

    def _post(self, **data) -> dict:
        body = self.http.post(self.api, data={"format": "json", **data}).json()
        assert "error" not in body, body
        return body

    def edit(self, title: str, text: str) -> None:
        self._post(action="edit", title=title, text=text, summary="test", token=self.csrf)

    def append(self, title: str, text: str) -> None:
        self._post(action="edit", title=title, appendtext=text, summary="test", token=self.csrf)

    def move(self, old: str, new: str) -> None:
        self._post(action="move", **{"from": old}, to=new, reason="test", token=self.csrf)

    def delete(self, title: str) -> None:
        self._post(action="delete", title=title, reason="test", token=self.csrf)


def hit_url(server: Server, words: str) -> str | None:
    """The URL of the first hit holding these words (an anonymous search: public pages only), else None."""
    hits = httpx.get(server.url + "/search", params={"q": words, "k": 5}, timeout=30).json()["hits"]
    return next((h["url"].split("#")[0] for h in hits if words in h["text"]), None)


@pytest.mark.parametrize("path", ["push", "poll"])
def test_wiki_changes_reach_search_with_no_command_run(ext_wiki, embedder, tmp_path, path):
    """push: the extension's job posts each change to /admin/notify (no periodic sync). poll: the wiki does not
    push (its rolesearch URL answers nothing) and `--sync-every 1` finds the changes."""
    name = path.capitalize()
    first, second = f"{name} runbook", f"{name} handbook"
    sources = sources_file(ext_wiki, tmp_path)
    s = serve_settings(tmp_path / "index", sources, sync_interval=0 if path == "push" else 1)
    build(s, embedder)
    server = Server(s, embedder)
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    point_wiki_at(ext_wiki, server.url if path == "push" else f"http://127.0.0.1:{dead.getsockname()[1]}")
    editor = WikiEditor(ext_wiki)
    timeout = 60
    try:
        # New pages, linked from the Main Page (the crawl reads the wiki as a reader does, by its links).
        editor.edit(first, f"The {path} quartermaster owns the zebra inventory and counts it every week.")
        editor.edit(second, f"The {path} lighthouse keeper owns the harbour lamp and trims its wick nightly.")
        editor.append("Main Page", f"\n* [[{first}]]\n* [[{second}]]\n")
        wait_for(
            lambda: hit_url(server, f"{path} quartermaster owns the zebra inventory") == ext_wiki.page_url(first),
            timeout,
            "new page",
        )
        # An edit.
        editor.edit(first, f"The {path} quartermaster owns the giraffe ledger and audits it every month.")
        wait_for(
            lambda: hit_url(server, f"{path} quartermaster owns the giraffe ledger") == ext_wiki.page_url(first),
            timeout,
            "the edit",
        )
        assert hit_url(server, f"{path} quartermaster owns the zebra inventory") is None
        # A move: the page is found under its new title.
        moved = f"{name} lamp manual"
        editor.move(second, moved)
        wait_for(
            lambda: hit_url(server, f"{path} lighthouse keeper owns the harbour lamp") == ext_wiki.page_url(moved),
            timeout,
            "the move",
        )
        # A delete: gone from search.
        editor.delete(first)
        wait_for(
            lambda: hit_url(server, f"{path} quartermaster owns the giraffe ledger") is None, timeout, "the delete"
        )
        health = httpx.get(server.url + "/healthz").json()["sync"]
        assert health["error"] is None and health["last_success_at"] is not None
        assert health["trigger"] == ("notify" if path == "push" else "interval")
    finally:
        point_wiki_at(ext_wiki, "")
        server.stop()
        dead.close()
