"""What a query asks for, read from its wording alone (no index needed)."""

from __future__ import annotations

import re

from rolesearch.store.roles import RoleConfig

# "who owns / does / is responsible for / should I call about X", "whose job", "which team".
_OWNERSHIP = re.compile(r"\b(?:who|whom|whose|who's)\b|\bwhich\s+(?:role|team|engineer|person|people|group|job)s?\b",
                        re.IGNORECASE)


def is_ownership(query: str, roles: RoleConfig) -> bool:
    """A question that asks who does something, not what a named role is ("who is an MLOps engineer's boss?")."""
    if not _OWNERSHIP.search(query):
        return False
    about_role = re.search(rf"\bwho(?:'s|\s+is|\s+are)\s+(?:the\s+|an?\s+)?(?:{roles.mention.pattern})", query, re.IGNORECASE)
    return about_role is None
