"""Access groups for articles whose source has no front matter (wiki pages, ...): a mapping file of patterns.

    # access.yaml: an article without groups of its own gets the groups of every rule that matches it
    - title: "Compensation*"          # glob on the page title, ignoring case
      groups: [hr]
    - url: "https://wiki.example/HR/*" # glob on the article URL
      groups: [hr, managers]
    - path: "private/**"              # glob on the path under the source (the id's origin)
      groups: [staff]
    - namespace: "Secret"             # glob on the wiki namespace (MediaWiki API source; "Main" for the main one)
      groups: [security]

An article with no groups is public; groups name who may read it (any one of them suffices). Groups the
article has already (front matter `access`, or a source that knows its page permissions) are kept as they are.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import yaml

from rolesearch.ingest.articles import Article

FIELDS = ("title", "url", "path", "namespace")


class AccessMapError(ValueError):
    """The mapping file is missing or malformed; the message names the rule."""


@dataclass(frozen=True)
class AccessRule:
    """Patterns on title, URL and path (all given must match) and the groups they grant."""

    groups: tuple[str, ...]
    title: str | None = None
    url: str | None = None
    path: str | None = None
    namespace: str | None = None

    def matches(self, article: Article) -> bool:
        """Whether every pattern of the rule matches the article (a missing URL matches no url pattern)."""
        if self.title is not None and not fnmatchcase(article.title.casefold(), self.title.casefold()):
            return False
        if self.url is not None and not (article.url and fnmatchcase(article.url, self.url)):
            return False
        if self.path is not None and not fnmatchcase(article.path, self.path):
            return False
        if self.namespace is not None and not (article.namespace is not None and
                                               fnmatchcase(article.namespace.casefold(), self.namespace.casefold())):
            return False
        return True


@dataclass(frozen=True)
class AccessMap:
    """The rules of one mapping file, in order."""

    rules: tuple[AccessRule, ...] = ()

    @classmethod
    def load(cls, path: Path) -> "AccessMap":
        """Read and check a mapping file."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise AccessMapError(f"access map {path} cannot be read: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            raise AccessMapError(f"access map {path} is not valid YAML: {exc}") from exc
        if data is None:
            return cls()
        if not isinstance(data, list):
            raise AccessMapError(f"access map {path} must be a list of rules "
                                 "(- title/url/path/namespace: pattern, groups: [...])")
        return cls(tuple(_rule(r, i, path) for i, r in enumerate(data, start=1)))

    def __call__(self, article: Article) -> tuple[str, ...]:
        """The groups of every rule that matches the article (the ingest access hook: Article -> groups)."""
        return tuple(sorted({g for rule in self.rules if rule.matches(article) for g in rule.groups}))

    def apply(self, articles: list[Article]) -> list[Article]:
        """The articles, those without groups of their own given the mapped ones."""
        if not self.rules:
            return articles
        return [a if a.access else dataclasses.replace(a, access=self(a)) for a in articles]


def _rule(raw, n: int, path: Path) -> AccessRule:
    where = f"access map {path}, rule {n}"
    if not isinstance(raw, dict):
        raise AccessMapError(f"{where}: must be a mapping with a title, url or path pattern and groups")
    unknown = set(raw) - {*FIELDS, "groups"}
    if unknown:
        raise AccessMapError(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))} "
                             f"(use {', '.join(FIELDS)} and groups)")
    patterns = {f: str(raw[f]) for f in FIELDS if raw.get(f) not in (None, "")}
    if not patterns:
        raise AccessMapError(f"{where}: give at least one of {', '.join(FIELDS)}")
    groups = raw.get("groups")
    if isinstance(groups, str):
        groups = groups.split(",")
    if not isinstance(groups, list) or not any(str(g).strip() for g in groups):
        raise AccessMapError(f"{where}: groups must be a non-empty list of group names")
    return AccessRule(tuple(sorted({str(g).strip() for g in groups if str(g).strip()})), **patterns)
