"""The RoleSearch MediaWiki extension in a real MediaWiki, with rolesearch beside it: what tests/test_wiki_extension.py
and bench/freshness.py share (the wiki's pages and settings, rolesearch served in a thread, changes made through
the wiki's web API)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx

from rolesearch.api.app import create_app
from rolesearch.ingest.pipeline import build_index
from rolesearch.settings import Settings
from tests import mediawiki
from tests.app_server import AppServer
from tests.conftest import ROOT

EXTENSION = ROOT / "integrations" / "mediawiki" / "RoleSearch"
SECRET = "wiki-to-rolesearch-secret"
QUESTION = "who owns model rollback?"
RESTRICTED_QUESTION = "who owns the quarterly emergency rollback drill of the payments pipeline?"
OPS_USER, OPS_PASSWORD = "Olga", "Olga-ops-password-1"
ADMIN_PASSWORD = "Rolesearch-test-1234"  # tests/mediawiki.py's install

# The pages this module adds to the wiki (beside tests/mediawiki.py's PAGES), and deletes when done. The question
# is in "Model rollback" word for word, so the wiki's own search finds a page for it too.
PAGES = {
    "Model rollback": """== Who owns it ==
* Who owns model rollback: the MLOps engineer keeps every released model version and rolls back a bad release.
* The data scientist is told when a model is rolled back, and checks the metrics again.
""",
    # Only the ops group may read the Ops namespace (LocalSettings below, as Lockdown would).
    "Ops:Rollback drill": """== Drill ==
The Data Engineer owns the emergency rollback drill: once a quarter the data engineer restores the payments
feature pipeline from yesterday's snapshot and times how long the rollback takes.
""",
}
OPS_NS = 3010  # not 3000: tests/test_mediawiki_sync.py gives that one to its Secret namespace

# Lockdown's rule, written as its hook would: reading the Ops namespace needs the ops group.
LOCAL_SETTINGS = """
$wgExtraNamespaces[%(ns)d] = 'Ops';
$wgExtraNamespaces[%(ns)d + 1] = 'Ops_talk';
$wgGroupPermissions['ops']['read'] = true;
$wgHooks['getUserPermissionsErrors'][] = static function ( $title, $user, $action, &$result ) {
	if ( $action === 'read' && $title->getNamespace() === %(ns)d && !in_array( 'ops',
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


@contextlib.contextmanager
def synced_server(wiki: mediawiki.Wiki, settings: Settings, embedder, push: bool) -> Iterator[Server]:
    """rolesearch built and served over the wiki. push: the extension posts each change to it; otherwise the
    wiki points at a port where nothing answers, so only the server's own --sync-every finds the changes.
    The wiki is pointed nowhere and the server stopped on the way out."""
    build(settings, embedder)
    server = Server(settings, embedder)
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    point_wiki_at(wiki, server.url if push else f"http://127.0.0.1:{dead.getsockname()[1]}")
    try:
        yield server
    finally:
        point_wiki_at(wiki, "")
        server.stop()
        dead.close()


def _children(pid: int) -> list[int]:
    """The processes whose parent is pid (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(stat.parent.name))
    return out


BOT_APP, BOT_PASSWORD_ENV = "rolesearch", "ROLESEARCH_TEST_WIKI_BOT_PASSWORD"
BOT_PASSWORD = "rolesearchbotpassword0123456789ab"  # createBotPassword.php wants 32 characters


def sources_file(wiki: mediawiki.Wiki, folder: Path) -> Path:
    """rolesearch's sources: the wiki's main and Ops namespaces through its Action API, read as the ops user's bot
    password (the Ops pages need the ops group); beside it, the access map giving Ops pages to that group."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sources.yaml"
    path.write_text(
        f"sources:\n  - kind: mediawiki\n    location: {wiki.url}/api.php\n    namespaces: [main, Ops]\n"
        f"    user: {OPS_USER}@{BOT_APP}\n    password_env: {BOT_PASSWORD_ENV}\n    rate: 0\n",
        encoding="utf-8",
    )
    (folder / "access.yaml").write_text('- namespace: "Ops"\n  groups: [ops]\n', encoding="utf-8")
    return path


class Server(AppServer):
    """rolesearch with these settings under a real uvicorn in a thread of this process; stop() ends it."""

    def __init__(self, settings: Settings, embedder):
        super().__init__(create_app(settings, embedder=embedder))


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
        access_map_file=sources.parent / "access.yaml",
        auth="proxy",
        trusted_proxies="127.0.0.1",
        proxy_secret=SECRET,
        access_log=False,
        reload_interval=0.5,
        **extra,
    )


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

    def undelete(self, title: str) -> None:
        self._post(action="undelete", title=title, reason="test", token=self.csrf)


def hit_url(server: Server, words: str) -> str | None:
    """The URL of the first hit holding these words (an anonymous search: public pages only), else None."""
    hits = httpx.get(server.url + "/search", params={"q": words, "k": 5}, timeout=30).json()["hits"]
    return next((h["url"].split("#")[0] for h in hits if words in h["text"]), None)


@contextlib.contextmanager
def with_extension(w: mediawiki.Wiki) -> Iterator[mediawiki.Wiki]:
    """The running wiki w with the extension loaded (pointed nowhere), the Ops namespace, the pages above and an ops
    user with a bot password; on exit its LocalSettings.php is put back and the pages are deleted."""
    original = w.conf.read_text(encoding="utf-8")
    point_wiki_at(w, "")
    with w.conf.open("a", encoding="utf-8") as f:
        f.write(LOCAL_SETTINGS % {"extension": EXTENSION, "ns": OPS_NS})
    try:
        for title, text in PAGES.items():
            w.edit(title, text, "create")
        if "missing" in w.api(list="users", ususers=OPS_USER)["query"]["users"][0]:
            w.run("createAndPromote.php", "--custom-groups=ops", OPS_USER, OPS_PASSWORD)
            w.bot_password(OPS_USER, BOT_APP, BOT_PASSWORD)
        os.environ[BOT_PASSWORD_ENV] = BOT_PASSWORD  # the sources file names the variable, as a deployment would
        w.run_jobs()
        yield w
    finally:
        point_wiki_at(w, "")
        delete_pages(w, PAGES)
        w.conf.write_text(original, encoding="utf-8")


def delete_pages(w: mediawiki.Wiki, titles) -> None:
    """Delete those of these pages that exist (maintenance/deleteBatch.php)."""
    for title in titles:
        if w.page_id(title) is not None:
            w.delete(title)


@contextlib.contextmanager
def running_wiki(folder: Path) -> Iterator[mediawiki.Wiki]:
    """A wiki of its own (bench/freshness.py): installed, filled with tests/mediawiki.py's pages, served with
    several PHP workers, the extension added; always stopped."""
    w = mediawiki.install(folder)
    for title, text in mediawiki.PAGES.items():
        w.edit(title, text, "create")
    w.run_jobs()
    old = os.environ.get("PHP_CLI_SERVER_WORKERS")
    os.environ["PHP_CLI_SERVER_WORKERS"] = "4"
    try:
        mediawiki.serve(w)
    finally:
        os.environ.pop("PHP_CLI_SERVER_WORKERS") if old is None else os.environ.update(PHP_CLI_SERVER_WORKERS=old)
    workers = _children(w.server.pid)
    try:
        with with_extension(w):
            yield w
    finally:
        w.stop()
        for pid in workers:  # php -S leaves its workers running when the parent is terminated
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
