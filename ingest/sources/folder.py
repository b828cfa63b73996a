"""The folder source: `.txt`, `.md` and `.html` files under a folder (the default corpus)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Mapping

from rolesearch.ingest.articles import ArticleError, article_id, content_hash, list_article_files, read_article
from rolesearch.ingest.sources.base import Item, Skipped, SourceError, Unchanged


@dataclass
class FolderSource:
    """Every article file under a folder; an article's id is its path without the extension."""

    location: str
    kind: str = "folder"

    def read(self) -> Iterator[Item]:
        """Each article file read, or Skipped with the reason."""
        return self.read_changed({})

    def read_changed(self, known: Mapping[str, str]) -> Iterator[Item]:
        """As read, but a file whose id and bytes' hash are in known (id -> hash) is only hashed: Unchanged."""
        folder = Path(self.location)
        if not folder.is_dir():
            raise SourceError(f"corpus folder {folder} does not exist")
        origin = str(folder.resolve())
        for path in list_article_files(folder):
            aid = article_id(path, folder) if known else None
            if aid in known:
                try:
                    digest = content_hash(path.read_bytes())
                except OSError:
                    digest = None  # read_article says why
                if digest == known[aid]:
                    yield Unchanged(aid, path.relative_to(folder).as_posix(), digest, origin=origin)
                    continue
            try:
                yield replace(read_article(path, folder), origin=origin)
            except ArticleError as exc:
                yield Skipped(path.relative_to(folder).as_posix(), str(exc))
