"""Where articles come from: one Source per kind, chosen by `KIND:LOCATION` or a sources file.

The wiki kinds need the `wiki` extra (`pip install -e '.[wiki]'`); each is imported only when used.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Mapping

import yaml

from rolesearch.ingest.articles import Article
from rolesearch.ingest.sources.base import AccessHook, Skipped, Source, SourceError, Unchanged

KINDS = ("folder", "mediawiki", "confluence", "crawl")


def open_source(kind: str, location: str, state_dir: Path | None = None, **options) -> Source:
    """The source of a kind at a location; options are the kind's own (crawl: max_pages, rate, ...)."""
    if kind == "folder":
        from rolesearch.ingest.sources.folder import FolderSource

        return FolderSource(location, **options)
    if kind == "mediawiki":
        if is_url(location):  # a live wiki's api.php; a file path is an export
            from rolesearch.ingest.sources.mediawiki_api import MediaWikiApiSource

            return MediaWikiApiSource(location, state_dir=state_dir, **options)
        from rolesearch.ingest.sources.mediawiki import MediaWikiSource

        return MediaWikiSource(location, **options)
    if kind == "confluence":
        from rolesearch.ingest.sources.confluence import ConfluenceSource

        return ConfluenceSource(location, **options)
    if kind == "crawl":
        from rolesearch.ingest.sources.crawl import CrawlSource

        return CrawlSource(location, state_dir=state_dir, **options)
    raise SourceError(f"unknown source kind {kind!r} (one of {', '.join(KINDS)})")


def parse_source(spec: str, state_dir: Path | None = None) -> Source:
    """A source from `KIND:LOCATION`, e.g. `mediawiki:dump.xml` or `crawl:https://wiki.example/Main_Page`."""
    kind, sep, location = spec.partition(":")
    if not sep or not location or kind not in KINDS:
        raise SourceError(f"source {spec!r} is not KIND:LOCATION with KIND one of {', '.join(KINDS)}")
    return open_source(kind, location, state_dir)


def load_sources_file(path: Path, state_dir: Path | None = None) -> list[Source]:
    """Sources from a YAML file: `sources: [{kind, location, ...options}]`; relative locations are
    relative to the file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SourceError(f"sources file {path} cannot be read: {exc}") from exc
    entries = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise SourceError(f"sources file {path} must hold a non-empty list `sources:`")
    sources = []
    for i, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or "kind" not in entry or "location" not in entry:
            raise SourceError(f"sources file {path}, entry {i}: needs `kind` and `location`")
        options = {k: v for k, v in entry.items() if k not in ("kind", "location")}
        location = str(entry["location"])
        if not is_url(location) and not Path(location).is_absolute():
            location = str(path.parent / location)
        try:
            sources.append(open_source(str(entry["kind"]), location, state_dir, **options))
        except TypeError as exc:
            raise SourceError(f"sources file {path}, entry {i}: {exc}") from exc
    return sources


def is_url(location: str) -> bool:
    """Whether a source location is an http(s) URL (not a path)."""
    return location.startswith(("http://", "https://"))


def sources_published(sources: list[Source]) -> None:
    """Tell each source that can keep a sync state (published()) that the version built from its last read is
    published, so that state moves forward; a build that fails never calls this."""
    for source in sources:
        published = getattr(source, "published", None)
        if published is not None:
            published()


def source_stats(sources: list[Source]) -> list[dict]:
    """What each source that counts its work (stats) did in its last read: {kind, location, ...}."""
    return [{"kind": s.kind, "location": s.location, **s.stats} for s in sources if getattr(s, "stats", None)]


def read_sources(sources: list[Source], access: AccessHook | None = None, known: Mapping[str, dict] | None = None,
                 notified: frozenset[int] = frozenset()) -> tuple[list[Article | Unchanged], list[dict], set[str]]:
    """Every article of every source, the pages skipped with their reasons ({path, reason}), and the ids
    of the articles whose groups come from access (they have none of their own).

    An id already taken by an earlier article is skipped. access, when given, supplies groups for
    articles whose source knows none (issue 13's mapping file). known (id -> the previous manifest's
    entry: hash, own_access, title, url, ...) lets a source that can (read_changed) yield Unchanged
    for an article whose bytes did not change, without parsing it; its groups are resolved here as
    for a parsed article, from the entry. notified: page ids a wiki pushed as changed, handed to every
    source that takes them (notify()) before it is read.
    """
    articles: list[Article | Unchanged] = []
    skipped: list[dict] = []
    mapped: set[str] = set()
    seen: dict[str, str] = {}
    hashes = {aid: e["hash"] for aid, e in (known or {}).items()}
    for source in sources:
        if notified and hasattr(source, "notify"):
            source.notify(notified)
        items = source.read_changed(hashes) if hashes and hasattr(source, "read_changed") else source.read()
        for item in items:
            if isinstance(item, Skipped):
                skipped.append({"path": item.path, "reason": item.reason})
                continue
            if item.id in seen:
                skipped.append({"path": item.path, "reason": f"same article id {item.id!r} as {seen[item.id]}"})
                continue
            if isinstance(item, Unchanged):
                entry = known[item.id]
                own = tuple(entry.get("own_access") or ())
                item = replace(item, access=own or (tuple(access(_stub(item, entry))) if access is not None else ()))
                if not own:
                    mapped.add(item.id)
            elif not item.access:
                mapped.add(item.id)
                if access is not None:
                    item = replace(item, access=tuple(access(item)))
            seen[item.id] = item.path
            articles.append(item)
    return articles, skipped, mapped


def _stub(item: Unchanged, entry: dict) -> Article:
    """The article as an access hook sees it (title, URL, path), from its manifest entry; no text."""
    return Article(id=item.id, path=item.path, title=entry.get("title") or item.id, text="",
                   content_hash=item.content_hash, url=entry.get("url"), publisher=entry.get("publisher"),
                   date=entry.get("date"), tags=tuple(entry.get("tags") or ()), source=entry.get("source") or "folder",
                   namespace=entry.get("namespace"))
