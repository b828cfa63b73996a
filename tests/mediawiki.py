"""A real MediaWiki (Debian's package) for tests: installed on SQLite in a temporary folder with its own
maintenance/install.php, pages made with maintenance/edit.php, exported with maintenance/dumpBackup.php,
served on loopback by PHP's built-in server. `make mediawiki` installs the package."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

MEDIAWIKI = Path("/usr/share/mediawiki")  # Debian's mediawiki package
DOCS = Path("/usr/share/doc/mediawiki/docs")  # the export XSDs it ships
PHP = "php"

# php -S sends every request here: robots.txt from the test folder, MediaWiki's entry points with the
# test wiki's LocalSettings.php (Debian's own points at /var/lib/mediawiki), static files as they are.
ROUTER = r"""<?php
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if ($path === '/robots.txt') { header('Content-Type: text/plain'); readfile(__DIR__ . '/robots.txt'); return true; }
if ($path !== '/' && is_file($_SERVER['DOCUMENT_ROOT'] . $path) && substr($path, -4) !== '.php') { return false; }
define('MW_CONFIG_FILE', __DIR__ . '/LocalSettings.php');
$script = preg_match('#^/(load|api|rest|opensearch_desc)\.php#', $path, $m) ? $m[1] . '.php' : 'index.php';
$_SERVER['SCRIPT_NAME'] = '/' . $script;
$_SERVER['SCRIPT_FILENAME'] = $_SERVER['DOCUMENT_ROOT'] . '/' . $script;
chdir($_SERVER['DOCUMENT_ROOT']);
require $_SERVER['SCRIPT_FILENAME'];
"""

# The pages every real-wiki test starts from (tests/conftest.py `real_wiki`): headings, lists, a table, a
# template, a ref, a redirect.
PAGES = {
    "Template:Role box": '{| class="infobox"\n! Role !! {{{role}}}\n|}\n',
    "MLOps Engineer": """{{Role box|role=MLOps Engineer}}
The '''MLOps Engineer''' keeps machine learning models running in production.<ref>Internal role survey, 2025.</ref>

== Duties ==
The MLOps engineer owns the release pipeline and the [[Model registry|model registry]].
* Model versioning and rollback: keeps every released model version and rolls back a bad release.
* Monitoring: sets up drift monitoring and alerting for production models.
** Alerts go to the on-call rota.

== Tools ==
{| class="wikitable"
! Tool !! Used for
|-
| MLflow || the model registry
|-
| Prometheus || serving metrics
|}

=== Further reading ===
See [[Data Scientist|data scientists]] for the modelling side.
[[Category:Roles]]
""",
    "Data Scientist": """A '''data scientist''' explores data and builds models for the product teams.

== Duties ==
* Experiment design: the data scientist designs experiments and picks the metrics that decide them.
* Feature exploration: finds the signals a model can learn from, with the data engineers.

== Career ==
Most data scientists come from statistics, physics or economics, and many move into ML engineering later.
""",
    "MLOps": "#REDIRECT [[MLOps Engineer]]",
    "Main Page": """Welcome to the roles wiki: who does what in machine learning.

== Roles ==
* [[MLOps Engineer]]
* [[Data Scientist]]
* [[MLOps]] (a redirect)
""",
}

# What a public wiki's robots.txt forbids: special pages and every index.php?action=... URL.
ROBOTS = "User-agent: *\nDisallow: /index.php?\nDisallow: /index.php/Special:\n"


@dataclass
class Wiki:
    """A running test wiki."""

    folder: Path
    url: str  # http://127.0.0.1:PORT
    server: subprocess.Popen | None = None

    @property
    def conf(self) -> Path:
        return self.folder / "LocalSettings.php"

    def run(self, script: str, *args: str, stdin: str | None = None) -> str:
        """Run a maintenance script against this wiki; its output."""
        r = subprocess.run([PHP, str(MEDIAWIKI / "maintenance" / script), "--conf", str(self.conf), *args],
                           input=stdin, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"{script} {' '.join(args)} failed: {r.stdout}{r.stderr}")
        return r.stdout

    def edit(self, title: str, wikitext: str, summary: str = "test") -> None:
        """Create or replace a page (maintenance/edit.php)."""
        self.run("edit.php", "-u", "Admin", "-s", summary, title, stdin=wikitext)

    def run_jobs(self) -> None:
        """Run the job queue (maintenance/runJobs.php), as a live wiki does between requests: link updates
        touch pages, and would otherwise change their Last-Modified at the first views."""
        self.run("runJobs.php", "--quiet")

    def delete(self, title: str) -> None:
        """Delete a page (maintenance/deleteBatch.php)."""
        self.run("deleteBatch.php", "-u", "Admin", "-r", "test", stdin=f"{title}\n")

    def move(self, old: str, new: str) -> None:
        """Move a page, leaving a redirect behind (maintenance/moveBatch.php)."""
        self.run("moveBatch.php", "-u", "Admin", "-r", "test", stdin=f"{old}|{new}\n")

    def undelete(self, title: str) -> None:
        """Restore a deleted page (maintenance/undelete.php)."""
        self.run("undelete.php", "-u", "Admin", title)

    def bot_password(self, user: str, app: str, password: str, grants: str = "basic") -> str:
        """A bot password for user (maintenance/createBotPassword.php); its login name, user@app."""
        self.run("createBotPassword.php", "--appid", app, "--grants", grants, user, password)
        return f"{user}@{app}"

    def api(self, **params) -> dict:
        """One anonymous API query (JSON)."""
        import json
        from urllib.parse import urlencode

        query = urlencode({"action": "query", "format": "json", "formatversion": "2", **params})
        with urllib.request.urlopen(f"{self.url}/api.php?{query}", timeout=30) as r:
            return json.loads(r.read())

    def page_id(self, title: str) -> int | None:
        pages = self.api(titles=title)["query"]["pages"]
        return None if pages[0].get("missing") else pages[0]["pageid"]

    def export(self, dest: Path) -> Path:
        """The current revision of every page (maintenance/dumpBackup.php --current)."""
        dest.write_text(self.run("dumpBackup.php", "--current", "--quiet"), encoding="utf-8")
        return dest

    def page_url(self, title: str) -> str:
        return f"{self.url}/index.php/{title.replace(' ', '_')}"

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()


def install(folder: Path) -> Wiki:
    """Install MediaWiki on SQLite into folder with maintenance/install.php (port chosen now: it is in $wgServer)."""
    if not (MEDIAWIKI / "maintenance" / "install.php").is_file():
        raise RuntimeError(f"MediaWiki is not installed at {MEDIAWIKI}: run `make mediawiki` "
                           "(apt-get install mediawiki php-sqlite3)")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    wiki = Wiki(folder, f"http://127.0.0.1:{port}")
    (folder / "data").mkdir(parents=True)
    r = subprocess.run(
        [PHP, str(MEDIAWIKI / "maintenance" / "install.php"), "--dbtype", "sqlite", "--dbpath", str(folder / "data"),
         "--dbname", "testwiki", "--server", wiki.url, "--scriptpath", "", "--lang", "en",
         "--pass", "Rolesearch-test-1234", "--confpath", str(folder), "--skins", "Vector", "Roles Wiki", "Admin"],
        capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"install.php failed: {r.stdout}{r.stderr}")
    with wiki.conf.open("a", encoding="utf-8") as f:
        # Footnotes as MediaWiki sites have them; paths as index.php/Title without a web server's rewrite.
        f.write("\nwfLoadExtension( 'Cite' );\n$wgArticlePath = '/index.php/$1';\n$wgUsePathInfo = true;\n")
    (folder / "router.php").write_text(ROUTER, encoding="utf-8")
    (folder / "robots.txt").write_text(ROBOTS, encoding="utf-8")
    return wiki


def serve(wiki: Wiki) -> None:
    """Start PHP's built-in server on the wiki's loopback port and wait until it answers."""
    host_port = wiki.url.removeprefix("http://")
    # opcache re-reads a changed LocalSettings.php at once (not up to 2 s later): tests change it and expect that.
    wiki.server = subprocess.Popen([PHP, "-d", "opcache.revalidate_freq=0", "-S", host_port, "-t", str(MEDIAWIKI),
                                    str(wiki.folder / "router.php")],
                                   cwd=wiki.folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{wiki.url}/robots.txt", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if wiki.server.poll() is not None or time.monotonic() > deadline:
            wiki.stop()
            raise RuntimeError("php -S did not start")
        time.sleep(0.1)
