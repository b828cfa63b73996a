"""The mediawiki source over a live wiki's Action API (`mediawiki:https://wiki.example.org/w/api.php`).

First sync: every page of the chosen namespaces with its latest revision (generator=allpages,
prop=revisions|info, continuation followed). Later syncs ask what changed since the last one
(list=recentchanges for edits and new pages, list=logevents for deletions, moves and restores, in one
request; a second one checks that recentchanges still reaches back to where the last sync stopped) and
fetch those pages' current state; every other page is yielded Unchanged, so nothing else is parsed,
chunked or embedded. When recentchanges was pruned past the stored cursor, or every `full_every`
seconds, the sync reconciles against the full page list instead (ids, titles and revisions only).

The cursor and the pages (ingest.sources.mediawiki_state) move forward only when the pipeline
publishes the version built from them (`published`); a failed sync leaves them, so the next one
starts from the last published state.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from bs4 import BeautifulSoup

from rolesearch.ingest.articles import MAX_ARTICLE_BYTES, ArticleError, id_slug
from rolesearch.ingest.html import html_to_text
from rolesearch.ingest.sources.base import Item, Skipped, SourceError, Unchanged, page_article
from rolesearch.ingest.sources.mediawiki_client import WikiApi
from rolesearch.ingest.sources.mediawiki_state import Cursor, PageRecord, SyncState
from rolesearch.ingest.sources.wikitext import wikitext_to_text

log = logging.getLogger(__name__)

RENDERS = ("wikitext", "parse")
BATCH = 50  # pages per request with their content (MediaWiki's limit for clients without apihighlimits)
MAIN = "Main"  # the name given to namespace 0, whose own name is empty
# Log events that can add, remove or rename a page: their pages' current state is fetched.
_PAGE_LOGS = {"delete", "move", "import", "merge", "suppress"}
# Elements of rendered HTML that are not content (as the crawl drops them): [edit] links, footnotes, TOC.
_DROP_CLASSES = ("mw-editsection", "mw-jump-link", "reference", "toc", "catlinks", "printfooter", "navbox")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


@dataclass
class MediaWikiApiSource:
    """The pages of a live wiki, read through its api.php and kept in sync through its change feeds."""

    location: str  # https://wiki.example.org/w/api.php
    state_dir: Path | None = None  # where mediawiki.sqlite3 keeps the sync state; None: in this object only
    namespaces: list | tuple | int | str = (0,)  # numbers or names ("main", "Help", 3000)
    user: str | None = None  # a bot password's login name (User@botname)
    password_env: str | None = None  # the environment variable holding its password
    rate: float = 5.0  # requests per second, at most (one at a time)
    timeout: float = 10.0  # seconds per request
    contact: str | None = None  # in the User-Agent: how the wiki's admins reach you (e-mail, URL)
    render: str = "wikitext"  # "parse": each changed page's HTML from action=parse (templates expanded)
    full_every: float | str = 86400  # reconcile against the full page list this often (seconds, or "12h", "1d")
    retries: int = 4
    backoff: float = 1.0  # seconds before the first retry; doubled each time
    maxlag: int = 5
    max_bytes: int = MAX_ARTICLE_BYTES  # a page over this is skipped (the size limit of every source)
    kind: str = "mediawiki"
    stats: dict = field(default_factory=dict)  # of the last sync: mode, requests, fetched

    def __post_init__(self):
        parts = urlsplit(self.location)
        if parts.scheme not in ("http", "https") or not parts.netloc or not parts.path.endswith("api.php"):
            raise SourceError(f"MediaWiki API location {self.location!r} is not an http(s) URL ending in api.php")
        if self.render not in RENDERS:
            raise SourceError(f"MediaWiki source {self.location}: render {self.render!r} is not one of "
                              f"{', '.join(RENDERS)}")
        if bool(self.user) != bool(self.password_env):
            raise SourceError(f"MediaWiki source {self.location}: give both `user` and `password_env` (the name "
                              "of the environment variable holding the bot password), or neither")
        if isinstance(self.namespaces, (int, str)):
            self.namespaces = [self.namespaces]
        if not self.namespaces:
            raise SourceError(f"MediaWiki source {self.location}: namespaces is empty")
        self.full_every = _seconds(self.full_every, self.location)
        self._memory: SyncState | None = None
        self._pending: tuple[Cursor, dict[int, PageRecord]] | None = None
        self._notified: frozenset[int] = frozenset()

    @property
    def key(self) -> str:
        """What the sync state is stored under: another URL, namespace set or render mode starts afresh."""
        return f"{self.location}|ns={','.join(sorted(map(str, self.namespaces)))}|render={self.render}"

    def read(self) -> Iterator[Item]:
        """Every page of the chosen namespaces, fetched whole (the first sync, or a full rebuild)."""
        return self._sync(None)

    def read_changed(self, known: Mapping[str, str]) -> Iterator[Item]:
        """What changed since the last published sync fetched anew, every other page Unchanged (known: the
        published articles' id -> content hash)."""
        return self._sync(known)

    def notify(self, page_ids) -> None:
        """Page ids the wiki reported changed (a push): the next sync fetches their current state too."""
        self._notified |= frozenset(int(p) for p in page_ids)

    def published(self) -> None:
        """The version built from the last sync is published: its cursor and pages become the stored state."""
        if self._pending is None:
            return
        cursor, pages = self._pending
        with self._state() as state:
            state.save(self.key, cursor, pages)
        self._pending, self._notified = None, frozenset()

    def _state(self):
        if self.state_dir is None:
            if self._memory is None:
                self._memory = SyncState(None)
            return _Borrowed(self._memory)
        return _Owned(SyncState(Path(self.state_dir) / "mediawiki.sqlite3"))

    def _sync(self, known: Mapping[str, str] | None) -> Iterator[Item]:
        self._pending = None
        with self._state() as state:
            stored = state.load(self.key) if known is not None else None
        notified = self._notified  # kept until a version is published: a failed sync asks for them again
        api = WikiApi(self.location, contact=self.contact, rate=self.rate, timeout=self.timeout,
                      retries=self.retries, backoff=self.backoff, maxlag=self.maxlag)
        self.stats = {"mode": "full", "requests": 0, "fetched": 0}
        try:
            if self.user:
                api.login(self.user, self.password_env)
            run = _Sync(self, api, known or {})
            items, cursor, pages = run.changes(stored, notified) if stored is not None else run.full()
        finally:
            self.stats["requests"] = api.requests
            api.close()
        self._pending = (cursor, pages)
        yield from items


class _Sync:
    """One sync of a MediaWikiApiSource."""

    def __init__(self, source: MediaWikiApiSource, api: WikiApi, known: Mapping[str, str]):
        self.source, self.api, self.known = source, api, known
        self.host = urlsplit(source.location).netloc
        self.names: dict[str, str] = {}
        self.ns: list[int] = []

    # -- the three kinds of sync -------------------------------------------------------------------------

    def full(self) -> tuple[list[Item], Cursor, dict[int, PageRecord]]:
        """Every page, with its content."""
        cursor = self._head()
        pages: dict[int, PageRecord] = {}
        items: list[Item] = []
        for ns in self.ns:
            params = {"generator": "allpages", "gapnamespace": ns, "gapfilterredir": "nonredirects",
                      "gaplimit": BATCH if self.source.render == "wikitext" else "max"} | self._props()
            for batch in self.api.query_pages(params):
                self._apply(batch, pages, items, {})
        cursor.last_full = time.time()
        return items, cursor, pages

    def changes(self, stored: tuple[Cursor, dict[int, PageRecord]], notified: frozenset[int]
                ) -> tuple[list[Item], Cursor, dict[int, PageRecord]]:
        """What changed since the stored cursor, fetched; or a reconciliation when the feed cannot say."""
        cursor, old = stored
        cursor = replace(cursor, syncs=cursor.syncs + 1)
        self.names = dict(cursor.namespaces)
        self.ns = self._namespaces()
        if time.time() - cursor.last_full >= self.source.full_every or self._pruned(cursor):
            return self._reconcile(old, notified)
        self.source.stats["mode"] = "changes"
        ids, titles = set(notified), set()
        new_cursor = replace(cursor)
        feeds = {"list": "recentchanges|logevents",
                 "rcstart": cursor.rc_timestamp, "rcdir": "newer", "rcnamespace": self.ns, "rctype": "edit|new",
                 "rcprop": "ids|title|timestamp", "rclimit": "max",
                 "lestart": cursor.log_timestamp or cursor.rc_timestamp, "ledir": "newer",
                 "leprop": "ids|title|type|timestamp|details", "lelimit": "max"}
        for data in self.api.query(feeds):
            q = data.get("query") or {}
            for rc in q.get("recentchanges") or []:
                if (rc.get("timestamp", ""), rc.get("rcid", 0)) <= (cursor.rc_timestamp, cursor.rcid):
                    continue  # seen by the last sync (the feed is read from its timestamp, inclusive)
                if rc.get("pageid"):
                    ids.add(int(rc["pageid"]))
                new_cursor.rc_timestamp, new_cursor.rcid = max(
                    (new_cursor.rc_timestamp, new_cursor.rcid), (rc["timestamp"], rc.get("rcid", 0)))
            for le in q.get("logevents") or []:
                if (le.get("timestamp", ""), le.get("logid", 0)) <= (cursor.log_timestamp, cursor.logid):
                    continue
                new_cursor.log_timestamp, new_cursor.logid = max(
                    (new_cursor.log_timestamp, new_cursor.logid), (le["timestamp"], le.get("logid", 0)))
                if le.get("type") not in _PAGE_LOGS:
                    continue
                if le.get("logpage"):
                    ids.add(int(le["logpage"]))
                if le.get("title"):
                    titles.add(le["title"])
                target = (le.get("params") or {}).get("target_title")
                if target:
                    titles.add(target)
        pages = dict(old)
        items = self._fetch(pages, ids, titles)
        return items, new_cursor, pages

    def _reconcile(self, old: dict[int, PageRecord], notified: frozenset[int]
                   ) -> tuple[list[Item], Cursor, dict[int, PageRecord]]:
        """Against the full page list (no content): pages gone are dropped, changed ones fetched."""
        self.source.stats["mode"] = "reconcile"
        cursor = self._head()
        listed: dict[int, dict] = {}
        for ns in self.ns:
            params = {"generator": "allpages", "gapnamespace": ns, "gapfilterredir": "nonredirects",
                      "gaplimit": "max", "prop": "info"}
            for batch in self.api.query_pages(params):
                listed |= {int(p["pageid"]): p for p in batch if p.get("pageid")}
        pages: dict[int, PageRecord] = {}
        stale = set(notified)
        for pid, page in listed.items():
            rec = old.get(pid)
            same = rec is not None and rec.title == page.get("title") and rec.revid == page.get("lastrevid") and \
                (self.source.render == "wikitext" or rec.touched == page.get("touched"))
            if same:
                pages[pid] = rec
            else:
                stale.add(pid)
        items = self._fetch(pages, stale, set(), old)
        cursor.last_full = time.time()
        return items, cursor, pages

    # -- requests ------------------------------------------------------------------------------------

    def _head(self) -> Cursor:
        """siteinfo (is it MediaWiki? its namespaces) and the newest change and log entry: the new cursor."""
        data = self.api.call({"action": "query", "meta": "siteinfo", "siprop": "general|namespaces",
                              "list": "recentchanges|logevents", "rclimit": 1, "rcprop": "ids|timestamp",
                              "lelimit": 1, "leprop": "ids|timestamp"})
        q = data.get("query") or {}
        general = q.get("general") or {}
        if not str(general.get("generator", "")).startswith("MediaWiki"):
            raise SourceError(f"{self.source.location} is not a MediaWiki API (no MediaWiki siteinfo in its answer)")
        self.names = {str(k): (v.get("name") or MAIN) for k, v in (q.get("namespaces") or {}).items()}
        self.ns = self._namespaces()
        rc = (q.get("recentchanges") or [{}])[0]
        le = (q.get("logevents") or [{}])[0]
        now = general.get("time") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return Cursor(rc_timestamp=rc.get("timestamp") or now, rcid=int(rc.get("rcid") or 0),
                      log_timestamp=le.get("timestamp") or now, logid=int(le.get("logid") or 0),
                      namespaces=self.names)

    def _pruned(self, cursor: Cursor) -> bool:
        """Whether recentchanges no longer reaches back to the cursor ($wgRCMaxAge pruned it)."""
        data = self.api.call({"action": "query", "list": "recentchanges", "rcdir": "newer", "rclimit": 1,
                              "rcprop": "timestamp"})
        oldest = ((data.get("query") or {}).get("recentchanges") or [{}])[0].get("timestamp")
        return oldest is not None and oldest > cursor.rc_timestamp

    def _props(self) -> dict:
        rvprop = "ids|timestamp|size|contentmodel" + ("|content" if self.source.render == "wikitext" else "")
        return {"prop": "revisions|info", "rvprop": rvprop, "rvslots": "main", "inprop": "url"}

    def _fetch(self, pages: dict[int, PageRecord], ids: set[int], titles: set[str],
               previous: dict[int, PageRecord] | None = None) -> list[Item]:
        """Fetch the current state of ids and titles into pages; then every page: fetched, Unchanged, or
        fetched now because the published index does not hold it as recorded."""
        previous = dict(pages) if previous is None else previous
        items: list[Item] = []
        seen: dict[int, dict] = {}
        for key, values in (("pageids", sorted(ids)), ("titles", sorted(titles))):
            for i in range(0, len(values), BATCH):
                for batch in self.api.query_pages({key: values[i:i + BATCH]} | self._props()):
                    for page in batch:
                        if page.get("missing") or page.get("invalid"):
                            if page.get("pageid"):
                                pages.pop(int(page["pageid"]), None)
                            elif page.get("title"):
                                for pid in [p for p, r in pages.items() if r.title == page["title"]]:
                                    del pages[pid]
                        elif page.get("pageid") and int(page["pageid"]) not in seen:
                            seen[int(page["pageid"])] = page
        self._apply(list(seen.values()), pages, items, previous)
        done = set(seen)
        again = [pid for pid, rec in pages.items() if pid not in done and rec.skip is None
                 and self.known.get(rec.article_id) != rec.hash]
        if again:  # pages the published index lacks or holds otherwise (a rollback, a build that failed later)
            more: list[dict] = []
            for i in range(0, len(again), BATCH):
                for batch in self.api.query_pages({"pageids": again[i:i + BATCH]} | self._props()):
                    more += [p for p in batch if p.get("pageid") and not p.get("missing")]
            for pid in again:
                pages.pop(pid, None)
            self._apply(more, pages, items, previous)
            done |= {int(p["pageid"]) for p in more}
        for pid, rec in sorted(pages.items(), key=lambda kv: kv[1].title):
            if pid in done:
                continue
            path = self._path(rec.title)
            items.append(Skipped(path, rec.skip) if rec.skip is not None else Unchanged(rec.article_id, path, rec.hash))
        return items

    # -- pages to articles -----------------------------------------------------------------------------

    def _apply(self, batch: list[dict], pages: dict[int, PageRecord], items: list[Item],
               previous: dict[int, PageRecord]) -> None:
        """Each fetched page into pages and items; a redirect, or a page now outside the namespaces, leaves."""
        self.source.stats["fetched"] = self.source.stats.get("fetched", 0) + len(batch)
        for page in sorted(batch, key=lambda p: p.get("title", "")):
            pid = int(page["pageid"])
            pages.pop(pid, None)
            if page.get("redirect") or page.get("ns") not in self.ns:
                continue
            for other in [p for p, r in pages.items() if r.title == page["title"]]:
                del pages[other]  # the title's earlier page, deleted or moved away
            item = self._article(page, previous.get(pid))
            rev = (page.get("revisions") or [{}])[0]
            aid = id_slug(page["title"].replace(" ", "_"))
            skip = item.reason if isinstance(item, Skipped) else None
            pages[pid] = PageRecord(pid, int(page["ns"]), page["title"], int(rev.get("revid") or page.get("lastrevid")
                                    or 0), page.get("touched"), aid, None if skip else item.content_hash, skip)
            items.append(item)

    def _article(self, page: dict, before: PageRecord | None) -> Item:
        title = page["title"]
        where = self._path(title)
        revisions = page.get("revisions") or []
        if not revisions:
            return Skipped(where, "the page has no revision the API shows")
        rev = revisions[0]
        slot = (rev.get("slots") or {}).get("main") or {}
        model = slot.get("contentmodel") or rev.get("contentmodel") or page.get("contentmodel") or "wikitext"
        if model != "wikitext":
            return Skipped(where, f"page content model is {model}, not wikitext")
        if slot.get("texthidden") or rev.get("texthidden") or slot.get("sha1hidden"):
            return Skipped(where, "the latest revision's text is hidden (revision deleted)")
        aid = id_slug(title.replace(" ", "_"))
        meta = {"revision": str(rev.get("revid", ""))}
        if before is not None and before.article_id != aid and before.hash is not None:
            meta["moved_from"] = before.article_id  # a move: same content, its vectors are kept
        try:
            size = int(rev.get("size") or page.get("length") or 0)
            self._check_size(size)  # known before the text is parsed (or, rendered, even requested)
            if self.source.render == "parse":
                text, headings, raw = self._rendered(page, rev)
            else:
                if slot.get("textmissing") or "content" not in slot:
                    return Skipped(where, "the latest revision's text is missing from the wiki's storage")
                wikitext = slot["content"]
                raw = title.encode("utf-8") + b"\n" + wikitext.encode("utf-8")
                self._check_size(len(wikitext.encode("utf-8")))
                text, headings = wikitext_to_text(wikitext)
            return page_article(id=aid, path=where, title=title, text=text, headings=headings, raw=raw,
                                source=self.source.kind, url=page.get("fullurl"), date=rev.get("timestamp"),
                                meta=meta, namespace=self.names.get(str(page.get("ns")), str(page.get("ns"))))
        except ArticleError as exc:
            return Skipped(where, str(exc))

    def _rendered(self, page: dict, rev: dict) -> tuple[str, tuple, bytes]:
        """The page's HTML from action=parse, read as the HTML reader reads an article; the hash covers the
        text, so markup that changes on every render (parser cache notes) is not a change."""
        data = self.api.call({"action": "parse", "oldid": rev.get("revid"), "prop": "text",
                              "disableeditsection": 1, "disablelimitreport": 1, "disabletoc": 1})
        html = (data.get("parse") or {}).get("text") or ""
        self._check_size(len(html.encode("utf-8")))
        soup = BeautifulSoup(html, "html.parser")
        for el in soup.find_all(class_=lambda c: c and any(d in c for d in _DROP_CLASSES)):
            el.decompose()
        _, text, headings = html_to_text(str(soup))
        return text, headings, f"{page['title']}\n{text}".encode()

    def _check_size(self, size: int) -> None:
        if size > self.source.max_bytes:
            raise ArticleError(f"page is {size:,} bytes, over the {self.source.max_bytes:,}-byte limit")

    def _path(self, title: str) -> str:
        return f"{self.host}: {title}"

    def _namespaces(self) -> list[int]:
        """The configured namespaces as numbers (names resolved through siteinfo)."""
        by_name = {v.casefold(): int(k) for k, v in self.names.items()}
        out = []
        for ns in self.source.namespaces:
            text = str(ns).strip()
            if text.lstrip("-").isdigit():
                out.append(int(text))
            elif text.casefold() in ("main", "(main)", ""):
                out.append(0)
            elif text.casefold() in by_name:
                out.append(by_name[text.casefold()])
            else:
                known = ", ".join(sorted(self.names.values())) or "none known yet"
                raise SourceError(f"MediaWiki source {self.source.location}: no namespace named {text!r} "
                                  f"(the wiki has: {known})")
        return sorted(set(out))


class _Owned:
    def __init__(self, state: SyncState):
        self.state = state

    def __enter__(self) -> SyncState:
        return self.state

    def __exit__(self, *exc) -> None:
        self.state.close()


class _Borrowed(_Owned):
    def __exit__(self, *exc) -> None:
        pass


def _seconds(value, where: str) -> float:
    """A duration: seconds, or a number with s, m, h or d."""
    match = _DURATION.match(str(value))
    if not match:
        raise SourceError(f"MediaWiki source {where}: full_every {value!r} is not a duration (86400, 12h, 1d)")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
