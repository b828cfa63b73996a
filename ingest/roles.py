"""Which roles a passage attributes its duties to: the role its section is about, and the roles its sentences name as subject.

The roles and their aliases are configuration (ingest/roles.yaml by default), so an article about
another role needs a new entry there and a re-ingest, not a release.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Iterable

import yaml

from ingest.chunking import Passage
from ingest.sentences import sentence_spans

DEFAULT_ROLES_FILE = Path(__file__).with_name("roles.yaml")
_RULES_VERSION = 1  # bump when attribute_roles changes what it finds: reused passages are then attributed again

# Clauses of a sentence: after a list label ("Model Validation - ", "Troubleshooting: "), after
# "; ", and before a contrasting "while"/"whereas", each of which can start with a new subject.
_CLAUSE = re.compile(r"\s+[-–—]\s+|:\s+|;\s+|,\s+(?:while|whereas|but)\s+")
_ENUMERATION = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")
# A short introductory phrase before the subject: "Functionally, ", "In large organizations, ".
_INTRO = re.compile(r"^(?:[\w'/-]+\s+){0,4}[\w'/-]+,\s+")
_DETERMINER = r"(?:(?:the|an|a|both|our|your|all|most|many)\s+)?"
_COMPARISON = re.compile(r"\s(?:and|vs\.?|versus|or)\s|\s&\s|/", re.IGNORECASE)
_JOINER = r"(?:\s*,\s*(?:and\s+|or\s+)?|\s+and\s+|\s+or\s+|\s*&\s*|\s*/\s*)"


class RolesError(ValueError):
    """A roles file that cannot be used."""


@dataclass(frozen=True)
class RoleConfig:
    """Role names and the aliases that name them in text."""

    roles: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def load(cls, path: Path | None = None) -> "RoleConfig":
        """Read a roles YAML file: {"roles": [{"name", "aliases": [...]}]} (the packaged default when path is None)."""
        path = Path(path) if path else DEFAULT_ROLES_FILE
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            entries = [(str(r["name"]), tuple(str(a) for a in r.get("aliases") or ())) for r in data["roles"]]
        except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
            raise RolesError(f"roles file {path} cannot be used: {exc}") from exc
        if not entries:
            raise RolesError(f"roles file {path} names no roles")
        return cls(tuple((name, tuple(dict.fromkeys((name, *aliases)))) for name, aliases in entries))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.roles]

    @cached_property
    def _by_alias(self) -> dict[str, str]:
        return {alias.lower(): name for name, aliases in self.roles for alias in aliases}

    @cached_property
    def mention(self) -> re.Pattern:
        """Any alias as whole words, plural or not, longest first."""
        aliases = sorted(self._by_alias, key=len, reverse=True)
        alt = "|".join(re.escape(a).replace(r"\ ", r"\s+") for a in aliases)
        return re.compile(rf"(?<![\w-])(?:{alt})(?:s|'s|s')?(?![\w-])", re.IGNORECASE)

    @cached_property
    def fingerprint(self) -> str:
        """Names the configuration and the attribution rules: equal fingerprints attribute equal roles."""
        return hashlib.sha256(repr((_RULES_VERSION, self.roles)).encode()).hexdigest()[:16]

    @cached_property
    def _any_alias(self) -> re.Pattern:
        """The first word of any alias, anywhere: text it does not match names no role at all (every
        mention, so every subject, starts with one; a few words scan much faster than all the aliases)."""
        firsts = sorted({a.split()[0] for a in self._by_alias if a.split()}, key=len, reverse=True)
        return re.compile("|".join(re.escape(w) for w in firsts), re.IGNORECASE)

    def may_name_a_role(self, text: str) -> bool:
        """False only when no part of text can be an alias (so no clause of it has a role as subject)."""
        return self._any_alias.search(text) is not None

    @cached_property
    def _subject(self) -> re.Pattern:
        one = rf"{_DETERMINER}(?:{self.mention.pattern})"
        return re.compile(rf"^{one}(?:{_JOINER}{one})*(?=,?\s+\w)", re.IGNORECASE)

    def role_of(self, mention: str) -> str:
        """The role an alias (as found in text) names."""
        key = re.sub(r"\s+", " ", mention.lower())
        for suffix in ("", "'s", "s'", "s"):
            if suffix and key.endswith(suffix) and key[: -len(suffix)] in self._by_alias:
                return self._by_alias[key[: -len(suffix)]]
            if not suffix and key in self._by_alias:
                return self._by_alias[key]
        raise KeyError(mention)

    def mentioned(self, text: str) -> list[str]:
        """Roles named anywhere in text, in order of first mention."""
        return list(dict.fromkeys(self.role_of(m.group(0)) for m in self.mention.finditer(text)))

    def subjects(self, clause: str) -> list[str]:
        """Roles named as the subject that opens a clause ("ML Engineers and MLOps Engineers share ...")."""
        clause = _ENUMERATION.sub("", clause)
        for candidate in (clause, _INTRO.sub("", clause, count=1)):
            m = self._subject.match(candidate)
            if m:
                return self.mentioned(m.group(0))
        return []


def section_role(section: Iterable[str], config: RoleConfig) -> str | None:
    """The role of the deepest heading that names exactly one role ("MLOps Engineer: Model Lifecycle Management").

    The search stops at a heading that compares ("... ML Engineer and MLOps Engineer", "... in MLE and MLOps"):
    what sits under it is about both.
    """
    for heading in reversed(tuple(section)):
        named = config.mentioned(heading)
        if len(named) == 1 and not _COMPARISON.search(heading):
            return named[0]
        if named or _COMPARISON.search(heading):
            return None
    return None


def subject_roles(text: str, config: RoleConfig) -> list[str]:
    """Roles that the passage's sentences (or their clauses) name as subject."""
    out: list[str] = []
    if not config.may_name_a_role(text):  # every subject is an alias found in the text: none, no subjects
        return out
    for start, end in sentence_spans(text):
        for clause in _CLAUSE.split(text[start:end]):
            out += [r for r in config.subjects(clause) if r not in out]
    return out


def attribute_roles(section: Iterable[str], text: str, config: RoleConfig, section_of=None) -> tuple[str, ...]:
    """The passage's roles: its section's role first, then the subjects of its sentences.

    section_of, when given, is section_role for this config (a cached one)."""
    first = section_of(tuple(section)) if section_of is not None else section_role(section, config)
    roles = [r for r in [first] if r]
    roles += [r for r in subject_roles(text, config) if r not in roles]
    return tuple(roles)


def with_roles(passages: list[Passage], config: RoleConfig) -> list[Passage]:
    """The passages with their roles attributed afresh.

    A build attributes the passages it chunked; a passage reused from a version whose manifest has
    the same config.fingerprint keeps its roles (a changed roles file attributes every passage again).
    """
    section_of = lru_cache(maxsize=None)(lambda section: section_role(section, config))  # shared by a section
    return [replace(p, roles=attribute_roles(p.section, p.text, config, section_of)) for p in passages]
