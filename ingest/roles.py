"""Which roles a passage attributes its duties to: the role its section is about, and the roles its sentences name as subject.

The roles and their aliases are configuration (store/roles.yaml by default), so an article about
another role needs a new entry there and a re-ingest, not a release.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from typing import Iterable

from rolesearch.store.passage import Passage
from rolesearch.store.roles import RoleConfig
from rolesearch.store.sentences import sentence_spans

_COMPARISON = re.compile(r"\s(?:and|vs\.?|versus|or)\s|\s&\s|/", re.IGNORECASE)


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
        out += [r for r in config.sentence_subjects(text[start:end]) if r not in out]
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
