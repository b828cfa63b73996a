"""The crawl source: an HTML wiki or docs site from a start URL (links followed) or a sitemap.xml.

Same host only, redirects included; robots.txt honoured (protego); bounded concurrency, a rate
limit and a page cap; conditional GET with the ETag / Last-Modified of the last crawl, so an
unchanged page is not downloaded again; canonical URLs respected. The main content is taken by
trafilatura, so navigation and footers do not become passages, then read like an `.html` article.
"""

from __future__ import annotations

import asyncio
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import httpx
import trafilatura
import trafilatura.settings
from bs4 import BeautifulSoup
from protego import Protego

from rolesearch.ingest.articles import MAX_ARTICLE_BYTES, ArticleError, content_hash, id_slug
from rolesearch.ingest.html import html_to_text
from rolesearch.ingest.sources.base import Item, Skipped, SourceError, page_article
from rolesearch.ingest.sources.crawl_state import CrawledPage, CrawlState

USER_AGENT = "rolesearch-crawler/0.1"
_NOT_PAGES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".ico", ".css", ".js", ".pdf", ".zip",
              ".gz", ".tar", ".mp4", ".mp3", ".woff", ".woff2", ".ttf", ".xml", ".json")
# Page chrome inside the content area that is not content: MediaWiki's [edit] links, "Jump to"
# links, footnote markers and reference lists, tables of contents, category bars.
DROP_CLASSES = ("mw-editsection", "mw-jump-link", "reference", "toc", "catlinks", "printfooter", "navbox")

def _extraction_config():
    # trafilatura swaps its own result for a whole-page fallback (navigation included, headings lost) when
    # the result is under 250 characters; a short wiki page (a list of links, two duties) is still content.
    config = trafilatura.settings.use_config()
    config.set("DEFAULT", "MIN_EXTRACTED_SIZE", "1")
    config.set("DEFAULT", "MIN_OUTPUT_SIZE", "1")
    return config


_EXTRACTION = _extraction_config()
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_HOPS = 5
_MAX_SITEMAP_BYTES = 50_000_000  # the sitemaps.org limit for one file
_HEADER_AGENT = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*:\s*")  # "googlebot: noindex"
_VALUED_DIRECTIVES = {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}


@dataclass
class CrawlSource:
    """Pages of one site, from `location` (a start URL, or a sitemap.xml URL)."""

    location: str
    state_dir: Path | None = None  # where crawl.sqlite3 keeps validators; None: nothing kept
    max_pages: int = 200
    concurrency: int = 4
    rate: float = 5.0  # requests per second, at most (robots.txt Crawl-delay can lower it)
    timeout: float = 10.0
    max_bytes: int = MAX_ARTICLE_BYTES
    prefix: str | None = None  # only follow links under this path (default: the start URL's folder)
    drop_classes: tuple[str, ...] = DROP_CLASSES  # elements with a class containing one of these are dropped
    kind: str = "crawl"
    stats: dict = field(default_factory=dict)  # of the last read: fetched, not_modified, ...

    def read(self) -> Iterator[Item]:
        """Crawl the site; SourceError when the start URL or robots.txt cannot be fetched at all."""
        start = urlsplit(self.location)
        if start.scheme not in ("http", "https") or not start.netloc:
            raise SourceError(f"crawl start {self.location!r} is not an http(s) URL")
        state = CrawlState(Path(self.state_dir) / "crawl.sqlite3" if self.state_dir else None, self.location)
        try:
            items = asyncio.run(_Crawl(self, state).run())
        finally:
            state.close()
        yield from items


class _Crawl:
    """One run of a CrawlSource."""

    def __init__(self, source: CrawlSource, state: CrawlState):
        self.source = source
        self.state = state
        start = urlsplit(source.location)
        self.origin = (start.scheme, start.netloc.lower())
        self.prefix = source.prefix or start.path.rsplit("/", 1)[0] + "/"
        self.interval = 1.0 / source.rate if source.rate > 0 else 0.0
        self.next_slot = 0.0
        self.slot_lock = asyncio.Lock()
        self.robots: Protego | None = None
        # noindex: pages read but not indexed (robots meta tag or X-Robots-Tag); nofollow: pages whose links were
        # not followed for that reason; nofollow_links: rel="nofollow" links not followed.
        self.stats = {"fetched": 0, "not_modified": 0, "pages": 0, "disallowed": 0, "noindex": 0, "nofollow": 0,
                      "nofollow_links": 0}
        source.stats = self.stats

    async def run(self) -> list[Item]:
        limits = httpx.Limits(max_connections=self.source.concurrency)
        async with httpx.AsyncClient(timeout=self.source.timeout, limits=limits, follow_redirects=False,
                                     headers={"User-Agent": USER_AGENT}) as client:
            self.client = client
            await self._robots()
            sitemap = urlsplit(self.source.location).path.endswith(".xml")
            queue = await self._sitemap(self.source.location) if sitemap else [self.source.location]
            items = await self._crawl(queue, follow_links=not sitemap)
        return items

    async def _robots(self) -> None:
        url = f"{self.origin[0]}://{self.origin[1]}/robots.txt"
        try:
            r = await self._get(url, {})
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot fetch {url}: {exc}") from exc
        if r.status_code >= 500:
            # RFC 9309: a server error on robots.txt means "crawl nothing"; failing keeps the index as it was.
            raise SourceError(f"{url} answered {r.status_code}; not crawling")
        self.robots = Protego.parse(r.text if r.status_code == 200 else "")
        delay = self.robots.crawl_delay(USER_AGENT)
        if delay:
            self.interval = max(self.interval, float(delay))

    async def _sitemap(self, url: str, depth: int = 0) -> list[str]:
        try:
            r = await self._get(url, {}, limit=_MAX_SITEMAP_BYTES)
        except (httpx.HTTPError, _TooLarge) as exc:
            raise SourceError(f"cannot fetch sitemap {url}: {exc}") from exc
        if r.status_code != 200:
            raise SourceError(f"sitemap {url} answered {r.status_code}")
        try:
            root = ET.fromstring(r.content)
        except ET.ParseError as exc:
            raise SourceError(f"sitemap {url} is malformed at line {exc.position[0]}, column {exc.position[1]}") from exc
        locs = [(el.text or "").strip() for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "loc"]
        if root.tag.rsplit("}", 1)[-1] == "sitemapindex" and depth < 2:
            nested: list[str] = []
            for loc in locs:
                if self._same_host(loc):
                    nested += await self._sitemap(loc, depth + 1)
            return nested
        return [loc for loc in locs if loc and self._same_host(loc)]

    async def _crawl(self, queue: list[str], follow_links: bool) -> list[Item]:
        items: list[Item] = []
        seen = {_normal(u) for u in queue}
        reached: set[str] = set()
        pages: set[str] = set()  # canonical URLs already yielded
        pending = list(dict.fromkeys(_normal(u) for u in queue))
        first = True
        while pending:
            room = self.source.max_pages - self.stats["pages"]
            if room <= 0:
                items.append(Skipped(self.source.location, f"page cap of {self.source.max_pages} reached; "
                                                           f"{len(pending)} more URLs not fetched"))
                break
            batch, pending = pending[:min(room, self.source.concurrency)], pending[min(room, self.source.concurrency):]
            results = await asyncio.gather(*(self._page(u) for u in batch))
            for url, result in zip(batch, results):
                if first and url == _normal(self.source.location) and isinstance(result, Skipped) \
                        and result.reason.startswith(("cannot fetch", "HTTP 5")):
                    # The site is down: fail rather than publish an index with all its pages removed.
                    raise SourceError(f"crawl start {url}: {result.reason}")
                if result is None:
                    continue
                if isinstance(result, Skipped):
                    items.append(result)
                    continue
                reached.add(url)
                page, article = result
                # The start page the user named is followed whatever it says (Special:AllPages is nofollow).
                named = first and url == _normal(self.source.location)
                if follow_links and page.nofollow and not named:
                    self.stats["nofollow"] += 1
                elif follow_links:
                    for link in page.links:
                        if link not in seen and self._in_scope(link):
                            seen.add(link)
                            pending.append(link)
                if article is None:  # noindex: read for its links, never indexed
                    self.stats["noindex"] += 1
                    continue
                if page.url in pages:
                    continue  # another URL of a page already read (its canonical URL says so)
                pages.add(page.url)
                self.stats["pages"] += 1
                items.append(article)
            first = False
        self.state.forget_all_but(reached)
        return items

    async def _page(self, url: str):
        """(CrawledPage, article item) for a URL, a Skipped, or None when it is not an HTML page or
        robots.txt forbids it."""
        current, hops = url, 0
        while True:
            if self.robots is not None and not self.robots.can_fetch(current, USER_AGENT):
                # Not an error, and wikis forbid many links (special pages): counted, not reported.
                self.stats["disallowed"] += 1
                return None
            known = self.state.get(current)
            headers = {}
            if known is not None and known.etag:
                headers["If-None-Match"] = known.etag
            if known is not None and known.last_modified:
                headers["If-Modified-Since"] = known.last_modified
            try:
                r = await self._get(current, headers, limit=self.source.max_bytes)
            except _TooLarge as exc:
                return Skipped(url, f"page is over the {self.source.max_bytes:,}-byte limit ({exc})")
            except httpx.HTTPError as exc:
                return Skipped(url, f"cannot fetch: {type(exc).__name__} {exc}")
            if r.status_code in _REDIRECTS and "location" in r.headers:
                target = _normal(urljoin(current, r.headers["location"]))
                if not self._same_host(target):
                    return Skipped(url, f"redirects to another host ({target}); not followed")
                hops += 1
                if hops > _MAX_HOPS:
                    return Skipped(url, f"more than {_MAX_HOPS} redirects")
                current = target
                continue
            break
        if r.status_code == 304 and known is not None:
            self.stats["not_modified"] += 1
            return known, None if known.noindex else self._article(known)
        if r.status_code != 200:
            return Skipped(url, f"HTTP {r.status_code}")
        if "html" not in r.headers.get("content-type", "text/html"):
            return None
        page = self._extract(current, r)
        if isinstance(page, Skipped):
            return page
        self.state.put(current, page)
        if page.noindex:
            return page, None
        try:
            return page, self._article(page)
        except ArticleError as exc:
            return Skipped(url, str(exc))

    def _extract(self, url: str, r: httpx.Response) -> CrawledPage | Skipped:
        html = r.text
        soup = BeautifulSoup(html, "html.parser")
        canonical = soup.find("link", rel="canonical", href=True)
        page_url = _normal(urljoin(url, canonical["href"])) if canonical else url
        if not self._same_host(page_url):
            page_url = url  # a canonical URL on another host is not this page's address here
        noindex, nofollow = _robots_directives(soup, r.headers.get_list("x-robots-tag"))
        links = []
        for a in soup.find_all("a", href=True):
            if "nofollow" in (a.get("rel") or []):
                self.stats["nofollow_links"] += 1
                continue
            link = _normal(urljoin(url, a["href"]))
            if link.startswith(("http://", "https://")) and self._same_host(link):
                links.append(link)
        main = trafilatura.extract(html, url=page_url, output_format="html", include_tables=True,
                                   include_formatting=True, include_links=False, include_images=False,
                                   include_comments=False, favor_recall=True, config=_EXTRACTION,
                                   prune_xpath=[f"//*[contains(@class, '{c}')]" for c in self.source.drop_classes]
                                   ) or ""
        meta = trafilatura.extract_metadata(html, default_url=page_url)
        h1 = soup.find_all("h1")
        title = (h1[0].get_text(" ", strip=True) if len(h1) == 1 else None) or (meta.title if meta else None) or page_url
        _, text, headings = html_to_text(main)
        return CrawledPage(
            url=page_url, title=title, text=text, headings=[list(h) for h in headings],
            links=list(dict.fromkeys(links)),
            content_hash=content_hash(f"{title}\n{text}".encode("utf-8")),
            etag=r.headers.get("etag"), last_modified=r.headers.get("last-modified"), noindex=noindex, nofollow=nofollow,
        )

    def _article(self, page: CrawledPage):
        # The hash is of the extracted text, so a page whose only change is in its chrome ("last edited
        # on ...") stays unchanged.
        article = page_article(
            id=self._id(page.url), path=page.url, title=page.title, text=page.text,
            headings=[tuple(h) for h in page.headings], raw=f"{page.title}\n{page.text}".encode("utf-8"),
            source="crawl", url=page.url,
        )
        return article

    def _id(self, url: str) -> str:
        parts = urlsplit(url)
        rel = parts.path[len(self.prefix):] if parts.path.startswith(self.prefix) else parts.path
        rel = unquote(rel) + (f"?{unquote(parts.query)}" if parts.query else "")
        return id_slug(rel) if rel.strip("/") else "index"

    def _same_host(self, url: str) -> bool:
        parts = urlsplit(url)
        return (parts.scheme, parts.netloc.lower()) == self.origin

    def _in_scope(self, url: str) -> bool:
        path = urlsplit(url).path
        return self._same_host(url) and path.startswith(self.prefix) and not path.lower().endswith(_NOT_PAGES)

    async def _get(self, url: str, headers: dict, limit: int | None = None) -> httpx.Response:
        """GET at the rate limit; with limit, the body is read only up to limit bytes."""
        async with self.slot_lock:
            now = time.monotonic()
            wait = self.next_slot - now
            self.next_slot = max(now, self.next_slot) + self.interval
        if wait > 0:
            await asyncio.sleep(wait)
        self.stats["fetched"] += 1
        async with self.client.stream("GET", url, headers=headers) as r:
            declared = r.headers.get("content-length")
            if limit is not None and declared and declared.isdigit() and int(declared) > limit:
                raise _TooLarge(f"{int(declared):,} bytes declared")
            body = bytearray()
            async for chunk in r.aiter_bytes():
                body += chunk
                if limit is not None and len(body) > limit:
                    raise _TooLarge(f"more than {limit:,} bytes sent")
        # The body is already decoded: its encoding and length headers no longer describe it.
        kept = [(k, v) for k, v in r.headers.multi_items()
                if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
        return httpx.Response(r.status_code, headers=kept, content=bytes(body), request=r.request)


class _TooLarge(Exception):
    """A response body over the page size limit."""


def _robots_directives(soup: BeautifulSoup, headers: list[str]) -> tuple[bool, bool]:
    """(noindex, nofollow) from the page's robots meta tags (`robots`, or one naming this crawler) and its
    X-Robots-Tag headers (`noindex, nofollow`, `none`, or `otherbot: noindex`, which is not for us)."""
    directives: set[str] = set()
    for meta in soup.find_all("meta", attrs={"name": True, "content": True}):
        if meta["name"].strip().lower() in ("robots", "rolesearch-crawler"):
            directives |= {d.strip().lower() for d in meta["content"].split(",")}
    for header in headers:
        agent = _HEADER_AGENT.match(header)
        if agent and agent.group(1).lower() not in _VALUED_DIRECTIVES:
            if agent.group(1).lower() != "rolesearch-crawler":
                continue  # directives for another crawler
            header = header[agent.end():]
        directives |= {d.strip().lower() for d in header.split(",")}
    none = "none" in directives
    return none or "noindex" in directives, none or "nofollow" in directives


def _normal(url: str) -> str:
    """A URL without its fragment (the same page)."""
    return urldefrag(url)[0]
