"""Where articles come from: one Source per kind, chosen by `KIND:LOCATION` or a sources file.

The wiki kinds need the `wiki` extra (`pip install -e '.[wiki]'`); each is imported only when used.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from ingest.articles import Article
from ingest.sources.base import AccessHook, Skipped, Source, SourceError

KINDS = ("folder", "mediawiki", "confluence", "crawl")


def open_source(kind: str, location: str, state_dir: Path | None = None, **options) -> Source:
    """The source of a kind at a location; options are the kind's own (crawl: max_pages, rate, ...)."""
    if kind == "folder":
        from ingest.sources.folder import FolderSource

        return FolderSource(location, **options)
    if kind == "mediawiki":
        from ingest.sources.mediawiki import MediaWikiSource

        return MediaWikiSource(location, **options)
    if kind == "confluence":
        from ingest.sources.confluence import ConfluenceSource

        return ConfluenceSource(location, **options)
    if kind == "crawl":
        from ingest.sources.crawl import CrawlSource

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
        if entry["kind"] != "crawl" and not Path(location).is_absolute():
            location = str(path.parent / location)
        try:
            sources.append(open_source(str(entry["kind"]), location, state_dir, **options))
        except TypeError as exc:
            raise SourceError(f"sources file {path}, entry {i}: {exc}") from exc
    return sources


def read_sources(sources: list[Source], access: AccessHook | None = None) -> tuple[list[Article], list[dict]]:
    """Every article of every source, and the pages skipped with their reasons ({path, reason}).

    An id already taken by an earlier article is skipped. access, when given, supplies groups for
    articles whose source knows none (issue 13's mapping file).
    """
    articles: list[Article] = []
    skipped: list[dict] = []
    seen: dict[str, str] = {}
    for source in sources:
        for item in source.read():
            if isinstance(item, Skipped):
                skipped.append({"path": item.path, "reason": item.reason})
                continue
            if item.id in seen:
                skipped.append({"path": item.path, "reason": f"same article id {item.id!r} as {seen[item.id]}"})
                continue
            if access is not None and not item.access:
                item = replace(item, access=tuple(access(item)))
            seen[item.id] = item.path
            articles.append(item)
    return articles, skipped
