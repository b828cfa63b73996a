"""The folder source: `.txt`, `.md` and `.html` files under a folder (the default corpus)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ingest.articles import ArticleError, list_article_files, read_article
from ingest.sources.base import Item, Skipped, SourceError


@dataclass
class FolderSource:
    """Every article file under a folder; an article's id is its path without the extension."""

    location: str
    kind: str = "folder"

    def read(self) -> Iterator[Item]:
        """Each article file read, or Skipped with the reason."""
        folder = Path(self.location)
        if not folder.is_dir():
            raise SourceError(f"corpus folder {folder} does not exist")
        for path in list_article_files(folder):
            try:
                yield read_article(path, folder)
            except ArticleError as exc:
                yield Skipped(path.relative_to(folder).as_posix(), str(exc))
