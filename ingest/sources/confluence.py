"""The confluence source: a space's HTML export, as the zip Confluence gives or its unpacked folder.

Each page file's `#main-content` is read like an `.html` article; its breadcrumbs (or, without
them, its place in index.html's page tree) start every passage's section path. Attachments,
images, styles, navigation and the footer are not read. With `base_url`, a page links back to
`{base_url}/pages/viewpage.action?pageId=N` (N from the file name, as Confluence names them).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

from bs4 import BeautifulSoup

from rolesearch.ingest.articles import MAX_ARTICLE_BYTES, ArticleError, id_slug
from rolesearch.ingest.html import html_to_text
from rolesearch.ingest.sources.base import Item, Skipped, SourceError, page_article

_PAGE_ID = re.compile(r"(?:^|_)(\d+)$")
_NOT_PAGES = {"attachments", "images", "styles"}


@dataclass
class ConfluenceSource:
    """Pages of a Confluence space HTML export (a .zip or a folder)."""

    location: str
    base_url: str | None = None  # the wiki's address, e.g. https://wiki.example.com (Confluence's base URL)
    kind: str = "confluence"

    def read(self) -> Iterator[Item]:
        """Each page of the export as an article; SourceError when it is not a readable export."""
        path = Path(self.location)
        if path.is_file():
            try:
                with zipfile.ZipFile(path) as zf:
                    yield from self._export(_ZipFiles(zf, path.name))
            except zipfile.BadZipFile as exc:
                raise SourceError(f"Confluence export {path} is not a readable zip: {exc}") from exc
        elif path.is_dir():
            yield from self._export(_FolderFiles(path))
        else:
            raise SourceError(f"Confluence export {path} does not exist")

    def _export(self, files: "_Files") -> Iterator[Item]:
        names, refused = files.names()
        for name in refused:
            yield Skipped(f"{files.label}/{name}", "path points outside the export folder; refused")
        indexes = sorted((n for n in names if PurePosixPath(n).name == "index.html"), key=lambda n: n.count("/"))
        if not indexes:
            raise SourceError(f"Confluence export {files.label} has no index.html (not a space HTML export)")
        root = PurePosixPath(indexes[0]).parent
        tree = _page_tree(files.read(indexes[0]).decode("utf-8", "replace"))
        for name in sorted(names):
            p = PurePosixPath(name)
            if p.suffix.lower() != ".html" or p.name == "index.html" or p.parent != root:
                continue  # attachments/, images/, styles/ and anything outside the space folder
            where = f"{files.label}/{name}"
            try:
                yield self._page(p, files.read(name, MAX_ARTICLE_BYTES), tree, where)
            except ArticleError as exc:
                yield Skipped(where, str(exc))

    def _page(self, p: PurePosixPath, raw: bytes, tree: dict[str, list[str]], where: str):
        try:
            html = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ArticleError(f"page is not valid UTF-8 (byte {exc.start})") from exc
        soup = BeautifulSoup(html, "html.parser")
        main = soup.find(id="main-content")
        if main is None:
            raise ArticleError("page has no #main-content (not a Confluence page export)")
        title_el = soup.find(id="title-text") or soup.title
        title = " ".join((title_el.get_text(" ", strip=True) if title_el else p.stem).split())
        # Confluence writes "Space : Page" in the title; the space is not part of the page's name.
        title = title.split(" : ", 1)[1] if " : " in title else title
        crumbs = [a.get_text(" ", strip=True) for a in soup.select("#breadcrumbs li a")]
        ancestors = tuple(crumbs[1:]) if crumbs else tuple(tree.get(p.name, ()))  # crumbs[0] is the space
        _, text, headings = html_to_text(str(main))
        # The page title is outside #main-content, so a heading inside it (Confluence's editor starts at
        # h1) is a section of the page: one level down, where the chunker puts sections.
        headings = tuple((offset, level + 1, heading) for offset, level, heading in headings)
        match = _PAGE_ID.search(p.stem)
        url = f"{self.base_url.rstrip('/')}/pages/viewpage.action?pageId={match.group(1)}" \
            if self.base_url and match else None
        return page_article(
            id=id_slug(p.stem), path=where, title=title, text=text, headings=headings, raw=raw,
            source=self.kind, url=url, section_prefix=tuple(a for a in ancestors if a),
            # ancestors: their titles, root first; read_sources gives the page a restricted ancestor's groups
            meta={"page_id": match.group(1) if match else None, "ancestors": [a for a in ancestors if a]},
        )


def _page_tree(index_html: str) -> dict[str, list[str]]:
    """Each page file's ancestors' titles, from index.html's "Available Pages" nested list."""
    soup = BeautifulSoup(index_html, "html.parser")
    ancestors: dict[str, list[str]] = {}

    def walk(ul, path: list[str]) -> None:
        for li in ul.find_all("li", recursive=False):
            link = li.find("a", href=True, recursive=False)
            if link is None:
                continue
            ancestors[PurePosixPath(link["href"]).name] = list(path)
            for sub in li.find_all("ul", recursive=False):
                walk(sub, path + [link.get_text(" ", strip=True)])

    for ul in soup.select(".pageSection > ul"):
        walk(ul, [])
    return ancestors


class _Files:
    label: str

    def names(self) -> tuple[list[str], list[str]]:
        """The export's file names (POSIX, relative), and the names refused as pointing outside it."""
        raise NotImplementedError

    def read(self, name: str, limit: int | None = None) -> bytes:
        """A file's bytes; ArticleError when over limit."""
        raise NotImplementedError


class _ZipFiles(_Files):
    def __init__(self, zf: zipfile.ZipFile, label: str):
        self.zf, self.label = zf, label

    def names(self):
        ok, refused = [], []
        for info in self.zf.infolist():
            if info.is_dir():
                continue
            p = PurePosixPath(info.filename.replace("\\", "/"))
            # An absolute path, a drive or a ".." would land outside the folder if the zip were unpacked.
            if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
                refused.append(info.filename)
            else:
                ok.append(info.filename)
        return ok, refused

    def read(self, name, limit=None):
        info = self.zf.getinfo(name)
        if limit is not None and info.file_size > limit:
            raise ArticleError(f"page is {info.file_size:,} bytes, over the {limit:,}-byte limit")
        return self.zf.read(info)


class _FolderFiles(_Files):
    def __init__(self, folder: Path):
        self.folder, self.label = folder, folder.name

    def names(self):
        ok, refused = [], []
        root = self.folder.resolve()
        for p in sorted(self.folder.rglob("*")):
            rel = p.relative_to(self.folder).as_posix()
            if any(part in _NOT_PAGES for part in PurePosixPath(rel).parts[:-1]) or not p.is_file():
                continue
            # A symlink out of the folder is refused like a zip entry with "..".
            if not p.resolve().is_relative_to(root):
                refused.append(rel)
            else:
                ok.append(rel)
        return ok, refused

    def read(self, name, limit=None):
        path = self.folder / name
        size = path.stat().st_size
        if limit is not None and size > limit:
            raise ArticleError(f"page is {size:,} bytes, over the {limit:,}-byte limit")
        return path.read_bytes()
