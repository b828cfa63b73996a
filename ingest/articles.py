"""Read articles from the corpus folder: plain text, Markdown with front matter, HTML."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")
MAX_ARTICLE_BYTES = 2_000_000  # a role article is tens of KB; anything past this is a mistake
# libyaml's safe loader when PyYAML was built with it (same documents, ~10x faster per article).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)


class ArticleError(ValueError):
    """An article that cannot be indexed; the message says why."""


@dataclass(frozen=True)
class Article:
    """One article: its id (file stem), display metadata and the text passages index into."""

    id: str
    path: str
    title: str
    text: str
    content_hash: str  # of the raw file bytes, so any edit (front matter too) is seen
    url: str | None = None
    publisher: str | None = None
    date: str | None = None
    tags: tuple[str, ...] = ()
    # Groups allowed to read the article (front matter `access: [...]`); empty means public.
    access: tuple[str, ...] = ()
    source: str = "folder"  # the source kind that yielded it (ingest.sources)
    # HTML keeps its headings as (offset, level, text) because its text has no markup left.
    headings: tuple[tuple[int, int, str], ...] | None = None
    meta: dict = field(default_factory=dict, compare=False)
    # Where the page sits in its wiki (Confluence breadcrumbs): the start of every passage's section path.
    section_prefix: tuple[str, ...] = ()
    # The wiki namespace of the page ("Main", "Help", a Lockdown-protected one), for access-map `namespace:` rules.
    namespace: str | None = None


def list_article_files(corpus_dir: Path) -> list[Path]:
    """Article files under corpus_dir (recursive), sorted; README files are documentation, not articles."""
    files = [
        p
        for p in sorted(Path(corpus_dir).rglob("*"))
        if p.is_file()
        and p.suffix.lower() in SUFFIXES
        and not p.name.startswith(".")
        and p.stem.upper() != "README"
    ]
    return files


def article_id(path: Path, corpus_dir: Path) -> str:
    """A stable id from the path under the corpus folder, usable in a URL."""
    return id_slug(path.relative_to(corpus_dir).with_suffix("").as_posix())


def id_slug(name: str) -> str:
    """An article id from a name (a file path, a wiki page title, a URL path), usable in a URL."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "article"


def content_hash(data: bytes) -> str:
    """Hash of an article's bytes, as recorded in the manifest."""
    return hashlib.sha256(data).hexdigest()[:32]


def read_article(path: Path, corpus_dir: Path | None = None) -> Article:
    """Read one article file; raise ArticleError with the reason if it cannot be indexed."""
    path = Path(path)
    corpus_dir = Path(corpus_dir) if corpus_dir is not None else path.parent
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArticleError(f"cannot read file: {exc.strerror or exc}") from exc
    if not data.strip():
        raise ArticleError("file is empty")
    if len(data) > MAX_ARTICLE_BYTES:
        raise ArticleError(f"file is {len(data):,} bytes, over the {MAX_ARTICLE_BYTES:,}-byte limit")
    if b"\x00" in data[:8192]:
        raise ArticleError("file is binary (contains NUL bytes)")
    try:
        raw = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ArticleError(f"file is not valid UTF-8 (byte {exc.start})") from exc
    raw = raw.replace("\r\n", "\n").replace("\r", "\n")

    meta, body = _split_front_matter(raw)
    headings = None
    if path.suffix.lower() in (".html", ".htm"):
        from rolesearch.ingest.html import html_to_text

        html_title, body, headings = html_to_text(body)
        meta.setdefault("title", html_title)
    if not body.strip():
        raise ArticleError("article has no text")
    aid = article_id(path, corpus_dir)
    title = _clean(meta.get("title")) or _first_heading(body, headings) or aid
    tags = meta.get("tags") or meta.get("keywords") or ()
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",")]
    return Article(
        id=aid,
        path=path.relative_to(corpus_dir).as_posix(),
        title=title,
        text=body,
        content_hash=content_hash(data),
        url=_clean(meta.get("url")),
        publisher=_clean(meta.get("publisher")),
        date=_clean(meta.get("date")),
        tags=tuple(str(t) for t in tags if str(t).strip()),
        access=access_groups(meta.get("access")),
        headings=headings,
        meta=meta,
    )


def access_groups(value) -> tuple[str, ...]:
    """Access groups from front matter: a list or a comma-separated string; none means public."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, (list, tuple)):
        raise ArticleError("front matter `access` must be a list of group names")
    return tuple(sorted({str(g).strip() for g in value if str(g).strip()}))


def _split_front_matter(raw: str) -> tuple[dict, str]:
    match = _FRONT_MATTER.match(raw)
    if not match:
        return {}, raw
    try:
        meta = _load_yaml(match.group(1))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        raise ArticleError(f"front matter is not valid YAML{where}") from exc
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ArticleError("front matter must be a YAML mapping of keys to values")
    return meta, raw[match.end():]


def _load_yaml(text: str):
    """yaml.safe_load, through libyaml when PyYAML has it; an error is raised by the pure-Python loader,
    whose positions the messages quote."""
    try:
        return yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError:
        return yaml.safe_load(text)


def _clean(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    text = " ".join(str(value).split())
    return text or None


def _first_heading(body: str, headings) -> str | None:
    if headings:
        return headings[0][2]
    for line in body.split("\n"):
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:200]
    return None
