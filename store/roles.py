"""The roles and the aliases that name them in text: configuration (store/roles.yaml by default) that a version's passages are labelled with (its fingerprint is in the manifest) and that questions are read with."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

DEFAULT_ROLES_FILE = Path(__file__).with_name("roles.yaml")


_RULES_VERSION = 1  # bump when attribute_roles changes what it finds: reused passages are then attributed again


_ENUMERATION = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")


# A short introductory phrase before the subject: "Functionally, ", "In large organizations, ".
_INTRO = re.compile(r"^(?:[\w'/-]+\s+){0,4}[\w'/-]+,\s+")


_DETERMINER = r"(?:(?:the|an|a|both|our|your|all|most|many)\s+)?"


_JOINER = r"(?:\s*,\s*(?:and\s+|or\s+)?|\s+and\s+|\s+or\s+|\s*&\s*|\s*/\s*)"


# Clauses of a sentence: after a list label ("Model Validation - ", "Troubleshooting: "), after
# "; ", and before a contrasting "while"/"whereas", each of which can start with a new subject.
CLAUSE = re.compile(r"\s+[-–—]\s+|:\s+|;\s+|,\s+(?:while|whereas|but)\s+")


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

    def sentence_subjects(self, sentence: str) -> list[str]:
        """Roles that a sentence, or one of its clauses, names as subject, in order."""
        out: list[str] = []
        for clause in CLAUSE.split(sentence):
            out += [r for r in self.subjects(clause) if r not in out]
        return out

    def subjects(self, clause: str) -> list[str]:
        """Roles named as the subject that opens a clause ("ML Engineers and MLOps Engineers share ...")."""
        clause = _ENUMERATION.sub("", clause)
        for candidate in (clause, _INTRO.sub("", clause, count=1)):
            m = self._subject.match(candidate)
            if m:
                return self.mentioned(m.group(0))
        return []
